//! The new mount API: detached clones of mount trees (open_tree), their
//! attributes (mount_setattr: idmap, propagation), attaching them
//! (move_mount), and filesystem contexts (fsopen, fsconfig, fsmount) for the
//! rootfs overlay. Part of [`super`], under the same rules.

use super::{check, opt_ptr, own_fd, read, SysResult};
use libc::{c_int, c_ulong, c_void};
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

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
pub fn open_tree_clone(path: &CStr, recursive: bool) -> SysResult<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: NUL-terminated path.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
    // SAFETY: the kernel just returned this fd to us; nothing else holds it.
    check(ret).map(|fd| unsafe { own_fd(fd as RawFd) })
}

/// [`open_tree_clone`] of the directory open as `fd` (an `O_PATH` fd):
/// the clone is of that directory, whatever its path names by now.
pub fn open_tree_clone_fd(fd: BorrowedFd, recursive: bool) -> SysResult<OwnedFd> {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as u32 | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    let empty = c"";
    // SAFETY: empty NUL-terminated path with AT_EMPTY_PATH targets the live fd.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, fd.as_raw_fd(), empty.as_ptr(), flags) };
    // SAFETY: the kernel just returned this fd to us; nothing else holds it.
    check(ret).map(|fd| unsafe { own_fd(fd as RawFd) })
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

/// Makes the detached mount `fd` and all its submounts read-only.
pub fn mount_setattr_rdonly_recursive(fd: RawFd) -> SysResult<()> {
    let mut attr = MountAttr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
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
pub fn fsopen(fstype: &CStr) -> SysResult<OwnedFd> {
    const FSOPEN_CLOEXEC: c_ulong = 1;
    // SAFETY: NUL-terminated name.
    let ret = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) };
    // SAFETY: the kernel just returned this fd to us; nothing else holds it.
    check(ret).map(|fd| unsafe { own_fd(fd as RawFd) })
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
pub fn fsmount(fs: RawFd) -> SysResult<OwnedFd> {
    const FSMOUNT_CLOEXEC: c_ulong = 1;
    // SAFETY: plain syscall on the context fd.
    let ret = unsafe { libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0 as c_ulong) };
    // SAFETY: the kernel just returned this fd to us; nothing else holds it.
    check(ret).map(|fd| unsafe { own_fd(fd as RawFd) })
}
