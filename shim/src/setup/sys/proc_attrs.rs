//! Process attributes set just before exec and the small process calls the
//! container-namespace hooks need: umask, personality, scheduling, I/O
//! priority, CPU affinity, memfd, pidfd, waitpid. None allocates.

use super::check;
use libc::{c_int, c_long, c_uint, pid_t};
use nix::errno::Errno;
use std::ffi::CStr;
use std::os::fd::{OwnedFd, RawFd};

type SysResult<T> = Result<T, Errno>;

/// umask(2); cannot fail.
pub fn umask(mask: u32) {
    umask_swap(mask);
}

/// umask(2), returning the previous mask.
pub fn umask_swap(mask: u32) -> u32 {
    // SAFETY: umask takes a plain integer and only changes this process's mask.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// personality(2) with `persona`.
pub fn personality(persona: u64) -> SysResult<()> {
    // SAFETY: personality takes a plain integer.
    check(unsafe { libc::personality(persona as libc::c_ulong) } as c_long).map(drop)
}

/// The kernel's `struct sched_attr` (first version, 56 bytes with util clamps).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(2) on this process.
pub fn sched_setattr(attr: &SchedAttr) -> SysResult<()> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `a` is a valid sched_attr whose size field is its own size; the
    // kernel only reads it.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0u32) })
        .map(drop)
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, prio).
pub fn ioprio_set(prio: c_int) -> SysResult<()> {
    const IOPRIO_WHO_PROCESS: c_int = 1;
    // SAFETY: plain integers.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) }).map(drop)
}

/// sched_setaffinity(0, mask) with a mask of 1024 CPUs.
pub fn sched_setaffinity(mask: &[u64; 16]) -> SysResult<()> {
    // SAFETY: `mask` is 128 readable bytes, the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            0,
            std::mem::size_of_val(mask),
            mask.as_ptr(),
        )
    })
    .map(drop)
}

/// memfd_create(2), close-on-exec.
pub fn memfd(name: &CStr) -> SysResult<OwnedFd> {
    // SAFETY: `name` is a valid C string.
    let fd = check(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) } as c_long)?;
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Ok(unsafe { super::own_fd(fd as RawFd) })
}

/// pidfd_open(2).
pub fn pidfd_open(pid: pid_t) -> SysResult<RawFd> {
    // SAFETY: plain integers.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as c_uint) }).map(|fd| fd as RawFd)
}

/// waitpid(pid, &status, 0); returns the raw status.
pub fn waitpid(pid: pid_t, flags: c_int) -> SysResult<(pid_t, c_int)> {
    let mut status: c_int = 0;
    // SAFETY: `status` is a valid int to write to.
    let r = check(unsafe { libc::waitpid(pid, &mut status, flags) } as c_long)?;
    Ok((r as pid_t, status))
}

/// lseek(fd, 0, SEEK_SET).
pub fn rewind(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain integers.
    check(unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } as c_long).map(drop)
}

/// unshare(CLONE_NEWTIME), which the libc crate may not name.
pub const CLONE_NEWTIME: c_int = 0x80;

/// Writes `data` to the file at `path` opened write-only (one write call
/// per buffer, as /proc attribute files want), no allocation.
pub fn write_file(path: &CStr, data: &[u8]) -> SysResult<()> {
    let fd = super::openat(libc::AT_FDCWD, path, libc::O_WRONLY | libc::O_CLOEXEC, 0)?;
    let r = super::write_all(fd, data);
    // SAFETY: `fd` was opened above and is not used after this.
    unsafe { super::close(fd) };
    r
}

/// setdomainname(2).
pub fn setdomainname(name: &CStr) -> SysResult<()> {
    let b = name.to_bytes();
    // SAFETY: `b` is `b.len()` readable bytes.
    check(unsafe { libc::setdomainname(b.as_ptr().cast(), b.len()) } as c_long).map(drop)
}
