//! Thin wrappers over the raw syscalls the shim needs and `nix` does not offer in
//! the form required after fork (no allocation, errno kept). This is one of the
//! two modules allowed to use `unsafe` (the other is `fdpass`).
//!
//! Every wrapper takes C strings that were prepared before fork and returns
//! `Result<_, Errno>`; none allocates.
#![allow(unsafe_code)]

use libc::{c_int, c_long, c_ulong, c_void, pid_t};
use nix::errno::Errno;
use std::ffi::CStr;
use std::os::fd::RawFd;

pub type SysResult<T> = Result<T, Errno>;

fn check(ret: c_long) -> SysResult<c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn opt_ptr(s: Option<&CStr>) -> *const libc::c_char {
    s.map_or(std::ptr::null(), |s| s.as_ptr())
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork-like clone with namespace flags: returns 0 in the child, the child's pid
/// in the parent. With `cgroup_fd`, clone3 places the child in that cgroup from
/// its first instruction; on ENOSYS/E2BIG it falls back to clone and the caller
/// must move the child itself (returned flag `false`).
///
/// Safe to call only from a single-threaded process: the child continues on a
/// copy of the caller's stack, like fork.
pub fn clone_process(flags: u64, cgroup_fd: Option<RawFd>) -> SysResult<(pid_t, bool)> {
    if let Some(fd) = cgroup_fd {
        let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
        args.flags = flags | CLONE_INTO_CGROUP;
        args.exit_signal = libc::SIGCHLD as u64;
        args.cgroup = fd as u64;
        // SAFETY: clone3 without a stack behaves like fork; the args struct lives
        // on our stack for the duration of the call.
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
    // SAFETY: raw clone with a NULL stack is fork with extra flags.
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

/// openat2(2): `resolve` holds RESOLVE_* flags.
pub fn openat2(
    dirfd: RawFd,
    path: &CStr,
    flags: c_int,
    mode: u32,
    resolve: u64,
) -> SysResult<RawFd> {
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode as u64;
    how.resolve = resolve;
    // SAFETY: path is NUL-terminated, how is a valid open_how on our stack.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &mut how as *mut libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    check(ret).map(|fd| fd as RawFd)
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

pub fn close(fd: RawFd) {
    // SAFETY: closing an fd we own; errors are irrelevant here.
    unsafe { libc::close(fd) };
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

const OPEN_TREE_CLONE: u32 = 1;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached recursive clone of the mount tree at `path` (open_tree OPEN_TREE_CLONE).
pub fn open_tree_clone(path: &CStr, recursive: bool) -> SysResult<RawFd> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: NUL-terminated path.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    check(ret).map(|fd| fd as RawFd)
}

fn mount_setattr(fd: RawFd, attr: &mut MountAttr, recursive: bool) -> SysResult<()> {
    let empty = c"";
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: attr lives on the caller's stack; empty path with AT_EMPTY_PATH targets fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            empty.as_ptr(),
            flags as c_ulong,
            attr as *mut MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(drop)
}

/// Makes the detached mount `fd` (and with `recursive` its submounts) an
/// idmapped mount through the user namespace `userns_fd`.
pub fn mount_setattr_idmap(fd: RawFd, userns_fd: RawFd, recursive: bool) -> SysResult<()> {
    let mut attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns_fd as u64,
    };
    mount_setattr(fd, &mut attr, recursive)
}

/// Sets the propagation type (MS_SLAVE, MS_PRIVATE, ...) of the detached
/// mount `fd` and all its submounts.
pub fn mount_setattr_propagation(fd: RawFd, propagation: c_ulong) -> SysResult<()> {
    let mut attr = MountAttr {
        attr_set: 0,
        attr_clr: 0,
        propagation,
        userns_fd: 0,
    };
    mount_setattr(fd, &mut attr, true)
}

fn move_mount(fd: RawFd, to_dir: RawFd, to_path: &CStr, flags: u32) -> SysResult<()> {
    let empty = c"";
    // SAFETY: NUL-terminated paths; the fds are the caller's.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            empty.as_ptr(),
            to_dir,
            to_path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | flags,
        )
    };
    check(ret).map(drop)
}

/// Attaches the detached mount `fd` on `target`.
pub fn move_mount_to(fd: RawFd, target: &CStr) -> SysResult<()> {
    move_mount(fd, libc::AT_FDCWD, target, 0)
}

/// Attaches the detached mount `fd` on the file or directory open as `target`
/// (an O_PATH fd is enough).
pub fn move_mount_onto(fd: RawFd, target: RawFd) -> SysResult<()> {
    move_mount(fd, target, c"", MOVE_MOUNT_T_EMPTY_PATH)
}

/// fsopen(2): a filesystem context for `fstype` ("overlay"), close-on-exec.
pub fn fsopen(fstype: &CStr) -> SysResult<RawFd> {
    const FSOPEN_CLOEXEC: c_ulong = 1;
    // SAFETY: NUL-terminated name.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    check(ret).map(|fd| fd as RawFd)
}

const FSCONFIG_SET_STRING: c_int = 1;
const FSCONFIG_CMD_CREATE: c_int = 6;

fn fsconfig(
    fs: RawFd,
    cmd: c_int,
    key: Option<&CStr>,
    value: *const c_void,
    aux: c_int,
) -> SysResult<()> {
    // SAFETY: key is NUL-terminated or NULL; value is what `cmd` expects
    // (a NUL-terminated string or NULL) and outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_fsconfig, fs, cmd, opt_ptr(key), value, aux) };
    check(ret).map(drop)
}

/// fsconfig(FSCONFIG_SET_STRING, key, value).
pub fn fsconfig_set_string(fs: RawFd, key: &CStr, value: &CStr) -> SysResult<()> {
    fsconfig(fs, FSCONFIG_SET_STRING, Some(key), value.as_ptr().cast(), 0)
}

/// fsconfig(FSCONFIG_CMD_CREATE): makes the superblock.
pub fn fsconfig_create(fs: RawFd) -> SysResult<()> {
    fsconfig(fs, FSCONFIG_CMD_CREATE, None, std::ptr::null(), 0)
}

/// The kernel's messages about a failed fsconfig, read from the context fd
/// (each read returns one message; none left: ENODATA).
pub fn fs_context_log(fs: RawFd, buf: &mut [u8]) -> usize {
    let mut len = 0;
    while len < buf.len() {
        match read(fs, &mut buf[len..]) {
            Ok(n) if n > 0 => {
                len += n;
                if len < buf.len() {
                    buf[len] = b';';
                    len += 1;
                }
            }
            _ => break,
        }
    }
    len
}

/// fsmount(2): a detached mount of the created superblock, close-on-exec.
pub fn fsmount(fs: RawFd) -> SysResult<RawFd> {
    const FSMOUNT_CLOEXEC: c_ulong = 1;
    // SAFETY: plain syscall on the context fd.
    let ret = unsafe { libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0 as c_ulong) };
    check(ret).map(|fd| fd as RawFd)
}

/// fstat(2).
pub fn fstat(fd: RawFd) -> SysResult<libc::stat> {
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

/// Aligned room for one SCM_RIGHTS control message carrying one fd.
#[repr(C, align(8))]
struct CmsgBuf([u8; 64]);

/// Sends `byte` with, when given, `fd` attached (SCM_RIGHTS).
pub fn send_byte_with_fd(sock: RawFd, byte: u8, fd: Option<RawFd>) -> SysResult<()> {
    send_with_fd(sock, &[byte], fd)
}

/// Sends `data` as one message with, when given, `fd` attached (SCM_RIGHTS).
/// Allocates nothing (the child uses it between clone and exec).
pub fn send_with_fd(sock: RawFd, data: &[u8], fd: Option<RawFd>) -> SysResult<()> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = CmsgBuf([0; 64]);
    // SAFETY: msghdr is plain data; every pointer in it refers to locals that
    // outlive the sendmsg call (the kernel only reads through `iov`), and
    // CMSG_* stay within `cbuf` (64 bytes hold CMSG_SPACE(4)).
    let ret = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = fd {
            let space = libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) as usize;
            msg.msg_control = cbuf.0.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>(), fd);
        }
        libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL)
    };
    check(ret as c_long).map(drop)
}

/// Receives one byte and the fd attached to it, if any (close-on-exec).
/// Allocates nothing. Returns (bytes read, fd).
pub fn recv_byte_with_fd(sock: RawFd) -> SysResult<(usize, u8, Option<RawFd>)> {
    let mut data = [0u8; 1];
    let (n, fd) = recv_with_fd(sock, &mut data)?;
    Ok((n, data[0], fd))
}

/// Receives one message into `buf` and the fd attached to it, if any
/// (close-on-exec; any further fd is closed). Allocates nothing. Returns
/// (bytes read, fd).
pub fn recv_with_fd(sock: RawFd, buf: &mut [u8]) -> SysResult<(usize, Option<RawFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = CmsgBuf([0; 64]);
    // SAFETY: as in send_with_fd; the kernel writes at most iov_len bytes into
    // `buf` and msg_controllen bytes into `cbuf`, and CMSG_* walk only what it
    // wrote.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.0.len() as _;
        let n = loop {
            let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n >= 0 || Errno::last() != Errno::EINTR {
                break n;
            }
        };
        let n = check(n as c_long)? as usize;
        let mut fd = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let got = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<c_int>());
                match fd {
                    None => fd = Some(got),
                    // Only one fd is ever sent: close any extra.
                    Some(_) => close(got),
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok((n, fd))
    }
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
pub fn execve(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> Errno {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers into C strings
    // that the plan keeps alive.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Errno::last()
}

/// The current directory into `buf`; returns its length.
pub fn getcwd(buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is a live mutable slice of the given length.
    let ret = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    check(ret).map(|n| n as usize)
}

/// write(2) of the whole buffer, retrying on EINTR.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> SysResult<()> {
    while !buf.is_empty() {
        // SAFETY: pointer/length of a live slice.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if n < 0 {
            let e = Errno::last();
            if e == Errno::EINTR {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// read(2), retrying on EINTR.
pub fn read(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    loop {
        // SAFETY: pointer/length of a live mutable slice.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut c_void, buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Errno::last();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
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

/// Closes every fd in `first..=last`.
pub fn close_range(first: u32, last: u32) -> SysResult<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: plain syscall.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) }).map(drop)
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

pub fn kill(pid: pid_t, sig: c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::kill(pid, sig) } as c_long).map(drop)
}

/// Takes ownership of an inherited stream-socket fd (e.g. `--control-fd`).
/// The caller guarantees nothing else owns `fd`.
pub fn adopt_stream(fd: RawFd) -> SysResult<std::os::unix::net::UnixStream> {
    // SAFETY: F_GETFD only checks that fd is open.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) } as c_long)?;
    // SAFETY: fd is open and, per the caller's contract, owned by nobody else.
    Ok(unsafe { <std::os::unix::net::UnixStream as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Takes ownership of an fd inherited across exec (checked to be open).
pub fn adopt_fd(fd: RawFd) -> SysResult<std::os::fd::OwnedFd> {
    // SAFETY: F_GETFD only checks that fd is open.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) } as c_long)?;
    // SAFETY: fd is open and, per the caller's contract, owned by nobody else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Clears FD_CLOEXEC so `fd` survives the next exec.
pub fn keep_across_exec(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain fcntl on an fd number.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } as c_long).map(drop)
}

/// poll(2) on `fds`; `timeout_ms` < 0 waits forever. Returns how many are ready.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> SysResult<usize> {
    // SAFETY: fds is a valid, exclusively borrowed array of pollfd.
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    check(ret as c_long).map(|n| n as usize)
}

/// Sets FD_CLOEXEC again.
pub fn set_cloexec(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain fcntl on an fd number.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } as c_long).map(drop)
}

/// Takes ownership of an fd a raw syscall just returned.
pub fn own_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    // SAFETY: fd was just returned by the kernel to us and is owned by no one else.
    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
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

/// fork(2). Only called while the shim is single-threaded, before any setup.
pub fn fork() -> SysResult<pid_t> {
    // SAFETY: the shim has one thread here; the child continues with plain code.
    check(unsafe { libc::fork() } as c_long).map(|p| p as pid_t)
}

/// What the idle monitor can drop from its page tables: the clean (never
/// written) pages of the file-backed, read-only mappings of its own executable
/// (code and constants), and the stack below the current frame. Clean file
/// pages fault back in from the page cache when used; dead stack below the
/// stack pointer comes back zeroed. Mappings with private (relocated or
/// written) pages, such as RELRO, are left alone: dropping those would lose
/// their contents.
pub struct IdlePages {
    ranges: [(usize, usize); 8],
    n: usize,
    stack_low: usize,
}

impl IdlePages {
    /// Reads /proc/self/smaps once (the mappings do not change after start-up).
    pub fn find() -> IdlePages {
        let mut pages = IdlePages {
            ranges: [(0, 0); 8],
            n: 0,
            stack_low: 0,
        };
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return pages;
        };
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return pages;
        };
        let mut current: Option<(usize, usize)> = None;
        for line in smaps.lines() {
            let mut f = line.split_whitespace();
            let first = f.next().unwrap_or("");
            if let Some((a, b)) = first.split_once('-') {
                if let (Ok(start), Ok(end)) =
                    (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    let perms = f.next().unwrap_or("");
                    let path = f.nth(3).unwrap_or("");
                    current = None;
                    if path == exe.as_os_str() && !perms.contains('w') {
                        current = Some((start, end));
                    } else if path == "[stack]" {
                        pages.stack_low = start;
                    }
                    continue;
                }
            }
            // Private pages (resident or swapped out) would revert to the
            // file's contents: only mappings with neither are released.
            if first == "Anonymous:" && f.next() != Some("0") {
                current = None;
            }
            if first == "Swap:" {
                if let (Some(range), Some("0")) = (current.take(), f.next()) {
                    if pages.n < pages.ranges.len() {
                        pages.ranges[pages.n] = range;
                        pages.n += 1;
                    }
                }
            }
        }
        pages
    }

    /// Drops the pages, then blocks in poll(2) on `fds` (`timeout_ms` < 0:
    /// forever). Nothing runs in between, so what stays resident while the
    /// monitor idles is little more than this function and two syscalls.
    /// Never inlined: its own frame must lie below every caller's, so that
    /// the stack released below it holds nothing live.
    #[inline(never)]
    pub fn release_and_poll(
        &self,
        fds: &mut [libc::pollfd],
        timeout_ms: c_int,
    ) -> SysResult<usize> {
        /// Room kept below this frame for the madvise and poll calls.
        const STACK_MARGIN: usize = 16 * 1024;
        let marker = 0u8;
        let sp = std::hint::black_box(&marker) as *const u8 as usize;
        let low = sp.saturating_sub(STACK_MARGIN) & !(PAGE - 1);
        if self.stack_low != 0 && low > self.stack_low {
            // SAFETY: stack pages well below the current frame hold nothing live.
            unsafe {
                libc::madvise(
                    self.stack_low as *mut c_void,
                    low - self.stack_low,
                    libc::MADV_DONTNEED,
                )
            };
        }
        for &(start, end) in &self.ranges[..self.n] {
            // SAFETY: a clean read-only private file mapping of our own
            // executable: accesses refault the same bytes.
            unsafe { libc::madvise(start as *mut c_void, end - start, libc::MADV_DONTNEED) };
        }
        let ts;
        let timeout = if timeout_ms < 0 {
            std::ptr::null()
        } else {
            ts = libc::timespec {
                tv_sec: (timeout_ms / 1000) as _,
                tv_nsec: (timeout_ms % 1000) as libc::c_long * 1_000_000,
            };
            &ts as *const libc::timespec
        };
        // SAFETY: fds is a valid, exclusively borrowed pollfd array; a null
        // sigmask leaves the mask alone.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_ppoll,
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                timeout,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        check(ret).map(|n| n as usize)
    }
}

const PAGE: usize = 4096;
