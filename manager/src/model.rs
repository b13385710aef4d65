//! The JSON the API speaks and the record kept in `<root>/<id>/container.json`.

use common::config::ContainerConfig;
use common::id::ContainerId;
use common::state::{ExecRecord, ExitRecord, ProcId};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Body of `POST /v1/containers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub id: ContainerId,
    pub config: ContainerConfig,
}

/// Where a container stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Being set up (bundle, cgroup, shim); not yet usable.
    Creating,
    /// Set up, its process waits just before exec.
    Created,
    Running,
    /// Frozen by the cgroup freezer.
    Paused,
    /// Its init process ended (or its shim died).
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// How a container's init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Shell convention: the exit code, or 128 + signal.
    pub exit_code: i32,
    /// The code passed to exit, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when it was killed.
    pub signal: Option<i32>,
    pub oom_killed: bool,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

impl ExitInfo {
    pub fn from_record(r: &ExitRecord, oom_killed: bool) -> Self {
        Self {
            exit_code: r.status().code(),
            code: r.code,
            signal: r.signal,
            oom_killed: r.oom_killed || oom_killed,
            at_ms: r.at_ms,
        }
    }
}

/// Everything the manager keeps about a container, persisted atomically on
/// every change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: ContainerId,
    pub config: ContainerConfig,
    pub status: Status,
    /// Cgroup path relative to every hierarchy's root (= linux.cgroupsPath).
    pub cgroup: String,
    pub state_dir: PathBuf,
    pub bundle: PathBuf,
    /// The exact shim command line (re-runnable by hand for debugging).
    pub shim_command: Vec<String>,
    /// The shim process: pid and start time.
    pub shim: Option<ProcId>,
    /// The container's init process on the host: pid and start time.
    pub init: Option<ProcId>,
    /// Exposed ports from the image meta.
    pub exposed_ports: Vec<String>,
    pub created_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub exit: Option<ExitInfo>,
    /// Why it stopped when that was not its own doing (e.g. "shim died").
    pub stop_reason: Option<String>,
    /// Times its restart policy started it again.
    #[serde(default)]
    pub restart_count: u32,
    /// The user stopped it (`stop`, `kill`): its policy does not restart it
    /// until the user starts it again.
    #[serde(default)]
    pub stopped_by_user: bool,
    /// Restarts in a row, each shortly after the last (the back-off's step).
    #[serde(default)]
    pub backoff_step: u32,
}

/// One line of `GET /v1/containers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub id: String,
    pub status: Status,
    pub pid: Option<i32>,
    pub created_ms: u64,
    pub exit_code: Option<i32>,
}

impl From<&ContainerRecord> for Summary {
    fn from(r: &ContainerRecord) -> Self {
        Self {
            id: r.id.as_str().to_string(),
            status: r.status,
            pid: r.init.map(|p| p.pid),
            created_ms: r.created_ms,
            exit_code: r.exit.map(|e| e.exit_code),
        }
    }
}

/// `GET /v1/containers/{id}`: the record plus what is live now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inspect {
    #[serde(flatten)]
    pub record: ContainerRecord,
    /// Host pids in the container's cgroup now.
    pub pids: Vec<i32>,
    /// Processes run by `exec`: the live ones and the last ones that ended,
    /// oldest first (from the monitor's `status.json`, so they survive a
    /// daemon restart).
    #[serde(default)]
    pub execs: Vec<ExecInfo>,
}

/// One exec'd process in `inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecInfo {
    pub session: u32,
    /// Its pid on the host.
    pub pid: i32,
    pub tty: bool,
    /// Milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// It has not ended (and its container has not stopped).
    pub running: bool,
    /// How it ended; `null` while it runs.
    pub exit: Option<ExitInfo>,
}

impl ExecInfo {
    /// `x` as shown for a container whose status is `status`.
    pub fn new(x: &ExecRecord, status: Status) -> Self {
        Self {
            session: x.session,
            pid: x.pid,
            tty: x.tty,
            started_ms: x.started_ms,
            running: x.exit.is_none() && status != Status::Stopped,
            exit: x.exit.map(|e| ExitInfo::from_record(&e, false)),
        }
    }
}

/// Answer of `POST /v1/containers/{id}/wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitResponse {
    pub id: String,
    pub exit: Option<ExitInfo>,
    pub stop_reason: Option<String>,
}

/// An error body: `{"code": "...", "message": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
