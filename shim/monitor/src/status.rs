//! The shim's persisted view of its container: `status.json`, replaced atomically.

use common::layout::STATUS_FILE;
use common::state::{ProcId, ShimStatus};
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Start time of `pid` (field 22 of /proc/PID/stat, clock ticks since boot).
pub fn start_time(pid: i32) -> io::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    common::state::parse_proc_stat(&stat)
        .map(|s| s.start_time)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/stat: unparsable"),
            )
        })
}

/// Whether `pid` is stopped (state `T`: SIGSTOP, SIGTSTP, ...).
pub fn is_stopped(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| common::state::parse_proc_stat(&s))
        .is_some_and(|s| s.state == 'T')
}

pub fn proc_id(pid: i32) -> io::Result<ProcId> {
    Ok(ProcId {
        pid,
        start_time: start_time(pid)?,
    })
}

/// Writes `status` to `<dir>/status.json` via a temp file, fsync and rename.
/// On failure the temp file is removed (on a full disk it would hold the last
/// free blocks) and `status.json` keeps its previous content.
pub fn write(dir: &Path, status: &ShimStatus) -> io::Result<()> {
    let tmp = dir.join(format!(".{STATUS_FILE}.tmp"));
    let written = write_tmp(&tmp, status).and_then(|()| fs::rename(&tmp, dir.join(STATUS_FILE)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn write_tmp(tmp: &Path, status: &ShimStatus) -> io::Result<()> {
    let json = serde_json::to_vec(status).map_err(io::Error::other)?;
    let mut f = fs::File::create(tmp)?;
    f.write_all(&json)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_a_live_process() {
        assert!(start_time(std::process::id() as i32).unwrap() > 0);
    }
}
