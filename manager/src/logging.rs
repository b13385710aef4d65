//! The daemon's diagnostics: `tracing` events written to stderr, one line
//! each, as human text (default) or JSON (`zctr daemon --log-format json`),
//! filtered by `--log-level` / `ZCTR_LOG` (`info` by default; a level, or
//! `target=level` pairs such as `info,zctr::api=debug`).
//!
//! A long-lived daemon must not die of a write error: `eprintln!` panics when
//! stderr cannot be written (a full disk under a log file, a closed pipe), and
//! the release build aborts on panic. So the writer here ignores write errors
//! (the line is lost), and tracing-subscriber's own report of a failed write
//! (an `eprintln!`, so a second chance to panic) is turned off.
//!
//! With `--log-file PATH` the lines go to that file instead (appended,
//! created 0640), and [`reopen`] (the daemon calls it on SIGHUP) opens the
//! path again: after logrotate moved the file, new lines go to a new one.
//!
//! Only `zctr daemon` installs the subscriber; the CLI prints its own errors.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How each event is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// `TIME LEVEL target: message key=value ...`
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`).
    Json,
}

/// A `--log-level` / `ZCTR_LOG` value: a level (`error`, `warn`, `info`,
/// `debug`, `trace`, `off`) or comma-separated `target=level` directives.
#[derive(Debug, Clone)]
pub struct Filter(Targets);

impl FromStr for Filter {
    type Err = String;

    fn from_str(s: &str) -> Result<Filter, String> {
        // tracing-subscriber takes a bare word that is no level as a target
        // name (all of its events); here it is a mistyped level.
        if let Some(bad) = s
            .split(',')
            .map(str::trim)
            .find(|d| !d.contains('=') && LevelFilter::from_str(d).is_err())
        {
            return Err(format!(
                "{bad:?} is not a log level (error, warn, info, debug, trace, off)"
            ));
        }
        Targets::from_str(s)
            .map(Filter)
            .map_err(|e| format!("{s:?} is not a log level or target=level list: {e}"))
    }
}

/// The `--log-file` in use: its path and the open file (None: stderr).
static SINK: Mutex<Option<(PathBuf, File)>> = Mutex::new(None);

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// Installs the subscriber for the rest of the process, writing to stderr or
/// to `file`. An error if the file cannot be opened or a subscriber was
/// installed already.
pub fn init(format: Format, filter: Filter, file: Option<&Path>) -> Result<(), String> {
    if let Some(path) = file {
        let f = open_log(path).map_err(|e| format!("--log-file {}: {e}", path.display()))?;
        *SINK.lock().unwrap_or_else(|p| p.into_inner()) = Some((path.to_path_buf(), f));
    }
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(|| QuietStderr)
        .with_ansi(false)
        .log_internal_errors(false);
    let registry = tracing_subscriber::registry().with(filter.0);
    match format {
        Format::Text => registry.with(fmt).try_init(),
        Format::Json => registry.with(fmt.json()).try_init(),
    }
    .map_err(|e| format!("logging: {e}"))
}

/// Opens the `--log-file` path again (SIGHUP): the old file is closed once
/// the new one is open; if the path cannot be opened the old file stays in
/// use and the error is returned (for the caller to log there). Without a
/// log file, nothing to do.
pub fn reopen() -> Result<(), String> {
    let mut sink = SINK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((path, file)) = sink.as_mut() {
        *file = open_log(path).map_err(|e| format!("reopening {}: {e}", path.display()))?;
    }
    Ok(())
}

/// stderr (or the log file) that never fails: a line that cannot be written
/// is dropped. The fmt layer formats each event into a buffer first and
/// hands it over in one `write_all`, so a line is written whole (one
/// `write(2)`, O_APPEND for a file) or not at all.
struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut sink = SINK.lock().unwrap_or_else(|p| p.into_inner());
        match sink.as_mut() {
            Some((_, file)) => drop(file.write_all(buf)),
            None => drop(io::stderr().write_all(buf)),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn a_bare_level_is_the_default_for_every_target() {
        let f: Filter = "debug".parse().unwrap();
        assert!(f.0.would_enable("zctr::api", &Level::DEBUG));
        assert!(!f.0.would_enable("zctr::api", &Level::TRACE));
        let f: Filter = "warn".parse().unwrap();
        assert!(!f.0.would_enable("zctr::registry", &Level::INFO));
        assert!(f.0.would_enable("zctr::registry", &Level::ERROR));
    }

    #[test]
    fn directives_set_levels_per_target() {
        let f: Filter = "info,zctr::api=debug".parse().unwrap();
        assert!(f.0.would_enable("zctr::api::conn", &Level::DEBUG));
        assert!(!f.0.would_enable("zctr::registry", &Level::DEBUG));
        assert!(f.0.would_enable("zctr::registry", &Level::INFO));
    }

    #[test]
    fn a_bad_level_is_refused_with_the_value() {
        let e = "loud".parse::<Filter>().unwrap_err();
        assert!(e.contains("\"loud\" is not a log level"), "{e}");
        let e = "info,zctr=loud".parse::<Filter>().unwrap_err();
        assert!(e.contains("\"info,zctr=loud\""), "{e}");
    }
}
