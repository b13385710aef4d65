//! Terminals: the master of the init's pty (opened by the init itself on
//! the container's devpts) or of an exec'd process's (opened here) goes to
//! the caller over `--console-socket` (a Unix stream socket; SCM_RIGHTS),
//! as runc does.

use crate::error::{Context, Error, Result};
use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub name: String,
}

/// Opens a new pty pair on the host's devpts (the slave without becoming our
/// controlling terminal), for `exec`.
pub fn open(size: Option<(u16, u16)>) -> Result<Pty> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "console: posix_openpt".into())?;
    grantpt(&master).ctx(|| "console: grantpt".into())?;
    unlockpt(&master).ctx(|| "console: unlockpt".into())?;
    let name = ptsname_r(&master).ctx(|| "console: ptsname".into())?;
    let slave = nix::fcntl::open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("console: open {name}"))?;
    let master = OwnedFd::from(master);
    if let Some((rows, cols)) = size {
        crate::sys::set_winsize(&master, rows, cols)
            .ctx(|| "console: process.consoleSize (TIOCSWINSZ)".into())?;
    }
    Ok(Pty {
        master,
        slave,
        name,
    })
}

/// Sends the master to the console socket at `path` (with the pty's name as
/// the message, like runc).
pub fn send(path: &Path, master: &OwnedFd, name: &str) -> Result<()> {
    let what = || format!("--console-socket {}", path.display());
    let sock = UnixStream::connect(path).ctx(what)?;
    let fds = [master.as_raw_fd()];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| Error::at(what(), format!("send the pty master: {}", e.desc())))?;
    Ok(())
}
