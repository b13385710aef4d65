//! A failed setup step, and the one place its report is written: on the
//! shim's stderr, on `create`'s ready pipe (what the waiting `zctr-shim
//! create` prints) and as a `SetupFailed` frame on the control connection
//! (what the manager reads). The frame's text is cut to
//! [`protocol::MAX_TEXT`] bytes, at a character boundary.

use crate::channel::ChildFailure;
use crate::sys;
use common::protocol::{self, ShimMsg};
use nix::errno::Errno;
use std::os::fd::RawFd;

/// A failed setup step, as reported to the manager.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {message}")]
pub struct SetupError {
    pub step: String,
    pub errno: i32,
    pub message: String,
}

impl SetupError {
    pub fn new(step: &str, errno: i32, message: impl Into<String>) -> Self {
        SetupError {
            step: step.into(),
            errno,
            message: message.into(),
        }
    }

    pub fn io(step: &str, e: &std::io::Error) -> Self {
        SetupError::new(step, e.raw_os_error().unwrap_or(0), e.to_string())
    }

    pub fn errno(step: &str, what: &str, e: Errno) -> Self {
        SetupError::new(step, e as i32, format!("{what}: {}", e.desc()))
    }

    /// Says what failed: a line on stderr prefixed with `who`, the error on
    /// the ready pipe `ready`, and a `SetupFailed` frame on the control
    /// connection `control`. Every write is best effort.
    pub fn report(&self, who: &str, ready: Option<RawFd>, control: Option<RawFd>) {
        crate::say!("{who}: setup failed: {self}");
        self.deliver(ready, control);
    }

    /// [`SetupError::report`] without the stderr line (for a caller that
    /// logs it its own way): the error on `ready`, the frame on `control`.
    pub fn deliver(&self, ready: Option<RawFd>, control: Option<RawFd>) {
        if let Some(fd) = ready {
            let _ = sys::write_all(fd, self.to_string().as_bytes());
        }
        if let Some(fd) = control {
            let msg = ShimMsg::SetupFailed {
                step: self.step.clone(),
                errno: self.errno,
                message: truncate(&self.message).to_string(),
            };
            if let Ok(frame) = protocol::encode_frame_vec(&msg) {
                let _ = sys::write_all(fd, &frame);
            }
        }
    }
}

impl From<ChildFailure> for SetupError {
    fn from(f: ChildFailure) -> Self {
        let message = f.to_string();
        SetupError {
            step: f.step,
            errno: f.errno,
            message,
        }
    }
}

/// `s` cut to at most [`protocol::MAX_TEXT`] bytes, at a character boundary.
fn truncate(s: &str) -> &str {
    let mut end = s.len().min(protocol::MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_cut_at_a_character_boundary() {
        let long = "é".repeat(protocol::MAX_TEXT);
        let cut = truncate(&long);
        assert!(cut.len() <= protocol::MAX_TEXT && cut.len() > protocol::MAX_TEXT - 2);
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn one_report_reaches_the_pipe_and_the_control_connection() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let (mut c1, c2) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = SetupError::new("mount", libc::EPERM, "x".repeat(3 * protocol::MAX_TEXT));
        use std::os::fd::AsRawFd;
        e.report("test", Some(w.as_raw_fd()), Some(c2.as_raw_fd()));
        drop((w, c2));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut text).unwrap();
        assert_eq!(text, e.to_string());
        match protocol::read_frame::<ShimMsg, _>(&mut c1).unwrap() {
            Some(ShimMsg::SetupFailed {
                step,
                errno,
                message,
            }) => {
                assert_eq!((step.as_str(), errno), ("mount", libc::EPERM));
                assert_eq!(message.len(), protocol::MAX_TEXT);
            }
            other => panic!("{other:?}"),
        }
    }
}
