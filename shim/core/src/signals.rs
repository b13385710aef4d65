//! The signals the monitor handles. Setup blocks them before clone (so none
//! is lost while the container is made) and the blocked mask survives the
//! exec into the monitor, which reads them from a signalfd.

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

/// Blocks the signals the monitor handles and returns a signalfd for them.
/// Called before clone, so no signal is lost; the child unblocks them.
pub fn signal_fd() -> nix::Result<SignalFd> {
    use nix::sys::signal::SigSet;
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
    ] {
        set.add(s);
    }
    set.thread_block()?;
    SignalFd::with_flags(
        &set,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
}
