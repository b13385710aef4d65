//! Files a shim keeps in its container's state directory, read by the manager
//! (including a manager that was away while they changed).
//!
//! The names of the files are in [`crate::layout`].

use crate::protocol::{ExitStatus, ShimState};
use serde::{Deserialize, Serialize};

// Their home is `crate::layout`; kept here for code that still imports them
// from `state` (other branches of issue 9's restructuring).
pub use crate::layout::{LOG_FILE, LOG_FILE_OLD, SOCKET_FILE, STATUS_FILE};
/// How long after the container's init exited its shim still copies output
/// into the log (until both pipes reach EOF, at most this long). After that
/// nothing more is written to the log files.
pub const LOG_DRAIN_MS: u64 = 2000;

/// A process identified by pid and start time (field 22 of `/proc/PID/stat`,
/// in clock ticks since boot), so a reused pid is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: i32,
    pub start_time: u64,
}

/// The fields of `/proc/PID/stat` that tell a live process from a reused pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: R, S, D, Z, X, ...
    pub state: char,
    /// Field 22: start time in clock ticks since boot.
    pub start_time: u64,
}

/// Parses the text of `/proc/PID/stat`. The command name may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub fn parse_proc_stat(stat: &str) -> Option<ProcStat> {
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    // The state is field 3, so field 22 is 18 further on.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_time })
}

/// How the container's init ended, as persisted by the shim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit code, or None when killed by a signal.
    pub code: Option<i32>,
    /// Signal number that killed it, if any.
    pub signal: Option<i32>,
    pub oom_killed: bool,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl ExitRecord {
    pub fn new(status: ExitStatus, oom_killed: bool, at_ms: u64) -> Self {
        let (code, signal) = match status {
            ExitStatus::Code(c) => (Some(c), None),
            ExitStatus::Signal(s) => (None, Some(s)),
        };
        Self {
            code,
            signal,
            oom_killed,
            at_ms,
        }
    }

    pub fn status(&self) -> ExitStatus {
        match (self.code, self.signal) {
            (_, Some(s)) => ExitStatus::Signal(s),
            (Some(c), None) => ExitStatus::Code(c),
            (None, None) => ExitStatus::Code(0),
        }
    }
}

/// Where a shim's container stands, persisted in `status.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimStatus {
    pub id: String,
    pub shim: ProcId,
    /// The container init on the host; None before it was cloned.
    pub init: Option<ProcId>,
    pub state: ShimStateName,
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub exit: Option<ExitRecord>,
    /// Processes run by `Exec` (docs/protocol.md, "Sessions"): the live
    /// ones and the last [`MAX_EXEC_RECORDS`] that ended, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub execs: Vec<ExecRecord>,
}

/// The most exec records `status.json` keeps (live ones are never dropped).
pub const MAX_EXEC_RECORDS: usize = 64;

/// One exec'd process, as `status.json` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub session: u32,
    pub pid: i32,
    pub started_ms: u64,
    pub tty: bool,
    /// None while it runs.
    pub exit: Option<ExitRecord>,
}

/// [`ShimState`] as it is spelled in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShimStateName {
    Created,
    Running,
    Stopped,
}

impl From<ShimState> for ShimStateName {
    fn from(s: ShimState) -> Self {
        match s {
            ShimState::Created => ShimStateName::Created,
            ShimState::Running => ShimStateName::Running,
            ShimState::Stopped => ShimStateName::Stopped,
        }
    }
}

impl From<ShimStateName> for ShimState {
    fn from(s: ShimStateName) -> Self {
        match s {
            ShimStateName::Created => ShimState::Created,
            ShimStateName::Running => ShimState::Running,
            ShimStateName::Stopped => ShimState::Stopped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_survives_odd_command_names() {
        let stat = "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(
            parse_proc_stat(stat),
            Some(ProcStat {
                state: 'S',
                start_time: 987654
            })
        );
        assert_eq!(parse_proc_stat("garbage"), None);
        assert_eq!(parse_proc_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn exit_record_keeps_code_or_signal() {
        let r = ExitRecord::new(ExitStatus::Signal(9), true, 5);
        assert_eq!(r.status(), ExitStatus::Signal(9));
        assert_eq!(r.code, None);
        let r = ExitRecord::new(ExitStatus::Code(3), false, 5);
        assert_eq!(r.status(), ExitStatus::Code(3));
    }

    #[test]
    fn status_json_shape_is_stable() {
        let s = ShimStatus {
            id: "web".into(),
            shim: ProcId {
                pid: 10,
                start_time: 99,
            },
            init: Some(ProcId {
                pid: 11,
                start_time: 100,
            }),
            state: ShimStateName::Stopped,
            created_ms: 1,
            started_ms: Some(2),
            exit: Some(ExitRecord::new(ExitStatus::Code(7), false, 3)),
            execs: Vec::new(),
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            json,
            r#"{"id":"web","shim":{"pid":10,"start_time":99},"init":{"pid":11,"start_time":100},"state":"stopped","created_ms":1,"started_ms":2,"exit":{"code":7,"signal":null,"oom_killed":false,"at_ms":3}}"#
        );
        let back: ShimStatus = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
