//! Messages: errors as one line on stderr (`zctr-oci: MSG`) and, with
//! `--log FILE`, lines in that file too, as runc writes them: with
//! `--log-format json` one object per line, `{"level":"error","msg":"...",
//! "time":"..."}` (what containerd reads back on failure), else
//! `time="..." level=error msg="..."`.

use crate::cli::{Global, LogFormat};
use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

struct Sink {
    file: Option<std::fs::File>,
    json: bool,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Opens `--log` (append, created 0600); a file that cannot be opened is
/// reported on stderr and otherwise ignored (the command still runs).
pub fn init(g: &Global) {
    let file = g.log.as_ref().and_then(|p| {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(p)
        {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("zctr-oci: --log {}: {e}", p.display());
                None
            }
        }
    });
    let _ = SINK.set(Sink {
        file,
        json: g.log_format == LogFormat::Json,
        debug: g.debug,
    });
}

/// RFC 3339, UTC, nanoseconds (as runc's state and logs).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = zctr_shim::log::civil(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

fn line(level: &str, msg: &str) {
    let Some(sink) = SINK.get() else { return };
    let Some(mut file) = sink.file.as_ref() else {
        return;
    };
    let time = rfc3339(SystemTime::now());
    let text = if sink.json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time={time:?} level={level} msg={msg:?}")
    };
    let _ = writeln!(file, "{text}");
}

/// An error: stderr and the log file.
pub fn error(msg: &str) {
    eprintln!("zctr-oci: {msg}");
    line("error", msg);
}

/// A warning: stderr and the log file.
pub fn warn(msg: &str) {
    eprintln!("zctr-oci: warning: {msg}");
    line("warning", msg);
}

/// With `--debug`: the log file (stderr is the container's with `create`).
pub fn debug(msg: &str) {
    if SINK.get().is_some_and(|s| s.debug) {
        line("debug", msg);
    }
}
