//! A session: a process whose stdio the monitor holds (docs/protocol.md,
//! "Sessions"). Session 0 is the container's init (its stdout/stderr pipes,
//! or its terminal, and its stdin with `create --stdin`); sessions 1, 2, ...
//! are processes started by `Exec`. This module owns a session's fds on the
//! monitor's side: reading its outputs, writing its input without ever
//! blocking (a bounded buffer), closing it, sizing its terminal.

use common::protocol::{ExitStatus, Stream};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;
use zctr_shim_core::sys;

/// The most exec sessions (live or being drained) one monitor holds.
pub(crate) const MAX_SESSIONS: usize = 32;

/// Input bytes held for a process that does not read them yet; `Input`
/// past this is refused (EAGAIN).
pub(crate) const INPUT_CAP: usize = 64 * 1024;

/// Index of the terminal in [`Session::outs`].
pub(crate) const TTY: usize = 2;

/// The end of file character a terminal's line discipline turns into EOF
/// (VEOF, `^D`, at the start of a line).
const EOF_CHAR: u8 = 0x04;

/// How an exec'd process ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exit {
    pub status: ExitStatus,
    pub at_ms: u64,
    pub at: Instant,
}

pub(crate) struct Session {
    pub id: u32,
    /// Host pid of its process.
    pub pid: i32,
    /// It has a terminal: one stream, `Resize` applies.
    pub tty: bool,
    /// Read ends: stdout, stderr, terminal master (relayed as stdout).
    /// `None` once at EOF.
    pub outs: [Option<OwnedFd>; 3],
    /// Where `Input` goes (non-blocking): a stdin pipe, or the master.
    input: Option<OwnedFd>,
    /// `Input` the process did not take yet.
    in_buf: Vec<u8>,
    /// `CloseInput` came while input was still buffered.
    close_after: bool,
    /// Set when the monitor reaps its process (exec sessions only).
    pub exit: Option<Exit>,
}

pub(crate) type Refusal = (i32, String);

impl Session {
    pub fn new(id: u32, pid: i32, outs: [Option<OwnedFd>; 3], input: Option<OwnedFd>) -> Session {
        if let Some(fd) = &input {
            // Shared with the master's reads on a terminal: those come
            // after poll, and EAGAIN is handled there.
            let _ = sys::set_nonblocking(fd.as_raw_fd());
        }
        Session {
            id,
            pid,
            tty: outs[TTY].is_some(),
            outs,
            input,
            in_buf: Vec::new(),
            close_after: false,
            exit: None,
        }
    }

    /// Some output is not at EOF yet.
    pub fn open(&self) -> bool {
        self.outs.iter().any(Option::is_some)
    }

    pub fn close_outputs(&mut self) {
        self.outs = [None, None, None];
    }

    pub fn stream(which: usize) -> Stream {
        if which == 1 {
            Stream::Stderr
        } else {
            Stream::Stdout
        }
    }

    /// Reads output `which` into `buf`: the bytes read (0: none now), or
    /// `None` once it is closed (EOF; EIO on a terminal nobody holds).
    pub fn read(&mut self, which: usize, buf: &mut [u8]) -> Option<usize> {
        let fd = self.outs[which].as_ref()?.as_raw_fd();
        match sys::read(fd, buf) {
            Ok(0) => {
                self.outs[which] = None;
                None
            }
            Ok(n) => Some(n),
            Err(Errno::EAGAIN) => Some(0),
            Err(_) => {
                self.outs[which] = None;
                None
            }
        }
    }

    /// The input fd while bytes wait for it (poll it for POLLOUT).
    pub fn input_waiting(&self) -> Option<RawFd> {
        match &self.input {
            Some(fd) if !self.in_buf.is_empty() => Some(fd.as_raw_fd()),
            _ => None,
        }
    }

    /// Passes `data` to the process's input, keeping what it does not take
    /// now (up to [`INPUT_CAP`]).
    pub fn write_input(&mut self, data: &[u8]) -> Result<(), Refusal> {
        if self.input.is_none() || self.close_after {
            return Err((
                libc::EPIPE,
                format!("session {} has no open input", self.id),
            ));
        }
        if self.in_buf.len() + data.len() > INPUT_CAP {
            return Err((
                libc::EAGAIN,
                format!(
                    "session {}: its process does not read its input ({} bytes wait)",
                    self.id,
                    self.in_buf.len()
                ),
            ));
        }
        self.in_buf.extend_from_slice(data);
        self.flush_input();
        Ok(())
    }

    /// Writes buffered input as far as the process takes it.
    pub fn flush_input(&mut self) {
        let Some(fd) = &self.input else { return };
        while !self.in_buf.is_empty() {
            match sys::write(fd.as_raw_fd(), &self.in_buf) {
                Ok(n) => {
                    self.in_buf.drain(..n);
                }
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    // Nobody reads it any more (EPIPE, EIO): input is over.
                    self.input = None;
                    self.in_buf = Vec::new();
                    return;
                }
            }
        }
        self.in_buf = Vec::new();
        if self.close_after {
            self.close_after = false;
            self.input = None;
        }
    }

    /// The process reads end of file: a pipe is closed (once what is
    /// buffered is written), a terminal gets its EOF character.
    pub fn close_input(&mut self) -> Result<(), Refusal> {
        if self.input.is_none() || self.close_after {
            return Err((
                libc::EPIPE,
                format!("session {} has no open input", self.id),
            ));
        }
        if self.tty {
            return self.write_input(&[EOF_CHAR]);
        }
        self.close_after = true;
        self.flush_input();
        Ok(())
    }

    /// TIOCSWINSZ on its terminal.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), Refusal> {
        let Some(master) = self.outs[TTY]
            .as_ref()
            .or(self.input.as_ref().filter(|_| self.tty))
        else {
            return Err((
                if self.tty { libc::EIO } else { libc::ENOTTY },
                format!(
                    "session {} {}",
                    self.id,
                    if self.tty {
                        "has no terminal left"
                    } else {
                        "has no terminal"
                    }
                ),
            ));
        };
        sys::set_winsize(master.as_raw_fd(), rows, cols).map_err(|e| {
            (
                e as i32,
                format!("session {}: resize: {}", self.id, e.desc()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipe() -> (OwnedFd, OwnedFd) {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
    }

    #[test]
    fn input_is_buffered_bounded_and_closed_after_the_buffer() {
        let (r, w) = pipe();
        let mut s = Session::new(1, 0, [None, None, None], Some(w));
        // Fill the pipe (64 KiB) and then the buffer without blocking.
        let chunk = vec![b'x'; 8192];
        let (mut refused, mut accepted) = (None, 0);
        for _ in 0..64 {
            match s.write_input(&chunk) {
                Ok(()) => accepted += chunk.len(),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let (errno, msg) = refused.expect("input is bounded");
        assert_eq!(errno, libc::EAGAIN, "{msg}");
        assert!(s.input_waiting().is_some());
        s.close_input().unwrap();
        assert!(s.write_input(b"late").is_err());
        // The reader drains; the rest is written, then the pipe closes.
        let mut total = 0;
        let mut buf = [0u8; 65536];
        loop {
            s.flush_input();
            match sys::read(r.as_raw_fd(), &mut buf).unwrap() {
                0 => break,
                n => total += n,
            }
        }
        assert_eq!(total, accepted);
        assert!(accepted >= INPUT_CAP);
        assert!(s.input_waiting().is_none());
    }

    #[test]
    fn outputs_close_at_eof_and_resize_needs_a_terminal() {
        let (r, w) = pipe();
        let mut s = Session::new(2, 0, [Some(r), None, None], None);
        assert!(s.write_input(b"x").is_err());
        assert_eq!(s.resize(24, 80).unwrap_err().0, libc::ENOTTY);
        sys::write_all(w.as_raw_fd(), b"hi").unwrap();
        drop(w);
        let mut buf = [0u8; 16];
        assert_eq!(s.read(0, &mut buf), Some(2));
        assert!(s.open());
        assert_eq!(s.read(0, &mut buf), None);
        assert!(!s.open());
        assert_eq!(Session::stream(1), Stream::Stderr);
        assert_eq!(Session::stream(TTY), Stream::Stdout);
    }
}
