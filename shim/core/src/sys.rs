//! The syscall wrappers both halves of the shim need: fd reads and writes,
//! poll, kill, the handshake's one-byte messages with an fd attached, and
//! taking over inherited fds. Like the setup side's `setup::sys`, none
//! allocates and every error keeps its errno.

use libc::{c_int, c_long, c_void, pid_t};
use nix::errno::Errno;
use std::os::fd::RawFd;

pub type SysResult<T> = Result<T, Errno>;

/// A raw syscall's return value: negative is the errno in `errno`.
pub fn check(ret: c_long) -> SysResult<c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Closes `fd`; errors are irrelevant here.
///
/// # Safety
///
/// `fd` must be open and owned by the caller, and nothing may use or close
/// it afterwards: closing an fd that an `OwnedFd`, a `File` or a socket still
/// holds makes that owner act on whatever file next gets the number.
pub unsafe fn close(fd: RawFd) {
    // SAFETY: per the contract, `fd` is the caller's to close.
    unsafe { libc::close(fd) };
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

/// poll(2) on `fds`; `timeout_ms` < 0 waits forever. Returns how many are ready.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> SysResult<usize> {
    // SAFETY: fds is a valid, exclusively borrowed array of pollfd.
    let ret = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    check(ret as c_long).map(|n| n as usize)
}

pub fn kill(pid: pid_t, sig: c_int) -> SysResult<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::kill(pid, sig) } as c_long).map(drop)
}

/// Takes ownership of an inherited stream-socket fd (e.g. `--control-fd`),
/// checked to be open.
///
/// # Safety
///
/// Nothing else in this process may own or close `fd` (it was inherited, and
/// no other wrapper was made of it): the returned stream closes it on drop.
pub unsafe fn adopt_stream(fd: RawFd) -> SysResult<std::os::unix::net::UnixStream> {
    // SAFETY: F_GETFD only checks that fd is open.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) } as c_long)?;
    // SAFETY: fd is open and, per the caller's contract, owned by nobody else.
    Ok(unsafe { <std::os::unix::net::UnixStream as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Takes ownership of an fd inherited across exec (checked to be open).
///
/// # Safety
///
/// Nothing else in this process may own or close `fd`: the returned
/// `OwnedFd` closes it on drop.
pub unsafe fn adopt_fd(fd: RawFd) -> SysResult<std::os::fd::OwnedFd> {
    // SAFETY: F_GETFD only checks that fd is open.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) } as c_long)?;
    // SAFETY: fd is open and, per the caller's contract, owned by nobody else.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Takes ownership of an fd a raw syscall just returned.
///
/// # Safety
///
/// `fd` must be open, and owned by nobody else (typically: the kernel just
/// returned it to the caller): the returned `OwnedFd` closes it on drop.
pub unsafe fn own_fd(fd: RawFd) -> std::os::fd::OwnedFd {
    // SAFETY: per the contract, `fd` is open and has no other owner.
    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// Clears FD_CLOEXEC so `fd` survives the next exec.
pub fn keep_across_exec(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain fcntl on an fd number.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } as c_long).map(drop)
}

/// Sets FD_CLOEXEC again.
pub fn set_cloexec(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain fcntl on an fd number.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } as c_long).map(drop)
}

/// Closes every fd in `first..=last`.
pub fn close_range(first: u32, last: u32) -> SysResult<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: plain syscall.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) }).map(drop)
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
                    // SAFETY: the kernel just installed `got` for us; nothing else holds it.
                    Some(_) => close(got),
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok((n, fd))
    }
}

/// write(2) once, retrying on EINTR: how many bytes went (a non-blocking
/// fd gives EAGAIN instead of waiting).
pub fn write(fd: RawFd, buf: &[u8]) -> SysResult<usize> {
    loop {
        // SAFETY: pointer/length of a live slice.
        let n = unsafe { libc::write(fd, buf.as_ptr() as *const c_void, buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = Errno::last();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// Sets O_NONBLOCK on `fd` (on its open file description: shared by dups).
pub fn set_nonblocking(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain fcntl on an fd number.
    let flags = check(unsafe { libc::fcntl(fd, libc::F_GETFL) } as c_long)? as c_int;
    // SAFETY: plain fcntl on an fd number.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } as c_long).map(drop)
}

/// openat2(2) of `path` below `dirfd` with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS:
/// symlinks and `..` resolve as if `dirfd` were `/`, so a path a container
/// controls never leads out of its root. Close-on-exec.
pub fn open_in_root(
    dirfd: RawFd,
    path: &std::ffi::CStr,
    flags: c_int,
) -> SysResult<std::os::fd::OwnedFd> {
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    let fd = openat2(dirfd, path, flags, 0, resolve)?;
    // SAFETY: openat2 just returned this fd to us; nothing else holds it.
    Ok(unsafe { own_fd(fd) })
}

/// openat2(2): `resolve` holds RESOLVE_* flags.
pub fn openat2(
    dirfd: RawFd,
    path: &std::ffi::CStr,
    flags: c_int,
    mode: u32,
    resolve: u64,
) -> SysResult<RawFd> {
    // SAFETY: open_how is plain integers; all-zero is a valid value.
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

/// Unlocks the pty whose master is `master` and opens its slave
/// (TIOCGPTPEER: the slave of this very master, whatever /dev/pts holds),
/// close-on-exec and not as controlling terminal.
pub fn pty_peer(master: RawFd) -> SysResult<std::os::fd::OwnedFd> {
    let unlock: c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the pointer, which lives on our stack.
    check(unsafe { libc::ioctl(master, libc::TIOCSPTLCK, &unlock) } as c_long)?;
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as an integer argument.
    let fd = check(unsafe { libc::ioctl(master, libc::TIOCGPTPEER, flags) } as c_long)?;
    // SAFETY: the ioctl just returned this fd to us; nothing else holds it.
    Ok(unsafe { own_fd(fd as RawFd) })
}

/// TIOCSWINSZ: the terminal's size (its foreground process group gets SIGWINCH).
pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> SysResult<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which lives on our stack.
    check(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } as c_long).map(drop)
}
