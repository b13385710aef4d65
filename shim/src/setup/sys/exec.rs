//! The wrappers `setup::exec` needs beyond the container child's: chroot,
//! the dumpable flag, the controlling terminal, umask, window size and fds
//! moved above a floor. Like the rest of `sys`, none allocates.

use super::check;
use libc::{c_int, c_long, c_ulong};
use std::ffi::CStr;
use std::os::fd::{OwnedFd, RawFd};

use super::SysResult;

/// chroot(2).
pub fn chroot(path: &CStr) -> SysResult<()> {
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::chroot(path.as_ptr()) } as c_long).map(drop)
}

/// `PR_SET_DUMPABLE`: with 0, `/proc/PID/*` of this process (its `exe`, its
/// memory, its fds) is out of reach of anyone without CAP_SYS_PTRACE in the
/// initial user namespace, until the next exec resets it.
pub fn set_dumpable(on: bool) -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_DUMPABLE,
            on as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
        )
    } as c_long)
    .map(drop)
}

/// Makes the terminal open as `fd` the controlling terminal of this
/// process's (new) session: `ioctl(TIOCSCTTY, 0)`.
pub fn set_controlling_tty(fd: RawFd) -> SysResult<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check(unsafe { libc::ioctl(fd, libc::TIOCSCTTY as _, 0 as c_int) } as c_long).map(drop)
}

/// The terminal open as `fd` gets `rows` x `cols` (TIOCSWINSZ).
pub fn set_window_size(fd: RawFd, rows: u16, cols: u16) -> SysResult<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid winsize on our stack for the call.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ as _, &ws as *const libc::winsize) } as c_long)
        .map(drop)
}

/// umask(2); it cannot fail.
pub fn set_umask(mask: u32) {
    // SAFETY: plain syscall.
    unsafe { libc::umask(mask as libc::mode_t) };
}

/// A close-on-exec duplicate of `fd` numbered `min` or above
/// (`F_DUPFD_CLOEXEC`), owned.
pub fn dup_above(fd: RawFd, min: RawFd) -> SysResult<OwnedFd> {
    // SAFETY: plain fcntl on an fd number.
    let new = check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) } as c_long)?;
    // SAFETY: fcntl just returned this new fd to us; nothing else holds it.
    Ok(unsafe { super::own_fd(new as RawFd) })
}

/// Whether `fd` is open (`F_GETFD`).
pub fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the fd's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}
