//! `--init`: a tiny init as the container's PID 1 (docs/shim.md, "--init").
//!
//! No binary enters the container: once the child is ready to exec (every
//! setup step done, seccomp filter, user and capabilities applied), it forks.
//! The new child execs the container's process exactly as it would have
//! without `--init`, in a process group of its own (the terminal's
//! foreground group when there is one) with its signal mask back as it was.
//! The parent, PID 1 of the container's PID namespace, never execs: it
//! drops every fd and every capability but CAP_KILL, is not dumpable, and
//! loops on `rt_sigtimedwait` with every signal blocked:
//!
//! - SIGCHLD: reaps every child that has ended (orphans of the container
//!   are reparented to it); when the process itself has ended, exits with
//!   its exit code, or 128+N when signal N killed it (a PID 1 cannot
//!   re-raise a signal on itself);
//! - any other signal: sent on to the process (its pid, not its group: as
//!   tini and `docker run --init` do).
//!
//! Allocation-free, like the rest of the child.

use super::{debug, ChildCtx, Context, Step};
use crate::setup::sys::{self, SigMask};
use libc::{c_int, pid_t};
use nix::errno::Errno;

/// linux/capability.h.
const CAP_KILL: u32 = 5;

/// The init's name in `/proc/1/comm` (and `ps`).
const NAME: &std::ffi::CStr = c"zctr-init";

/// Forks the container's process off. Returns in the new child (which goes
/// on to exec); the parent becomes the init and never returns.
pub(super) fn split<'a>(ctx: &ChildCtx<'a>) -> Step<'a> {
    debug(ctx, "init: fork the process");
    // Blocked before the fork: a signal sent to PID 1 from now on waits in
    // its queue for the loop (a blocked signal reaches a namespace's init
    // even without a handler), and the process starts with none delivered
    // before its mask is back.
    let mask = sys::block_all_signals().at("init: block signals", b"")?;
    // Not dumpable: /proc/1/exe, /proc/1/mem, /proc/1/environ and ptrace
    // are out of the container's reach (exec makes the process dumpable
    // again by the usual rules, as without --init).
    sys::set_dumpable(false).at("init: make PID 1 non-dumpable", b"")?;
    // SAFETY: the container child is single-threaded (cloned from the
    // single-threaded shim, it starts no thread).
    let pid = unsafe { sys::fork() }.at("init: fork the process", b"")?;
    if pid == 0 {
        return process_side(ctx, &mask);
    }
    serve(ctx, pid)
}

/// The process's side of the fork, before exec.
fn process_side<'a>(ctx: &ChildCtx<'a>, mask: &SigMask) -> Step<'a> {
    sys::own_process_group().at("init: process group of the process", b"")?;
    if ctx.opts.tty {
        // SIGTTOU is blocked: a background group may take the terminal.
        sys::take_foreground(0).at("init: foreground of the terminal", b"")?;
    }
    sys::restore_signal_mask(mask).at("init: restore the signal mask", b"")
}

/// PID 1 from the fork on. Never returns: exits with the process's code.
fn serve(ctx: &ChildCtx, child: pid_t) -> ! {
    let _ = sys::set_name(NAME);
    if let Some((start, end)) = ctx.args_area {
        // SAFETY: the area comes from `args_area`, read by the shim for
        // itself before clone: the same addresses in this copy of its
        // memory. The init never reads its arguments.
        unsafe { sys::overwrite_args(start, end, NAME.to_bytes()) };
    }
    close_all(ctx);
    // Only what forwarding may need, within the container's own set (a
    // process that changed its uid can still be signalled with CAP_KILL).
    // Best effort: the init holds at most the container's set anyway.
    let kill = 1u64 << CAP_KILL;
    let caps = &ctx.plan.caps;
    let _ = sys::capset(caps.effective & kill, caps.permitted & kill, 0);
    loop {
        match sys::wait_any_signal() {
            Ok(libc::SIGCHLD) => reap(child, libc::WNOHANG),
            Ok(sig) => {
                let _ = sys::kill(child, sig);
            }
            Err(Errno::EINTR) => {}
            // No rt_sigtimedwait (a seccomp profile that refuses it): still
            // reap, blocking, and end with the process; nothing forwarded.
            Err(_) => reap(child, 0),
        }
    }
}

/// Where this process's arguments are (`arg_start`, `arg_end` of
/// `/proc/self/stat`): the init overwrites them, so that `/proc/1/cmdline`
/// shows `zctr-init` instead of the shim's command line with its host
/// paths. Read by the shim before clone (it allocates); `None` when
/// unreadable (the command line then stays).
pub fn args_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields 48 and 49; the comm (field 2) may hold spaces, so count from
    // its closing parenthesis (field 3 is the first after it).
    let mut rest = stat[stat.rfind(')')? + 1..].split_ascii_whitespace();
    let start = rest.nth(45)?.parse().ok()?;
    let end = rest.next()?.parse().ok()?;
    (start != 0 && end > start).then_some((start, end))
}

/// Reaps every ended child; exits at the process's end.
fn reap(child: pid_t, flags: c_int) {
    loop {
        match sys::reap_one(flags) {
            Ok(Some((pid, status))) if pid == child => sys::exit_now(exit_code(status)),
            Ok(Some(_)) | Err(Errno::EINTR) => {}
            Ok(None) => return,
            // ECHILD cannot happen before the process is reaped; any other
            // failure leaves PID 1 unable to do its job: end the container.
            Err(_) if flags == 0 => sys::exit_now(255),
            Err(_) => return,
        }
    }
}

/// The init's exit code for the process's wait status: its code, or 128+N
/// when signal N killed it.
pub(crate) fn exit_code(status: c_int) -> c_int {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// Closes every fd: the init needs none, and the container must not reach
/// the shim's channel, the start FIFO, hook memfds or its own stdio through
/// `/proc/1/fd` (not that it could: PID 1 is not dumpable). Where
/// close_range is refused (an old kernel, a seccomp profile), the fds the
/// child can hold at this point are closed one by one: stdio, the preserved
/// fds and the three it kept (`close_all_but`).
fn close_all(ctx: &ChildCtx) {
    if sys::close_range(0, u32::MAX).is_ok() {
        return;
    }
    let fifo = match ctx.opts.gate {
        crate::setup::launch::Gate::Fifo(fd) => fd,
        crate::setup::launch::Gate::Channel => -1,
    };
    let kept = [ctx.channel.fd(), fifo, ctx.hooks.keep_fd()];
    for fd in (0..3 + ctx.opts.preserve_fds as c_int).chain(kept) {
        if fd >= 0 {
            // SAFETY: the init uses no fd after this (a kept fd inside the
            // preserved range is closed twice: EBADF, and no other thread
            // can have reused the number).
            unsafe { sys::close(fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::exit_code;

    #[test]
    fn the_args_area_is_where_the_arguments_are() {
        let (start, end) = super::args_area().unwrap();
        let first = std::env::args_os().next().unwrap();
        let first = std::os::unix::ffi::OsStrExt::as_bytes(first.as_os_str()).to_vec();
        assert!(end - start > first.len());
        // SAFETY: the kernel's argument area of this process, read only.
        let area = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
        assert_eq!(&area[..first.len()], &first[..]);
        assert_eq!(area[first.len()], 0);
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(libc::SIGTERM), 128 + 15);
        assert_eq!(exit_code(libc::SIGKILL | 0x80), 128 + 9); // core dumped
    }
}
