//! Reading other processes' state from /proc, for tests that must not race
//! a process's start-up.

use crate::cmd::wait_until;
use std::time::Duration;

/// Whether `pid` has a handler installed for `sig` (its `SigCgt` mask). A
/// container's init is pid 1 of its namespace: the kernel drops a signal it
/// has no handler for, so tests wait for the handler before sending one.
pub fn catches(pid: i32, sig: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (1u64 << (sig - 1)) != 0)
}

/// Waits up to `timeout` until `pid` catches `sig`; false if it never did.
pub fn wait_catches(pid: i32, sig: i32, timeout: Duration) -> bool {
    wait_until(timeout, || catches(pid, sig))
}

/// This process's capability bounding set as sorted names (`CAP_CHOWN`, ...),
/// as the probe reports it.
pub fn own_bounding() -> Result<Vec<String>, crate::Error> {
    let probe = crate::bins::find("zctr-probe")?;
    let out = crate::run_cmd(
        std::process::Command::new(probe).arg("report"),
        Duration::from_secs(30),
    )?;
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| crate::Error::Io {
            context: format!("probe report: {}", crate::describe(&out)),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
    let mut names: Vec<String> = report["caps"]["bounding"]["names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_without_handlers_catches_nothing() {
        // `sleep` installs no handler; the test process itself has none for SIGUSR2.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(!catches(pid, libc::SIGTERM));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!catches(std::process::id() as i32, libc::SIGUSR2));
        assert!(!catches(-5, libc::SIGTERM));
    }
}
