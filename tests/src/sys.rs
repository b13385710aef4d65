//! The only module with `unsafe`: the few libc calls std does not wrap.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// umount2(path, MNT_DETACH).
pub fn umount_detach(path: &Path) -> io::Result<()> {
    let c = cstring(path)?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// kill(2) of one process (pid > 0) or one process group (pid < -1). Never
/// 0 or -1, which would reach the caller's own group or every process: those
/// are refused with EINVAL.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    if (-1..=0).contains(&pid) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: plain syscall with integer arguments.
    if unsafe { libc::kill(pid, sig) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `pid` exists (kill with signal 0; EPERM still means it exists).
pub fn pid_exists(pid: i32) -> bool {
    match kill(pid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    }
}

/// Make `cmd`'s child write itself into each `cgroup.procs` file before exec,
/// so it (and everything it forks) is born inside those cgroups.
pub fn join_cgroups_before_exec(cmd: &mut Command, procs_files: &[&Path]) -> io::Result<()> {
    let files: Vec<CString> = procs_files
        .iter()
        .map(|p| cstring(p))
        .collect::<io::Result<_>>()?;
    let hook = move || -> io::Result<()> {
        for f in &files {
            // SAFETY: only async-signal-safe calls (open/write/close) on prepared
            // C strings; no allocation happens between fork and exec.
            unsafe {
                let fd = libc::open(f.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd == -1 {
                    return Err(io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0\n".as_ptr().cast(), 2) == 2;
                let err = io::Error::last_os_error();
                libc::close(fd);
                if !ok {
                    return Err(err);
                }
            }
        }
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec and only uses async-signal-safe calls.
    unsafe { cmd.pre_exec(hook) };
    Ok(())
}

/// Make `cmd`'s child a child subreaper before exec (PR_SET_CHILD_SUBREAPER
/// survives exec): orphans of its descendants are reparented to it, as to
/// containerd's shim or conmon.
pub fn subreaper_before_exec(cmd: &mut Command) {
    let hook = || -> io::Result<()> {
        // SAFETY: prctl is async-signal-safe; integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the hook runs between fork and exec and only calls prctl.
    unsafe { cmd.pre_exec(hook) };
}

/// Receives one message with one fd attached (SCM_RIGHTS) on `sock`:
/// (the message bytes, the fd).
pub fn recv_fd(
    sock: &std::os::unix::net::UnixStream,
) -> io::Result<(Vec<u8>, std::os::fd::OwnedFd)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    #[repr(C, align(8))]
    struct Cmsg([u8; 64]);
    let mut cbuf = Cmsg([0; 64]);
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // usize on glibc, u32 on musl.
    msg.msg_controllen = cbuf.0.len() as _;
    // SAFETY: msg points at live buffers of the given sizes.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR checks the length.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    // SAFETY: a non-null cmsg points into cbuf, within msg_controllen.
    let ok = !cmsg.is_null() && unsafe { (*cmsg).cmsg_type == libc::SCM_RIGHTS };
    if !ok {
        return Err(io::Error::other("no SCM_RIGHTS message"));
    }
    // SAFETY: an SCM_RIGHTS cmsg carries at least one int after its header.
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const i32) };
    // SAFETY: the kernel just installed this fd for us; nothing else owns it.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    Ok((data[..n as usize].to_vec(), fd))
}

/// A new pty pair (master, slave) whose window is `rows` x `cols`.
pub fn openpty(rows: u16, cols: u16) -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (-1, -1);
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: the out pointers point to live ints; a null name and termios
    // are allowed; `ws` outlives the call.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openpty returned two fresh descriptors this process owns.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    })
}

/// `TIOCSWINSZ` on a pty descriptor.
pub fn set_winsize(fd: std::os::fd::BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from a live pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
