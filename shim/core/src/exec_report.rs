//! What `zctr-shim exec --report-fd N` (started by the monitor for `Exec`)
//! writes on fd N before it exits: `ok PID` once the process has exec'd,
//! or `err ERRNO MESSAGE`. Both halves of the shim use this module, so the
//! writer and the reader cannot disagree.

/// The report of a process that runs as host pid `pid`.
pub fn ok(pid: i32) -> String {
    format!("ok {pid}")
}

/// The report of a process that could not start.
pub fn err(errno: i32, message: &str) -> String {
    format!("err {errno} {message}")
}

/// Reads a report: the pid, or (errno, message). What is not a report
/// (nothing at all: the helper died) is an error too.
pub fn parse(report: &[u8]) -> Result<i32, (i32, String)> {
    let text = String::from_utf8_lossy(report);
    let text = text.trim_end();
    if let Some(pid) = text.strip_prefix("ok ") {
        return match pid.parse::<i32>() {
            Ok(pid) if pid > 0 => Ok(pid),
            _ => Err((libc::EPROTO, format!("exec: bad report {text:?}"))),
        };
    }
    if let Some(rest) = text.strip_prefix("err ") {
        let (errno, message) = rest.split_once(' ').unwrap_or((rest, ""));
        if let Ok(errno) = errno.parse() {
            return Err((errno, message.to_string()));
        }
    }
    if text.is_empty() {
        return Err((
            libc::ECHILD,
            "exec: zctr-shim exec ended without a report".into(),
        ));
    }
    Err((libc::EPROTO, format!("exec: bad report {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        assert_eq!(parse(ok(42).as_bytes()), Ok(42));
        assert_eq!(
            parse(err(2, "exec: find executable /x: gone").as_bytes()),
            Err((2, "exec: find executable /x: gone".into()))
        );
        assert_eq!(parse(b"").unwrap_err().0, libc::ECHILD);
        assert_eq!(parse(b"ok -1").unwrap_err().0, libc::EPROTO);
        assert_eq!(parse(b"hello").unwrap_err().0, libc::EPROTO);
    }
}
