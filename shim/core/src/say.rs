//! The shim's own diagnostics on its stderr (`shim.log` under the manager).
//!
//! A long-lived process must not die of a write error, and `eprintln!`
//! panics when stderr cannot be written (a full disk, `/dev/full`, a closed
//! pipe). [`line`] formats into a fixed stack buffer (cut at [`LINE_MAX`]
//! bytes), writes only when a zero-timeout poll says stderr takes data (so a
//! pipe nobody reads does not block the loop), and ignores every error: a
//! diagnostic that cannot be written is lost, nothing else happens.

use crate::sys;
use std::fmt::{self, Write};

/// Longest line written, newline included.
pub const LINE_MAX: usize = 512;

struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // One byte stays free for the newline.
        let room = LINE_MAX - 1 - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// The bytes [`line`] would write for `args`.
fn render(args: fmt::Arguments<'_>, out: &mut Line) {
    let _ = out.write_fmt(args);
    out.buf[out.len] = b'\n';
    out.len += 1;
}

/// Writes one line to fd 2 if it can, without blocking; never fails.
pub fn line(args: fmt::Arguments<'_>) {
    let mut l = Line {
        buf: [0; LINE_MAX],
        len: 0,
    };
    render(args, &mut l);
    to_fd(2, &l.buf[..l.len]);
}

fn to_fd(fd: i32, bytes: &[u8]) {
    let mut pfd = [libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    }];
    if matches!(sys::poll(&mut pfd, 0), Ok(1)) && pfd[0].revents & libc::POLLOUT != 0 {
        let _ = sys::write_all(fd, bytes);
    }
}

/// `say!("fmt", args...)`: one line on stderr, see [`line`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::line(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn long_lines_are_cut_and_end_in_a_newline() {
        let mut l = Line {
            buf: [0; LINE_MAX],
            len: 0,
        };
        render(format_args!("{}", "x".repeat(2000)), &mut l);
        assert_eq!(l.len, LINE_MAX);
        assert_eq!(l.buf[LINE_MAX - 1], b'\n');
        let mut l = Line {
            buf: [0; LINE_MAX],
            len: 0,
        };
        render(format_args!("a {} b", 7), &mut l);
        assert_eq!(&l.buf[..l.len], b"a 7 b\n");
    }

    #[test]
    fn unwritable_targets_are_ignored() {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        to_fd(full.as_raw_fd(), b"lost\n");
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        to_fd(w.as_raw_fd(), b"broken pipe\n");
        // A full pipe: the poll says no, nothing blocks.
        let (_r, w) = nix::unistd::pipe().unwrap();
        nix::fcntl::fcntl(
            &w,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        while nix::unistd::write(&w, &[0u8; 4096]).is_ok() {}
        nix::fcntl::fcntl(
            &w,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
        )
        .unwrap();
        to_fd(w.as_raw_fd(), b"would block\n");
        to_fd(-1, b"bad fd\n");
    }
}
