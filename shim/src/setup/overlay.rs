//! The rootfs overlay: the container's root is an overlay mount whose lower
//! layer is the rootfs (a detached clone, idmapped where the plan says so) and
//! whose upper and work dirs live on a tmpfs of the container's own, which is
//! mounted nowhere on the host. Every file the container writes lands there:
//! out of reach of host users, off the host's disks, bounded in size, and gone
//! with the container's mount namespace; the image directory is never written
//! (docs/shim.md, "Writes and the host").
//!
//! Before clone, [`Layers::prepare`] makes `DIR` (0700) with two empty mount
//! points. Once the child's user namespace has its maps and the lower tree its
//! idmap, [`Layers::mount`] enters a private mount namespace of the shim's
//! own, mounts the tmpfs on `DIR/tmp` there, makes `upper` (with the lower
//! root's owner and mode: the merged root takes them from it) and `work` in
//! it, attaches the lower tree on `DIR/lower` (kernels before 6.15 take only
//! attached mounts as layers) and builds the overlay, then leaves the
//! namespace: it dies with everything mounted in it, while the overlay keeps
//! its own references to its layers. The resulting detached mount goes to the
//! child with `GO`; nothing is ever mounted in the host's namespace.

use crate::setup::sys;
use nix::errno::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use zctr_shim_core::SetupError;

/// The overlay's directory, made and checked, and the size of its tmpfs.
pub struct Layers {
    path: PathBuf,
    /// `path`, open: its identity is checked again where it is reopened.
    dir: OwnedFd,
    /// The tmpfs's size in bytes; `None`: the kernel's default (half the RAM).
    size: Option<u64>,
}

/// The names of the mount points below the overlay's directory (host side).
/// The tmpfs holding the upper and work dirs, while the overlay is made.
const TMP: &std::ffi::CStr = c"tmp";
/// An empty directory the lower tree is attached to while the overlay is made.
const LOWER: &std::ffi::CStr = c"lower";
/// The names on the tmpfs.
const UPPER: &std::ffi::CStr = c"upper";
const WORK: &std::ffi::CStr = c"work";

/// Smallest tmpfs accepted (`--rootfs-overlay-size`): the mount points and
/// device nodes the shim makes at setup land there too.
pub const MIN_SIZE: u64 = 1 << 20;
/// Bytes of tmpfs size per inode allowed: each inode (and its dentry) costs
/// about 1 KiB of kernel memory not counted in the size, so this bounds that
/// memory by the size too (a 64 MiB tmpfs takes 65,536 files).
const BYTES_PER_INODE: u64 = 1024;

/// The tmpfs options for `size` bytes: (key, value) pairs for fsconfig.
fn tmpfs_options(size: Option<u64>) -> Vec<(&'static std::ffi::CStr, CString)> {
    let mut v = vec![(c"mode", CString::new("0700").expect("no NUL"))];
    if let Some(size) = size {
        let inodes = (size / BYTES_PER_INODE).max(1024);
        v.push((c"size", CString::new(size.to_string()).expect("no NUL")));
        v.push((
            c"nr_inodes",
            CString::new(inodes.to_string()).expect("no NUL"),
        ));
    }
    v
}

fn show(p: &Path) -> String {
    p.display().to_string()
}

/// `/proc/self/fd/N`: how each layer is named to overlayfs, so no path the
/// caller chose is parsed as an option value (':' and '\' are special there).
fn fd_path(fd: RawFd) -> CString {
    CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL")
}

/// `name` below `dir`, made when missing, opened without following a symlink.
fn subdir(
    dir: &OwnedFd,
    name: &std::ffi::CStr,
    mode: u32,
    path: &Path,
) -> Result<OwnedFd, SetupError> {
    let what = format!("{}/{}", show(path), name.to_string_lossy());
    match sys::mkdirat(dir.as_raw_fd(), name, mode) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(SetupError::errno("rootfs overlay", &what, e)),
    }
    sys::openat_owned(
        dir.as_raw_fd(),
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
    .map_err(|e| SetupError::errno("rootfs overlay", &what, e))
}

impl Layers {
    /// Makes (or reopens) `dir` with mode 0700 and its `tmp` and `lower`
    /// mount points. `dir` must not be a symlink and must belong to the
    /// shim's user. `size`: the tmpfs's size in bytes (see [`MIN_SIZE`]).
    pub fn prepare(dir: &Path, size: Option<u64>) -> Result<Layers, SetupError> {
        let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
            SetupError::new("rootfs overlay", libc::EINVAL, "path holds a NUL byte")
        })?;
        match sys::mkdirat(libc::AT_FDCWD, &c, 0o700) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(SetupError::errno("rootfs overlay", &show(dir), e)),
        }
        let fd = sys::openat_owned(
            libc::AT_FDCWD,
            &c,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
        .map_err(|e| SetupError::errno("rootfs overlay", &show(dir), e))?;
        let (uid, _, _) = sys::fstat_owner_mode(fd.as_raw_fd())
            .map_err(|e| SetupError::errno("rootfs overlay", &show(dir), e))?;
        if uid != nix::unistd::geteuid().as_raw() {
            return Err(SetupError::new(
                "rootfs overlay",
                libc::EPERM,
                format!("{}: owned by uid {uid}, not by the shim's user", show(dir)),
            ));
        }
        // Whatever made it: only the shim's user may reach what is below.
        sys::fchmod(fd.as_raw_fd(), 0o700)
            .map_err(|e| SetupError::errno("rootfs overlay", &show(dir), e))?;
        subdir(&fd, TMP, 0o700, dir)?;
        subdir(&fd, LOWER, 0o700, dir)?;
        Ok(Layers {
            dir: fd,
            path: dir.to_path_buf(),
            size,
        })
    }

    /// Builds the overlay on `lower` (a detached tree, already idmapped when
    /// it is to be) and returns it as a detached mount. Consumes `lower`.
    pub fn mount(&self, lower: OwnedFd) -> Result<OwnedFd, SetupError> {
        let fail = |what: &str, e: Errno| {
            SetupError::errno(
                "rootfs overlay",
                &format!("{}: {what}", show(&self.path)),
                e,
            )
        };
        // The merged root shows the upper root's owner and mode: make them
        // the image root's, as the container sees it (through the idmap).
        let (uid, gid, mode) =
            sys::fstat_owner_mode(lower.as_raw_fd()).map_err(|e| fail("stat lower root", e))?;
        in_private_mount_ns(|| {
            // Layers must be mounts of the current namespace: reopen the
            // directories by path here, checking it is still the same one.
            let dir = self.reopen()?;
            let sub = |name: &std::ffi::CStr| {
                sys::openat_owned(
                    dir.as_raw_fd(),
                    name,
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )
                .map_err(|e| fail(&name.to_string_lossy(), e))
            };
            let (tmp_point, lower_point) = (sub(TMP)?, sub(LOWER)?);
            let tmp = self.tmpfs()?;
            sys::move_mount_onto(tmp.as_raw_fd(), tmp_point.as_raw_fd())
                .map_err(|e| fail("attach the tmpfs", e))?;
            let on_tmp = self.path.join("tmp");
            let upper = subdir(&tmp, UPPER, 0o700, &on_tmp)?;
            sys::fchownat_empty(upper.as_raw_fd(), uid, gid)
                .map_err(|e| fail("chown upper root", e))?;
            sys::fchmod(upper.as_raw_fd(), mode & 0o7777)
                .map_err(|e| fail("chmod upper root", e))?;
            let work = subdir(&tmp, WORK, 0o700, &on_tmp)?;
            sys::move_mount_onto(lower.as_raw_fd(), lower_point.as_raw_fd())
                .map_err(|e| fail("attach lower layer", e))?;
            self.make(lower.as_raw_fd(), upper.as_raw_fd(), work.as_raw_fd())
        })
    }

    /// A new tmpfs (detached), of `self.size`, for the upper and work dirs.
    /// Mounted by the shim (host root): overlayfs keeps its trusted.*
    /// xattrs there, which tmpfs supports.
    fn tmpfs(&self) -> Result<OwnedFd, SetupError> {
        let fs = sys::fsopen(c"tmpfs")
            .map_err(|e| SetupError::errno("rootfs overlay", "fsopen tmpfs", e))?;
        for (key, value) in tmpfs_options(self.size) {
            sys::fsconfig_set_string(fs.as_raw_fd(), key, &value).map_err(|e| {
                self.kernel_error(&fs, &format!("tmpfs {}", key.to_string_lossy()), e)
            })?;
        }
        sys::fsconfig_create(fs.as_raw_fd())
            .map_err(|e| self.kernel_error(&fs, "tmpfs create", e))?;
        sys::fsmount(fs.as_raw_fd()).map_err(|e| self.kernel_error(&fs, "tmpfs fsmount", e))
    }

    /// `path` opened again (in another mount namespace), if it is the very
    /// directory [`Layers::prepare`] checked.
    fn reopen(&self) -> Result<OwnedFd, SetupError> {
        let c = CString::new(self.path.as_os_str().as_bytes()).expect("checked in prepare");
        let fail = |e: Errno| SetupError::errno("rootfs overlay", &show(&self.path), e);
        let fd = sys::openat_owned(
            libc::AT_FDCWD,
            &c,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
        .map_err(fail)?;
        let (a, b) = (
            sys::fstat(fd.as_raw_fd()).map_err(fail)?,
            sys::fstat(self.dir.as_raw_fd()).map_err(fail)?,
        );
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
            return Err(SetupError::new(
                "rootfs overlay",
                libc::ESTALE,
                format!(
                    "{}: replaced while the container was set up",
                    show(&self.path)
                ),
            ));
        }
        Ok(fd)
    }

    /// fsopen/fsconfig/fsmount of the overlay, `lower` attached.
    fn make(&self, lower: RawFd, upper: RawFd, work: RawFd) -> Result<OwnedFd, SetupError> {
        let fs = sys::fsopen(c"overlay")
            .map_err(|e| SetupError::errno("rootfs overlay", "fsopen overlay", e))?;
        let set = |key: &std::ffi::CStr, fd: RawFd| {
            sys::fsconfig_set_string(fs.as_raw_fd(), key, &fd_path(fd))
                .map_err(|e| self.kernel_error(&fs, key.to_str().unwrap_or("?"), e))
        };
        set(c"lowerdir", lower)?;
        set(c"upperdir", upper)?;
        set(c"workdir", work)?;
        sys::fsconfig_create(fs.as_raw_fd()).map_err(|e| self.kernel_error(&fs, "create", e))?;
        sys::fsmount(fs.as_raw_fd()).map_err(|e| self.kernel_error(&fs, "fsmount", e))
    }

    /// An error of the overlay's fs context, with the kernel's own words.
    fn kernel_error(&self, fs: &OwnedFd, what: &str, e: Errno) -> SetupError {
        let mut buf = [0u8; 512];
        let n = sys::fs_context_log(fs.as_raw_fd(), &mut buf);
        let log = String::from_utf8_lossy(&buf[..n]);
        SetupError::new(
            "rootfs overlay",
            e as i32,
            format!(
                "{} ({what}): {}{}{}",
                show(&self.path),
                e.desc(),
                if log.is_empty() { "" } else { ": " },
                log.trim_end_matches(';')
            ),
        )
    }
}

/// Runs `f` in a new private mount namespace of this process, then returns to
/// the original one (and the original working directory). Nothing `f` mounts
/// is ever visible outside: the namespace dies when the shim leaves it.
fn in_private_mount_ns<T>(f: impl FnOnce() -> Result<T, SetupError>) -> Result<T, SetupError> {
    let ns_err = |what: &str, e: Errno| SetupError::errno("rootfs overlay", what, e);
    let open = |p: &std::ffi::CStr, flags| {
        sys::openat_owned(libc::AT_FDCWD, p, flags, 0).map_err(|e| ns_err(&p.to_string_lossy(), e))
    };
    let home = open(c"/proc/self/ns/mnt", libc::O_RDONLY)?;
    let cwd = open(c".", libc::O_PATH | libc::O_DIRECTORY)?;
    sys::unshare(libc::CLONE_NEWNS).map_err(|e| ns_err("unshare mount namespace", e))?;
    let r = sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
        .map_err(|e| ns_err("make the private namespace private", e))
        .and_then(|()| f());
    // Going back must work, or the shim would go on in the wrong namespace.
    sys::setns(home.as_raw_fd(), libc::CLONE_NEWNS)
        .map_err(|e| ns_err("return to the shim's mount namespace", e))?;
    sys::fchdir(cwd.as_raw_fd()).map_err(|e| ns_err("return to the working directory", e))?;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(size: Option<u64>) -> Vec<(String, String)> {
        tmpfs_options(size)
            .into_iter()
            .map(|(k, v)| (k.to_str().unwrap().into(), v.into_string().unwrap()))
            .collect()
    }

    #[test]
    fn the_tmpfs_is_private_and_sized_with_an_inode_cap() {
        assert_eq!(opts(None), [("mode".into(), "0700".into())]);
        let o = opts(Some(64 << 20));
        assert_eq!(o[1], ("size".into(), (64u64 << 20).to_string()));
        assert_eq!(o[2], ("nr_inodes".into(), "65536".into()));
        // A small size still leaves room for the files of the shim's setup.
        assert_eq!(opts(Some(MIN_SIZE))[2].1, "1024");
    }
}
