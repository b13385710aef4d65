//! Removal of a directory tree of any depth without recursion and with at
//! most three descriptors open at any time.
//!
//! `std::fs::remove_dir_all` recurses on the thread's stack and holds one
//! descriptor per level: a tree deeper than ~19,000 levels overflows a 2 MiB
//! stack (aborting the whole process) and one deeper than the descriptor
//! limit fails with EMFILE. Here the path from the top to the current
//! directory is a heap stack of frames (name, identity, names still to visit);
//! only the current directory is open. Going back up opens `..` and checks it
//! is the directory recorded in the parent's frame, so a tree rearranged while
//! it is removed is an error, never a walk out of it. Other filesystems
//! mounted below are not entered (their mount point is left, with an error).

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

#[derive(Debug, thiserror::Error)]
#[error("{step} {name:?}: {errno}")]
pub struct RmError {
    pub step: &'static str,
    /// The entry's name (below the directory being emptied).
    pub name: String,
    pub errno: Errno,
}

fn fail(step: &'static str, name: &CStr, errno: Errno) -> RmError {
    RmError {
        step,
        name: name.to_string_lossy().into_owned(),
        errno,
    }
}

/// One directory on the way down: its name in its parent, its identity, and
/// the subdirectories not yet removed.
struct Frame {
    name: CString,
    id: (u64, u64),
    subdirs: Vec<CString>,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn identity(fd: impl AsFd, name: &CStr) -> Result<(u64, u64), RmError> {
    let st = fstat(fd).map_err(|e| fail("stat", name, e))?;
    Ok((st.st_dev, st.st_ino))
}

/// Removes `name` below the directory `parent`, whatever it is (a directory
/// with everything in it, a file, a symlink); a missing `name` is fine.
pub fn remove_at(parent: impl AsFd, name: &OsStr) -> Result<(), RmError> {
    let name = CString::new(name.as_bytes()).map_err(|_| RmError {
        step: "name",
        name: name.to_string_lossy().into_owned(),
        errno: Errno::EINVAL,
    })?;
    let parent = parent.as_fd();
    match unlinkat(parent, name.as_c_str(), UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::ENOTDIR) => {
            return match unlinkat(parent, name.as_c_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(fail("unlink", &name, e)),
            }
        }
        Err(Errno::ENOTEMPTY | Errno::EEXIST) => {}
        Err(e) => return Err(fail("rmdir", &name, e)),
    }
    let top = parent.try_clone_to_owned().map_err(|e| RmError {
        step: "dup",
        name: ".".into(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
    })?;
    let top_id = identity(&top, c".")?;
    let mut cur = openat(&top, name.as_c_str(), DIR_FLAGS, Mode::empty())
        .map_err(|e| fail("open", &name, e))?;
    let mut stack = vec![Frame {
        id: identity(&cur, &name)?,
        subdirs: empty_files(&cur, &name)?,
        name,
    }];
    if stack[0].id.0 != top_id.0 {
        return Err(fail("enter (a mount point)", &stack[0].name, Errno::EXDEV));
    }
    loop {
        let frame = stack.last_mut().expect("never empty here");
        if let Some(sub) = frame.subdirs.pop() {
            // Empty already (or gone): no need to enter it.
            match unlinkat(&cur, sub.as_c_str(), UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => continue,
                Err(Errno::ENOTEMPTY | Errno::EEXIST) => {}
                Err(e) => return Err(fail("rmdir", &sub, e)),
            }
            let next = openat(&cur, sub.as_c_str(), DIR_FLAGS, Mode::empty())
                .map_err(|e| fail("open", &sub, e))?;
            let id = identity(&next, &sub)?;
            if id.0 != top_id.0 {
                return Err(fail("enter (a mount point)", &sub, Errno::EXDEV));
            }
            let subdirs = empty_files(&next, &sub)?;
            cur = next;
            stack.push(Frame {
                name: sub,
                id,
                subdirs,
            });
            continue;
        }
        // Everything below is gone: go up and remove this directory.
        let done = stack.pop().expect("never empty here");
        let (up, up_id) = match stack.last() {
            Some(parent) => {
                let up = openat(&cur, c"..", DIR_FLAGS, Mode::empty())
                    .map_err(|e| fail("open ..", &done.name, e))?;
                (up, parent.id)
            }
            None => (
                top.try_clone()
                    .map_err(|_| fail("dup", c".", Errno::EBADF))?,
                top_id,
            ),
        };
        if identity(&up, &done.name)? != up_id {
            return Err(fail("go up (the tree moved)", &done.name, Errno::ESTALE));
        }
        cur = up;
        match unlinkat(&cur, done.name.as_c_str(), UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(fail("rmdir", &done.name, e)),
        }
        if stack.is_empty() {
            return Ok(());
        }
    }
}

/// Unlinks every non-directory in `dir`; returns the names of its
/// subdirectories. The listing uses a second descriptor, closed on return.
fn empty_files(dir: &OwnedFd, name: &CStr) -> Result<Vec<CString>, RmError> {
    let listing = openat(dir, c".", DIR_FLAGS, Mode::empty()).map_err(|e| fail("open", name, e))?;
    let mut d = Dir::from_fd(listing).map_err(|e| fail("read", name, e))?;
    let mut subdirs = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(|e| fail("read", name, e))?;
        let n = entry.file_name();
        if n == c"." || n == c".." {
            continue;
        }
        let is_dir = match entry.file_type() {
            Some(t) => t == Type::Directory,
            None => fstatat(dir, n, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
                .map_err(|e| fail("stat", n, e))?,
        };
        if is_dir {
            subdirs.push(n.to_owned());
        } else {
            match unlinkat(dir, n, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(fail("unlink", n, e)),
            }
        }
    }
    Ok(subdirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::fs;

    fn root(t: &TempDir) -> OwnedFd {
        fs::File::open(t.path()).unwrap().into()
    }

    #[test]
    fn removes_files_links_and_nested_dirs_and_a_missing_name_is_fine() {
        let t = TempDir::new("rmtree-mixed");
        let top = t.path().join("x");
        fs::create_dir_all(top.join("a/b/c")).unwrap();
        fs::create_dir_all(top.join("a/e")).unwrap();
        fs::write(top.join("a/b/c/f"), b"1").unwrap();
        fs::write(top.join("g"), b"2").unwrap();
        // A link to something outside: removed, its target kept.
        fs::write(t.path().join("keep"), b"k").unwrap();
        std::os::unix::fs::symlink(t.path().join("keep"), top.join("a/l")).unwrap();
        std::os::unix::fs::symlink(t.path(), top.join("a/dl")).unwrap();
        let fd = root(&t);
        remove_at(&fd, OsStr::new("x")).unwrap();
        assert!(!top.exists());
        assert_eq!(fs::read(t.path().join("keep")).unwrap(), b"k");
        remove_at(&fd, OsStr::new("x")).unwrap();
        fs::write(t.path().join("file"), b"").unwrap();
        remove_at(&fd, OsStr::new("file")).unwrap();
        assert!(!t.path().join("file").exists());
    }

    #[test]
    fn wide_trees_go_too() {
        let t = TempDir::new("rmtree-wide");
        for i in 0..300 {
            let d = t.path().join(format!("x/d{i}/e"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("f"), b"").unwrap();
        }
        remove_at(root(&t), OsStr::new("x")).unwrap();
        assert!(!t.path().join("x").exists());
    }

    /// Builds `depth` nested `d` directories below `top` (relative opens, so
    /// no path grows past PATH_MAX), with a file at the bottom.
    fn deep_tree(top: &std::path::Path, depth: usize) {
        fs::create_dir(top).unwrap();
        let mut cur: OwnedFd = fs::File::open(top).unwrap().into();
        for _ in 0..depth {
            nix::sys::stat::mkdirat(&cur, c"d", Mode::from_bits_truncate(0o755)).unwrap();
            cur = openat(&cur, c"d", DIR_FLAGS, Mode::empty()).unwrap();
        }
        let f = openat(
            &cur,
            c"f",
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        drop(f);
    }

    #[test]
    fn a_30000_deep_tree_goes_on_a_256_kib_stack_with_few_descriptors() {
        let t = TempDir::new("rmtree-deep");
        let top = t.path().join("x");
        deep_tree(&top, 30_000);
        let fd = root(&t);
        // Few descriptors: one per level would run out long before 30,000
        // under the usual soft limits (1,024; 20,000 here). (A count of /proc/self/fd here
        // would race with the other tests of this process.)
        let r = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || remove_at(&fd, OsStr::new("x")))
            .unwrap()
            .join()
            .expect("the removal thread died");
        r.unwrap();
        assert!(!top.exists());
    }

    #[test]
    fn a_mount_point_below_is_not_entered() {
        if !zctr_tests::skip::need_root() {
            return;
        }
        let t = TempDir::new("rmtree-mnt");
        let m = t.path().join("x/m");
        fs::create_dir_all(&m).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            &m,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=64k"),
        )
        .unwrap();
        fs::write(m.join("inside"), b"").unwrap();
        let r = remove_at(root(&t), OsStr::new("x"));
        let still = m.join("inside").exists();
        nix::mount::umount(&m).unwrap();
        let e = r.unwrap_err();
        assert!(matches!(e.errno, Errno::EXDEV | Errno::EBUSY), "{e}");
        assert!(still, "removed a file on another filesystem");
    }
}
