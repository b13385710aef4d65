//! `zctr-shim exec --tty`: a pty whose slave becomes the process's
//! controlling terminal, and the relay between it and the shim's own stdio
//! (the terminal in raw mode while it runs, restored after).

use super::ExecError;
use crate::setup::sys;
use nix::sys::termios::{self, SetArg, Termios};
use std::os::fd::{AsRawFd, OwnedFd};

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// The terminal settings of stdin, put back on drop.
struct Raw(Option<Termios>);

impl Raw {
    fn enter() -> Raw {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return Raw(None); // not a terminal: nothing to change
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        Raw(Some(saved))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
        }
    }
}

impl Pty {
    pub fn open() -> Result<Pty, ExecError> {
        let r = nix::pty::openpty(None, None)
            .map_err(|e| ExecError::new("tty", e as i32, format!("openpty: {}", e.desc())))?;
        for fd in [&r.master, &r.slave] {
            sys::set_cloexec(fd.as_raw_fd())
                .map_err(|e| ExecError::new("tty", e as i32, e.desc()))?;
        }
        Ok(Pty {
            master: r.master,
            slave: r.slave,
        })
    }

    /// Copies stdin to the pty and the pty to stdout until the pty has no
    /// process left (EOF or EIO on the master).
    pub fn relay(&self) {
        let _raw = Raw::enter();
        let master = self.master.as_raw_fd();
        let mut stdin_open = true;
        let mut buf = [0u8; 4096];
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: master,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if stdin_open { 0 } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            match sys::poll(&mut fds, -1) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
            if fds[0].revents != 0 {
                match sys::read(master, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let _ = sys::write_all(1, &buf[..n]);
                    }
                }
            }
            if fds[1].revents != 0 {
                match sys::read(0, &mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => {
                        if sys::write_all(master, &buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}
