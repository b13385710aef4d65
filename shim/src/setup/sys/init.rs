//! The wrappers the container's init (`--init`, `setup::child::init`) needs:
//! the signal mask, waiting for a signal, process groups, the foreground
//! process group of the terminal and the process name. None allocates.

use super::check;
use libc::{c_int, c_long, c_ulong, pid_t};
use nix::errno::Errno;
use std::os::fd::RawFd;

use super::SysResult;

/// A signal mask saved by [`block_all_signals`] (the kernel's: one bit per
/// signal 1..=64).
#[derive(Clone, Copy)]
pub struct SigMask(u64);

/// Every signal. Raw syscalls on the kernel's 8-byte set, not libc's
/// sigfillset: musl leaves out 32..=34 (reserved for its threads), which
/// the init must block and forward like any other. The kernel ignores
/// SIGKILL and SIGSTOP in it.
const ALL: u64 = u64::MAX;

/// Blocks every signal (SIGKILL and SIGSTOP excepted: the kernel never
/// blocks them); returns the mask it replaced.
pub fn block_all_signals() -> SysResult<SigMask> {
    let mut old: u64 = 0;
    // SAFETY: both sets are 8-byte integers on our stack, the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &ALL as *const u64,
            &mut old as *mut u64,
            8usize,
        )
    })?;
    Ok(SigMask(old))
}

/// Puts back a mask saved by [`block_all_signals`].
pub fn restore_signal_mask(mask: &SigMask) -> SysResult<()> {
    // SAFETY: the set is an 8-byte integer on our stack, the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask.0 as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    })
    .map(drop)
}

/// Waits for any pending signal (all must be blocked: see
/// [`block_all_signals`]) and takes it: rt_sigtimedwait(2) on every signal,
/// no timeout. Returns the signal number.
pub fn wait_any_signal() -> SysResult<c_int> {
    // SAFETY: the set is an 8-byte integer on our stack, the size passed;
    // null siginfo and timeout pointers are allowed.
    check(unsafe {
        libc::syscall(
            libc::SYS_rt_sigtimedwait,
            &ALL as *const u64,
            std::ptr::null_mut::<libc::siginfo_t>(),
            std::ptr::null::<libc::timespec>(),
            8usize,
        )
    })
    .map(|s| s as c_int)
}

/// setpgid(0, 0): this process leads a new process group of its own.
pub fn own_process_group() -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setpgid(0, 0) } as c_long).map(drop)
}

/// tcsetpgrp(fd, getpid()): this process's group becomes the foreground
/// group of the terminal open as `fd` (with SIGTTOU blocked, as the caller
/// is then in a background group).
pub fn take_foreground(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain syscalls.
    let pid = unsafe { libc::getpid() };
    // SAFETY: plain syscall.
    check(unsafe { libc::tcsetpgrp(fd, pid) } as c_long).map(drop)
}

/// PR_SET_NAME: the process's name (`/proc/PID/comm`), at most 15 bytes.
pub fn set_name(name: &std::ffi::CStr) -> SysResult<()> {
    // SAFETY: prctl reads a NUL-terminated string of at most 16 bytes.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_NAME,
            name.as_ptr() as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
            0 as c_ulong,
        )
    } as c_long)
    .map(drop)
}

/// waitpid(-1, WNOHANG) that reports "no child has ended" as `Ok(None)`.
pub fn reap_one(flags: c_int) -> SysResult<Option<(pid_t, c_int)>> {
    let mut status: c_int = 0;
    // SAFETY: `status` is a valid int to write to.
    match unsafe { libc::waitpid(-1, &mut status, flags) } {
        0 => Ok(None),
        r if r > 0 => Ok(Some((r, status))),
        _ => Err(Errno::last()),
    }
}

/// Overwrites this process's argument area `[start, end)` (what
/// `/proc/PID/cmdline` shows) with `name`, NUL bytes after it.
///
/// # Safety
///
/// `[start, end)` must be the argument area the kernel reports for this
/// process (`/proc/self/stat`, fields `arg_start` and `arg_end`): mapped and
/// writable (the top of the initial stack). No reference may point into it:
/// the caller must not read the process's arguments afterwards (std keeps
/// only raw pointers to them, read when `std::env::args` is called).
pub unsafe fn overwrite_args(start: usize, end: usize, name: &[u8]) {
    if end <= start {
        return;
    }
    let len = end - start;
    // SAFETY: per the contract, `len` bytes from `start` are this process's
    // own writable memory that nothing else refers to.
    let area = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, len) };
    area.fill(0);
    let n = name.len().min(len.saturating_sub(1));
    area[..n].copy_from_slice(&name[..n]);
}
