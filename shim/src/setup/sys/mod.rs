//! Thin wrappers over the raw syscalls setup needs and `nix` does not offer in
//! the form required after fork (no allocation, errno kept): clone, mounts,
//! pivot_root, capabilities, seccomp, exec. The setup crate's one module
//! allowed to use `unsafe` (see the list in `lib.rs`); the wrappers the
//! monitor also needs are `zctr_shim_core::sys`, re-exported here.
//!
//! Every wrapper takes C strings that were prepared before fork and returns
//! `Result<_, Errno>`; none allocates.

use libc::{c_int, c_long, c_ulong, c_void, pid_t};
use nix::errno::Errno;
use std::ffi::CStr;
use std::os::fd::{OwnedFd, RawFd};
pub use zctr_shim_core::sys::*;

mod exec;
mod init;
mod mount_api;
mod proc_attrs;
pub use exec::*;
pub use init::*;
pub use mount_api::*;
pub use proc_attrs::*;

fn opt_ptr(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(std::ptr::null(), |s| s.as_ptr())
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork-like clone with namespace flags: returns 0 in the child, the child's pid
/// in the parent. With `cgroup_fd`, clone3 places the child in that cgroup from
/// its first instruction; on ENOSYS/E2BIG it falls back to clone and the caller
/// must move the child itself (returned flag `false`).
///
/// # Safety
///
/// Only from a single-threaded process: the child continues on a copy of the
/// caller's stack, like fork, with one thread; a lock another thread held at
/// the clone (malloc's, stdio's) stays locked in the child forever. The child
/// must not return into the caller's frames (it runs its own code and ends in
/// exec or `_exit`).
pub unsafe fn clone_process(flags: u64, cgroup_fd: Option<RawFd>) -> SysResult<(pid_t, bool)> {
    if let Some(fd) = cgroup_fd {
        // SAFETY: clone_args is plain integers; all-zero is a valid value.
        let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
        args.flags = flags | CLONE_INTO_CGROUP;
        args.exit_signal = libc::SIGCHLD as u64;
        args.cgroup = fd as u64;
        // SAFETY: clone3 without a stack behaves like fork (the caller is
        // single-threaded, per the contract); the args struct lives on our
        // stack for the duration of the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut libc::clone_args,
                std::mem::size_of::<libc::clone_args>(),
            )
        };
        match check(ret) {
            Ok(pid) => return Ok((pid as pid_t, true)),
            Err(Errno::ENOSYS) | Err(Errno::E2BIG) => {}
            Err(e) => return Err(e),
        }
    }
    // SAFETY: raw clone with a NULL stack is fork with extra flags; the
    // caller is single-threaded, per the contract.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD as u64) as c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    check(ret).map(|pid| (pid as pid_t, false))
}

/// [`openat2`], the new fd owned (closed on drop).
pub fn openat2_owned(
    dirfd: RawFd,
    path: &CStr,
    flags: c_int,
    mode: u32,
    resolve: u64,
) -> SysResult<OwnedFd> {
    // SAFETY: openat2 just returned this fd to us; nothing else holds it.
    openat2(dirfd, path, flags, mode, resolve).map(|fd| unsafe { own_fd(fd) })
}

/// [`openat`], the new fd owned (closed on drop).
pub fn openat_owned(dirfd: RawFd, path: &CStr, flags: c_int, mode: u32) -> SysResult<OwnedFd> {
    // SAFETY: openat just returned this fd to us; nothing else holds it.
    openat(dirfd, path, flags, mode).map(|fd| unsafe { own_fd(fd) })
}

pub fn openat(dirfd: RawFd, path: &CStr, flags: c_int, mode: u32) -> SysResult<RawFd> {
    // SAFETY: NUL-terminated path.
    let fd = unsafe { libc::openat(dirfd, path.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    check(fd as c_long).map(|fd| fd as RawFd)
}

pub fn mkdirat(dirfd: RawFd, path: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::mkdirat(dirfd, path.as_ptr(), mode) } as c_long).map(drop)
}

pub fn symlinkat(target: &CStr, dirfd: RawFd, path: &CStr) -> SysResult<()> {
    // SAFETY: NUL-terminated paths.
    check(unsafe { libc::symlinkat(target.as_ptr(), dirfd, path.as_ptr()) } as c_long).map(drop)
}

pub fn mount(
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> SysResult<()> {
    // SAFETY: all pointers are NUL-terminated strings or NULL.
    let ret = unsafe {
        libc::mount(
            opt_ptr(source),
            target.as_ptr(),
            opt_ptr(fstype),
            flags,
            opt_ptr(data) as *const c_void,
        )
    };
    check(ret as c_long).map(drop)
}

pub fn umount2(target: &CStr, flags: c_int) -> SysResult<()> {
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::umount2(target.as_ptr(), flags) } as c_long).map(drop)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult<()> {
    // SAFETY: NUL-terminated paths.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}

pub fn fchdir(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::fchdir(fd) } as c_long).map(drop)
}

pub fn chdir(path: &CStr) -> SysResult<()> {
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::chdir(path.as_ptr()) } as c_long).map(drop)
}

/// Mount flags (MS_*) of the mount holding `fd`, as far as a bind remount must keep them.
pub fn locked_mount_flags(fd: RawFd) -> SysResult<c_ulong> {
    // SAFETY: statvfs is plain integers; all-zero is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    check(unsafe { libc::fstatvfs(fd, &mut st) } as c_long)?;
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        // ST_RELATIME: musl lacks the constant.
        (4096, libc::MS_RELATIME),
        (libc::ST_RDONLY, libc::MS_RDONLY),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

/// fstat(2).
pub fn fstat(fd: RawFd) -> SysResult<libc::stat> {
    // SAFETY: stat is plain integers; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    check(unsafe { libc::fstat(fd, &mut st) } as c_long)?;
    Ok(st)
}

/// Owner, group and mode of the file open as `fd` (as seen through its mount,
/// idmapped or not).
pub fn fstat_owner_mode(fd: RawFd) -> SysResult<(u32, u32, u32)> {
    fstat(fd).map(|st| (st.st_uid, st.st_gid, st.st_mode))
}

pub fn fchmod(fd: RawFd, mode: u32) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::fchmod(fd, mode) } as c_long).map(drop)
}

pub fn setns(fd: RawFd, nstype: c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setns(fd, nstype) } as c_long).map(drop)
}

pub fn unshare(flags: c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::unshare(flags) } as c_long).map(drop)
}

pub fn setsid() -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::setsid() } as c_long).map(drop)
}

pub fn sethostname(name: &CStr) -> SysResult<()> {
    let bytes = name.to_bytes();
    // SAFETY: pointer/length pair of a live slice.
    check(unsafe { libc::sethostname(bytes.as_ptr() as *const _, bytes.len()) } as c_long).map(drop)
}

/// Raw setresuid/setresgid/setgroups: the libc wrappers may synchronise threads
/// through state that a raw clone child must not rely on.
pub fn setresuid(uid: u32) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

pub fn setresgid(gid: u32) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

pub fn setgroups(gids: &[libc::gid_t]) -> SysResult<()> {
    // SAFETY: pointer/length pair of a live slice.
    check(unsafe { libc::syscall(libc::SYS_setgroups, gids.len(), gids.as_ptr()) }).map(drop)
}

pub fn setrlimit(resource: c_int, soft: u64, hard: u64) -> SysResult<()> {
    let lim = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit on our stack.
    check(unsafe { libc::prlimit64(0, resource as _, &lim, std::ptr::null_mut()) } as c_long)
        .map(drop)
}

fn prctl(op: c_int, a: c_ulong, b: c_ulong) -> SysResult<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(op, a, b, 0 as c_ulong, 0 as c_ulong) } as c_long).map(drop)
}

pub fn set_child_subreaper() -> SysResult<()> {
    prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0)
}

pub fn set_no_new_privs() -> SysResult<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)` with a program prepared
/// before fork: the `sock_fprog` lives on the stack, nothing is allocated.
/// Installs a filter; returns the listener fd with
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER` in `flags` (close-on-exec), else 0.
pub fn seccomp_set_filter(insns: &[libc::sock_filter], flags: u32) -> SysResult<RawFd> {
    let len = u16::try_from(insns.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `insns`, which outlive the call; the kernel copies it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as c_ulong,
            flags as c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    check(r).map(|fd| fd as RawFd)
}

pub fn set_keepcaps(on: bool) -> SysResult<()> {
    prctl(libc::PR_SET_KEEPCAPS, on as c_ulong, 0)
}

pub fn capbset_drop(cap: u32) -> SysResult<()> {
    prctl(libc::PR_CAPBSET_DROP, cap as c_ulong, 0)
}

pub fn ambient_raise(cap: u32) -> SysResult<()> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_RAISE as c_ulong,
        cap as c_ulong,
    )
}

pub fn ambient_clear_all() -> SysResult<()> {
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
        0,
    )
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// capset(2) with 64-bit masks (capability version 3).
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> SysResult<()> {
    let mut header = CapHeader {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [
        CapData {
            effective: effective as u32,
            permitted: permitted as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (effective >> 32) as u32,
            permitted: (permitted >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and two data words as the v3 ABI requires.
    check(unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    })
    .map(drop)
}

/// Highest capability number the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Sets IFF_UP on the loopback interface of the current network namespace.
pub fn loopback_up() -> SysResult<()> {
    // SAFETY: socket/ioctl/close on fds we own, ifreq on our stack.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        check(sock as c_long)?;
        let mut req: libc::ifreq = std::mem::zeroed();
        req.ifr_name[0] = b'l' as libc::c_char;
        req.ifr_name[1] = b'o' as libc::c_char;
        let ret = libc::ioctl(sock, libc::SIOCGIFFLAGS as _, &mut req);
        if ret < 0 {
            let e = Errno::last();
            libc::close(sock);
            return Err(e);
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let ret = libc::ioctl(sock, libc::SIOCSIFFLAGS as _, &mut req);
        let e = Errno::last();
        libc::close(sock);
        if ret < 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// execve(2); returns only on failure.
///
/// # Safety
///
/// `argv` and `envp` must each end in a null pointer, and every other pointer
/// in them must point at a NUL-terminated string that stays alive for the
/// call (the plan's C strings, see `Plan::exec_arrays`).
pub unsafe fn execve(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Errno {
    // SAFETY: per the contract, argv and envp are NULL-terminated arrays of
    // pointers to live C strings; path is NUL-terminated.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// The current directory into `buf`; returns its length.
pub fn getcwd(buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is a live mutable slice of the given length.
    let ret = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    check(ret).map(|n| n as usize)
}

pub fn dup2(old: RawFd, new: RawFd) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::dup2(old, new) } as c_long).map(drop)
}

/// Ends the calling process at once, without running destructors or atexit handlers.
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}

pub fn mknodat(dirfd: RawFd, name: &CStr, mode: u32, major: u64, minor: u64) -> SysResult<()> {
    let dev = libc::makedev(major as u32, minor as u32);
    // SAFETY: NUL-terminated name.
    check(unsafe { libc::mknodat(dirfd, name.as_ptr(), mode, dev) } as c_long).map(drop)
}

pub fn fchownat_empty(fd: RawFd, uid: u32, gid: u32) -> SysResult<()> {
    // SAFETY: empty path with AT_EMPTY_PATH targets fd itself.
    check(unsafe { libc::fchownat(fd, c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) } as c_long)
        .map(drop)
}

/// True if `fd` refers to a directory.
pub fn is_dir(fd: RawFd) -> SysResult<bool> {
    // SAFETY: stat is plain integers; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out-pointer.
    check(unsafe { libc::fstat(fd, &mut st) } as c_long)?;
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Unblocks every signal and restores default dispositions for those the Rust
/// runtime or the shim changed, so the container starts with a clean slate.
pub fn reset_signals() -> SysResult<()> {
    // SAFETY: sigset manipulation on our stack; SIG_DFL is always valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        check(libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) as c_long)?;
        for sig in [
            libc::SIGPIPE,
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
        ] {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    Ok(())
}

/// readlinkat(2) into `buf`; returns the target's length.
pub fn readlinkat(dirfd: RawFd, name: &CStr, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is a live mutable slice of the given length.
    let n =
        unsafe { libc::readlinkat(dirfd, name.as_ptr(), buf.as_mut_ptr() as *mut _, buf.len()) };
    let n = check(n as c_long)? as usize;
    if n >= buf.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(n)
}

/// fork(2).
///
/// # Safety
///
/// Only from a single-threaded process: the child has one thread, and a lock
/// another thread held at the fork (malloc's, stdio's) stays locked in it.
pub unsafe fn fork() -> SysResult<pid_t> {
    // SAFETY: the caller is single-threaded, per the contract.
    check(unsafe { libc::fork() } as c_long).map(|p| p as pid_t)
}

/// Unlocks the pty master `master` (TIOCSPTLCK 0) and opens its slave
/// through it (TIOCGPTPEER: no path lookup, so the right devpts instance),
/// read-write, not as controlling terminal, close-on-exec.
pub fn open_pty_peer(master: RawFd) -> SysResult<RawFd> {
    let unlock: c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which lives on our stack.
    check(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &unlock) } as c_long)?;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as an integer argument.
    check(unsafe { libc::ioctl(master, libc::TIOCGPTPEER, flags) } as c_long).map(|fd| fd as RawFd)
}
