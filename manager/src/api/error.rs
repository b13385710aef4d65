//! The one place where errors become HTTP statuses and machine-readable codes.

use crate::bundle::BundleError;
use crate::error::Error;
use crate::session::process::ProcessError;
use crate::session::SessionError;
use crate::spawn::SpawnError;
use crate::store::StoreError;
use hyper::StatusCode;
use zctr_cgroups::CgroupError;

/// The status and code of `e`.
pub fn classify(e: &Error) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        Error::NotFound(_) => (S::NOT_FOUND, "not_found"),
        Error::AlreadyExists(_) => (S::CONFLICT, "already_exists"),
        Error::InvalidState { .. } => (S::CONFLICT, "invalid_state"),
        Error::BadRequest(_) => (S::BAD_REQUEST, "bad_request"),
        Error::BadSignal(_) => (S::BAD_REQUEST, "invalid_signal"),
        Error::Bundle(b) => match b {
            BundleError::Config(c) => match c.field() {
                Some(f) if f.starts_with("limits") => (S::BAD_REQUEST, "invalid_limits"),
                _ => (S::BAD_REQUEST, "invalid_config"),
            },
            BundleError::RootfsMissing(_) => (S::BAD_REQUEST, "rootfs_missing"),
            BundleError::RootfsNotDir(_) => (S::BAD_REQUEST, "rootfs_not_dir"),
            BundleError::SourceMissing { .. } => (S::BAD_REQUEST, "source_missing"),
            BundleError::Meta(_) | BundleError::MetaFile(_) => (S::BAD_REQUEST, "bad_meta"),
            BundleError::Spec(_) => (S::BAD_REQUEST, "invalid_config"),
            BundleError::Store(s) => store(s),
        },
        Error::Cgroup(CgroupError::InvalidPath { .. }) => (S::BAD_REQUEST, "invalid_cgroup"),
        Error::Cgroup(e) if e.is_refusal() => (S::BAD_REQUEST, "unsupported_limit"),
        Error::Cgroup(_) => (S::INTERNAL_SERVER_ERROR, "cgroup_error"),
        Error::Store(s) => store(s),
        Error::Spawn(SpawnError::SetupFailed { .. }) => (S::INTERNAL_SERVER_ERROR, "setup_failed"),
        Error::Spawn(_) => (S::INTERNAL_SERVER_ERROR, "shim_failed"),
        Error::Shim(_) | Error::ShimUnavailable(_) => (S::SERVICE_UNAVAILABLE, "shim_unavailable"),
        Error::ShimCommand { .. } => (S::INTERNAL_SERVER_ERROR, "shim_refused"),
        Error::Timeout { .. } => (S::GATEWAY_TIMEOUT, "timeout"),
        Error::ShuttingDown => (S::SERVICE_UNAVAILABLE, "shutting_down"),
        Error::RequestTimeout(_) => (S::REQUEST_TIMEOUT, "request_timeout"),
        Error::Session { source, .. } => session(source),
        Error::Busy(_) => (S::SERVICE_UNAVAILABLE, "busy"),
    }
}

fn session(e: &SessionError) -> (StatusCode, &'static str) {
    use StatusCode as S;
    match e {
        SessionError::Process(ProcessError::Invalid(_) | ProcessError::User(_)) => {
            (S::BAD_REQUEST, "invalid_exec")
        }
        SessionError::Process(_) => (S::INTERNAL_SERVER_ERROR, "state_error"),
        SessionError::Conn(_) | SessionError::Closed => {
            (S::SERVICE_UNAVAILABLE, "shim_unavailable")
        }
        SessionError::Timeout(_) => (S::GATEWAY_TIMEOUT, "timeout"),
        SessionError::Refused { errno, .. } => match *errno {
            // The container is not running (stopped, paused, created).
            libc::ESRCH | libc::EBUSY | libc::EINVAL => (S::CONFLICT, "invalid_state"),
            // Too many exec'd processes in it (or starting at once).
            libc::EAGAIN => (S::SERVICE_UNAVAILABLE, "busy"),
            libc::ENOENT | libc::EACCES | libc::ENOEXEC | libc::ENOTDIR => {
                (S::BAD_REQUEST, "exec_failed")
            }
            // A monitor that predates sessions.
            libc::ENOSYS => (S::NOT_IMPLEMENTED, "not_supported"),
            _ => (S::INTERNAL_SERVER_ERROR, "shim_refused"),
        },
    }
}

fn store(s: &StoreError) -> (StatusCode, &'static str) {
    match s {
        StoreError::NoSpace { .. } => (StatusCode::INSUFFICIENT_STORAGE, "no_space"),
        StoreError::Exists { .. } => (StatusCode::CONFLICT, "already_exists"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "state_error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{check, Op};
    use crate::model::Status;
    use std::path::PathBuf;

    #[test]
    fn codes_are_stable() {
        let cases: Vec<(Error, u16, &str)> = vec![
            (Error::NotFound("x".into()), 404, "not_found"),
            (Error::AlreadyExists("x".into()), 409, "already_exists"),
            (
                Error::InvalidState {
                    id: "x".into(),
                    source: check(Op::Start, Status::Running).unwrap_err(),
                },
                409,
                "invalid_state",
            ),
            (Error::BadRequest("x".into()), 400, "bad_request"),
            (
                Error::RequestTimeout(std::time::Duration::from_secs(1)),
                408,
                "request_timeout",
            ),
            (
                BundleError::RootfsMissing(PathBuf::from("/x")).into(),
                400,
                "rootfs_missing",
            ),
            (
                BundleError::RootfsNotDir(PathBuf::from("/x")).into(),
                400,
                "rootfs_not_dir",
            ),
            (
                Error::Store(StoreError::NoSpace {
                    path: PathBuf::from("/x"),
                }),
                507,
                "no_space",
            ),
            (
                Error::Bundle(BundleError::Store(StoreError::NoSpace {
                    path: PathBuf::from("/x"),
                })),
                507,
                "no_space",
            ),
            (
                SpawnError::SetupFailed {
                    step: "mount".into(),
                    errno: 2,
                    message: "x".into(),
                }
                .into(),
                500,
                "setup_failed",
            ),
            (Error::ShimUnavailable("x".into()), 503, "shim_unavailable"),
        ];
        let refused = |errno| Error::Session {
            id: "x".into(),
            source: SessionError::Refused {
                errno,
                message: "m".into(),
            },
        };
        let cases: Vec<(Error, u16, &str)> = cases
            .into_iter()
            .chain([
                (refused(libc::ESRCH), 409, "invalid_state"),
                (refused(libc::EINVAL), 409, "invalid_state"),
                (refused(libc::EAGAIN), 503, "busy"),
                (refused(libc::ENOENT), 400, "exec_failed"),
                (refused(libc::ENOSYS), 501, "not_supported"),
                (refused(libc::EIO), 500, "shim_refused"),
                (
                    Error::Session {
                        id: "x".into(),
                        source: SessionError::Process(ProcessError::Invalid("m".into())),
                    },
                    400,
                    "invalid_exec",
                ),
            ])
            .collect();
        for (e, status, code) in cases {
            let (s, c) = classify(&e);
            assert_eq!((s.as_u16(), c), (status, code), "{e}");
        }
    }

    #[test]
    fn config_errors_name_limits_apart() {
        let mut cfg = common::config::ContainerConfig::new("/rootfs");
        cfg.limits.memory_bytes = Some(1);
        let e = Error::Bundle(BundleError::Config(cfg.validate().unwrap_err()));
        assert_eq!(classify(&e).1, "invalid_limits");
        let mut cfg = common::config::ContainerConfig::new("/rootfs");
        cfg.hostname = Some("-bad-".into());
        let e = Error::Bundle(BundleError::Config(cfg.validate().unwrap_err()));
        assert_eq!(classify(&e).1, "invalid_config");
    }
}
