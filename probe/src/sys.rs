//! The only module with `unsafe`: thin wrappers around the few libc calls the
//! probe needs that std does not offer. Every function returns plain Rust
//! values or `io::Error` (errno kept).

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

/// Real, effective and saved ids (from getresuid/getresgid).
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn uids() -> Ids {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: three valid out-pointers; getresuid cannot fail with them.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    Ids {
        real: r,
        effective: e,
        saved: s,
    }
}

pub fn gids() -> Ids {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: three valid out-pointers; getresgid cannot fail with them.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    Ids {
        real: r,
        effective: e,
        saved: s,
    }
}

/// Supplementary group ids.
pub fn groups() -> io::Result<Vec<u32>> {
    // SAFETY: size 0 with a null list only queries the count.
    let n = check(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
    let mut list = vec![0 as libc::gid_t; n as usize];
    // SAFETY: the buffer holds exactly `n` entries.
    let got = check(unsafe { libc::getgroups(n, list.as_mut_ptr()) })?;
    list.truncate(got as usize);
    Ok(list)
}

/// The UTS node name (hostname) as seen by this process.
pub fn hostname() -> io::Result<String> {
    // SAFETY: utsname is plain old data; zeroed is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    check(unsafe { libc::uname(&mut uts) })?;
    let bytes: Vec<u8> = uts
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// (soft, hard) limit of a resource; `None` means RLIM_INFINITY.
pub fn rlimit_nofile() -> io::Result<(Option<u64>, Option<u64>)> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out-pointer.
    check(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) })?;
    let conv = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Ok((conv(rl.rlim_cur), conv(rl.rlim_max)))
}

/// Result of [`fork`].
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// fork(2). The probe is single-threaded, so the child may keep using std.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the probe never starts threads, so the child's memory is consistent.
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid)
    })
}

/// _exit(2): leave without running destructors or atexit handlers (for forked children).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// waitpid(2) for `pid` (-1: any child): `Ok(None)` when nothing changed yet
/// (only with `nohang`), else the reaped pid. ECHILD is returned as an error.
pub fn wait(pid: libc::pid_t, nohang: bool) -> io::Result<Option<libc::pid_t>> {
    let mut status = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: valid out-pointer.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret == -1 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        return Ok((ret != 0).then_some(ret));
    }
}

/// kill(2).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Ask the kernel to SIGKILL this process when its parent dies.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; no pointers involved.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) }).map(drop)
}

/// Point fds 0, 1 and 2 at /dev/null (or close them if /dev/null is unavailable).
pub fn detach_stdio() {
    // SAFETY: open/dup2/close on integer fds; failures are harmless here.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        for target in 0..3 {
            if fd >= 0 {
                libc::dup2(fd, target);
            } else {
                libc::close(target);
            }
        }
        if fd > 2 {
            libc::close(fd);
        }
    }
}

static EXIT_CODE_ON_SIGNAL: AtomicI32 = AtomicI32::new(0);

extern "C" fn exit_handler(_sig: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; the atomic load is lock-free.
    unsafe { libc::_exit(EXIT_CODE_ON_SIGNAL.load(Ordering::Relaxed)) }
}

/// Install a handler that makes the process `_exit(code)` on `sig`. Needed when
/// the probe is a PID namespace's init, where default dispositions are ignored.
pub fn exit_on_signal(sig: libc::c_int, code: i32) -> io::Result<()> {
    EXIT_CODE_ON_SIGNAL.store(code, Ordering::Relaxed);
    // SAFETY: sigaction is plain data; zeroed is valid, the handler is a valid
    // extern "C" fn that only calls async-signal-safe code.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = exit_handler as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut act.sa_mask);
        check(libc::sigaction(sig, &act, std::ptr::null_mut())).map(drop)
    }
}

/// Interface flags (SIOCGIFFLAGS) of `name` in the caller's network namespace.
pub fn interface_flags(name: &str) -> io::Result<u32> {
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: plain socket creation; the fd is closed below.
    let fd =
        check(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: ifreq is plain old data; zeroed is valid. The name fits (checked
    // above) and stays NUL-terminated; the ioctl writes only into `req`.
    let result = unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
            *dst = src as libc::c_char;
        }
        let ret = check(libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req));
        ret.map(|_| req.ifr_ifru.ifru_flags as u16 as u32)
    };
    // SAFETY: closing the fd opened above.
    unsafe { libc::close(fd) };
    result
}
