//! The crate's one error type. Callers match on the variant; the `Display` text
//! carries the context a failing test should print.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a helper can fail with.
#[derive(Debug)]
pub enum Error {
    /// A system call or file operation failed; `context` says what was attempted.
    Io { context: String, source: io::Error },
    /// A static binary (probe, shim, zctr) was not found.
    BinaryMissing { name: String, path: PathBuf },
    /// busybox is not installed or not usable inside a rootfs (tests may skip on this).
    BusyboxUnavailable(String),
    /// A path given to a rootfs helper escapes the rootfs or crosses a symlink.
    UnsafePath { path: PathBuf, reason: &'static str },
    /// The test process sits in cgroups whose paths do not form one chain, so no
    /// single relative path lies below its own cgroup in every hierarchy.
    NoCommonCgroupPath { own_paths: Vec<String> },
    /// No cgroup hierarchy is mounted / listed in /proc/self/cgroup.
    NoCgroups,
    /// A command ran longer than allowed and was killed.
    Timeout {
        command: String,
        timeout: Duration,
        stdout: String,
        stderr: String,
    },
    /// Serializing a spec failed.
    Json(serde_json::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::BinaryMissing { name, path } => write!(
                f,
                "static binary {name} not found at {} (run scripts/build-static.sh, or set ZCTR_BIN_DIR)",
                path.display()
            ),
            Error::BusyboxUnavailable(why) => write!(f, "busybox unavailable: {why}"),
            Error::UnsafePath { path, reason } => {
                write!(f, "refusing path {}: {reason}", path.display())
            }
            Error::NoCommonCgroupPath { own_paths } => write!(
                f,
                "own cgroup paths {own_paths:?} do not form a chain; no common test cgroup path"
            ),
            Error::NoCgroups => write!(f, "no mounted cgroup hierarchy found for this process"),
            Error::Timeout {
                command,
                timeout,
                stdout,
                stderr,
            } => write!(
                f,
                "{command} timed out after {timeout:?} and was killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            ),
            Error::Json(e) => write!(f, "json: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Json(e) => Some(e),
            _ => None,
        }
    }
}

/// Attach context to an `io::Result`.
pub(crate) trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Error>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            context: what(),
            source,
        })
    }
}
