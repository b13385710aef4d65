//! `zctr-shim start|kill|state`: talk to a running shim through its socket.

use common::layout::{SOCKET_FILE, STATUS_FILE};
use common::protocol::{read_frame, write_frame, ManagerMsg, ShimMsg};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

fn connect(dir: &Path) -> Result<UnixStream, String> {
    let path = dir.join(SOCKET_FILE);
    let s = UnixStream::connect(&path)
        .map_err(|e| format!("{}: {e} (is the shim running?)", path.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut s2 = s;
    match read_frame::<ShimMsg, _>(&mut s2) {
        Ok(Some(ShimMsg::Hello { .. })) => Ok(s2),
        Ok(other) => Err(format!("unexpected first frame {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

fn converse(
    dir: &Path,
    msg: ManagerMsg,
    done: impl Fn(&ShimMsg) -> Option<Result<(), String>>,
) -> i32 {
    let result = connect(dir).and_then(|mut s| {
        write_frame(&mut s, &msg).map_err(|e| e.to_string())?;
        loop {
            match read_frame::<ShimMsg, _>(&mut s) {
                Ok(Some(ShimMsg::CommandFailed { message, .. })) => return Err(message),
                Ok(Some(m)) => {
                    if let Some(r) = done(&m) {
                        return r;
                    }
                }
                Ok(None) => return Err("the shim closed the connection".into()),
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(state_dir = %dir.display(), "{e}");
            1
        }
    }
}

pub fn start(dir: &Path) -> i32 {
    let code = converse(dir, ManagerMsg::Start, |m| match m {
        ShimMsg::Started => Some(Ok(())),
        ShimMsg::Exited { status, .. } => Some(Err(format!(
            "the container exited before it started: {status:?}"
        ))),
        _ => None,
    });
    if code == 0 {
        crate::setup::shim_mode::run_poststart(dir, init_pid(dir));
    }
    code
}

/// The container init's pid from status.json, for the poststart hooks' state.
fn init_pid(dir: &Path) -> Option<i32> {
    let text = crate::setup::readfile::read_in(dir, STATUS_FILE, STATUS_MAX).ok()?;
    let status: common::state::ShimStatus = serde_json::from_slice(&text).ok()?;
    status.init.map(|p| p.pid)
}

pub fn kill(dir: &Path, signal: i32) -> i32 {
    let result = connect(dir).and_then(|mut s| {
        write_frame(&mut s, &ManagerMsg::Kill { signal }).map_err(|e| e.to_string())?;
        // A Status right behind it: its Hello acknowledges the kill.
        write_frame(&mut s, &ManagerMsg::Status).map_err(|e| e.to_string())?;
        loop {
            match read_frame::<ShimMsg, _>(&mut s) {
                Ok(Some(ShimMsg::CommandFailed { message, .. })) => return Err(message),
                Ok(Some(ShimMsg::Hello { .. })) | Ok(None) => return Ok(()),
                Ok(Some(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(state_dir = %dir.display(), "{e}");
            1
        }
    }
}

/// The largest status.json `state` prints (it is a few hundred bytes).
const STATUS_MAX: u64 = 64 * 1024;

pub fn state(dir: &Path) -> i32 {
    match crate::setup::readfile::read_in(dir, STATUS_FILE, STATUS_MAX) {
        Ok(s) => {
            println!("{}", String::from_utf8_lossy(&s).trim_end());
            0
        }
        Err(e) => {
            tracing::error!(state_dir = %dir.display(), "{e}");
            1
        }
    }
}
