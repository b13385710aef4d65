//! Whether an unprivileged host user can reach a host path.
//!
//! Through a writable idmapped bind mount the container's root writes files
//! owned by host root, set-id bits included. Such a mount is only allowed when
//! no unprivileged host user can reach its source: some directory on the way
//! from `/` to it (the source itself included) is owned by root and grants no
//! search permission to others, nor to a group other than root. (ACLs are not
//! read: a directory that opens itself through an ACL to other users must not
//! hold such a source.) See "Writes and the host" in docs/shim.md.

use crate::setup::sys;
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Owner, group and mode of one directory on the way.
#[derive(Debug, Clone, Copy)]
pub struct DirMode {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl DirMode {
    /// A directory that only root (user or group) can search.
    fn closes(self) -> bool {
        self.uid == 0 && self.mode & 0o001 == 0 && (self.gid == 0 || self.mode & 0o010 == 0)
    }
}

/// The directories from `/` down to `path` (which must be absolute and
/// resolved), each looked up with `stat` (all of them, in order: the real
/// walk opens each one from the one before); `None` when one of them is
/// closed to unprivileged users, else the path as it was checked.
pub fn open_to_others(
    path: &Path,
    mut stat: impl FnMut(&Path) -> io::Result<DirMode>,
) -> io::Result<Option<PathBuf>> {
    let mut dir = PathBuf::from("/");
    let mut closed = stat(&dir)?.closes();
    for c in path.components().skip(1) {
        dir.push(c);
        closed |= stat(&dir)?.closes();
    }
    Ok(if closed { None } else { Some(dir) })
}

/// A host directory opened by walking to it, and what the walk found.
pub struct Walked {
    /// `O_PATH` fd of the directory the walk ended on: what is checked is
    /// what gets mounted, whatever the path names later.
    pub fd: OwnedFd,
    /// The resolved path that was walked.
    pub path: PathBuf,
    /// The path, when every directory on the way is open to others.
    pub open: Option<PathBuf>,
}

/// [`open_to_others`] on the real filesystem. The source is resolved first
/// (the check must see the directories the mount will really come from),
/// then walked from `/` one component at a time with
/// `openat(O_PATH | O_NOFOLLOW | O_DIRECTORY)`, each directory checked with
/// `fstat` on its fd: a component swapped for a symlink after the resolution
/// makes the walk fail instead of leading elsewhere.
pub fn walk_host_path(path: &Path) -> io::Result<Walked> {
    walk_resolved(std::fs::canonicalize(path)?)
}

/// The walk of [`walk_host_path`] on an already resolved path: a symlink on
/// the way is an error (`ENOTDIR`), never followed.
fn walk_resolved(real: PathBuf) -> io::Result<Walked> {
    let mut cur: Option<OwnedFd> = None;
    let open = open_to_others(&real, |p| {
        let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY;
        let fd = match &cur {
            None => sys::openat_owned(libc::AT_FDCWD, c"/", flags, 0),
            Some(parent) => {
                let name = p.file_name().unwrap_or_default().as_bytes();
                let name =
                    CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                sys::openat_owned(parent.as_raw_fd(), &name, flags, 0)
            }
        }
        .map_err(|e| {
            io::Error::new(
                io::Error::from_raw_os_error(e as i32).kind(),
                format!("{}: {}", p.display(), e.desc()),
            )
        })?;
        let st = sys::fstat(fd.as_raw_fd()).map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        cur = Some(fd);
        Ok(DirMode {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
        })
    })?;
    let fd = cur.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    Ok(Walked {
        fd,
        path: real,
        open,
    })
}

/// The mount points strictly below `dir` in a mountinfo text (field 5,
/// octal escapes such as `\040` undone).
pub fn mounts_below(dir: &Path, mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(OsString::from_vec(unescape(p))))
        .filter(|p| p != dir && p.starts_with(dir))
        .collect()
}

/// Undoes mountinfo's `\ooo` escapes (space, tab, newline, backslash).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if v <= 255 {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn fake(entries: &[(&str, u32, u32, u32)]) -> HashMap<PathBuf, DirMode> {
        entries
            .iter()
            .map(|&(p, uid, gid, mode)| (PathBuf::from(p), DirMode { uid, gid, mode }))
            .collect()
    }

    fn check(tree: &HashMap<PathBuf, DirMode>, path: &str) -> Option<PathBuf> {
        open_to_others(Path::new(path), |p| {
            tree.get(p)
                .copied()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        })
        .unwrap()
    }

    #[test]
    fn a_root_only_directory_on_the_way_closes_the_path() {
        let t = fake(&[
            ("/", 0, 0, 0o755),
            ("/var", 0, 0, 0o755),
            ("/var/lib", 0, 0, 0o700),
            ("/var/lib/v", 1000, 1000, 0o777),
        ]);
        assert_eq!(check(&t, "/var/lib/v"), None);
    }

    #[test]
    fn world_searchable_directories_leave_it_open() {
        let t = fake(&[
            ("/", 0, 0, 0o755),
            ("/srv", 0, 0, 0o755),
            ("/srv/v", 0, 0, 0o711),
        ]);
        assert_eq!(check(&t, "/srv/v"), Some(PathBuf::from("/srv/v")));
    }

    #[test]
    fn a_group_other_than_root_or_an_owner_other_than_root_leaves_it_open() {
        // Group-searchable by a non-root group: its members can reach it.
        let t = fake(&[("/", 0, 0, 0o755), ("/d", 0, 100, 0o750)]);
        assert!(check(&t, "/d").is_some());
        // Owned by an ordinary user: that user can reach it.
        let t = fake(&[("/", 0, 0, 0o755), ("/d", 1000, 0, 0o700)]);
        assert!(check(&t, "/d").is_some());
        // Root group, group-searchable: still root only.
        let t = fake(&[("/", 0, 0, 0o755), ("/d", 0, 0, 0o750)]);
        assert!(check(&t, "/d").is_none());
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let t = fake(&[("/", 0, 0, 0o755)]);
        let r = open_to_others(Path::new("/nope"), |p| {
            t.get(p)
                .copied()
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
        });
        assert!(r.is_err());
    }

    #[test]
    fn mount_points_strictly_below_are_found_unescaped() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
30 22 0:40 / /root/vol rw - tmpfs t rw
31 30 8:1 /srv/public /root/vol/pub rw - ext4 /dev/sda1 rw
32 22 0:41 / /root/vol\\040x/in rw - tmpfs t rw
33 22 0:42 / /root/volume rw - tmpfs t rw
";
        assert_eq!(
            mounts_below(Path::new("/root/vol"), info),
            vec![PathBuf::from("/root/vol/pub")]
        );
        assert_eq!(
            mounts_below(Path::new("/root/vol x"), info),
            vec![PathBuf::from("/root/vol x/in")]
        );
        assert!(mounts_below(Path::new("/root/volume"), info).is_empty());
        assert_eq!(unescape("a\\134b\\011\\9"), b"a\\b\t\\9");
    }

    #[test]
    fn the_walk_checks_real_directories_and_never_follows_a_symlink() {
        let d = std::env::temp_dir().join(format!("zctr-reach-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("real/v")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        let real = std::fs::canonicalize(&d).unwrap();
        // Resolved first, the link is fine and the fd is the real directory.
        let w = walk_host_path(&d.join("link/v")).unwrap();
        assert_eq!(w.path, real.join("real/v"));
        let st = sys::fstat(w.fd.as_raw_fd()).unwrap();
        let md = std::fs::metadata(real.join("real/v")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((st.st_dev, st.st_ino), (md.dev(), md.ino()));
        // A symlink met by the walk itself (swapped in after the resolution)
        // fails the walk.
        let e = walk_resolved(real.join("link/v"))
            .err()
            .expect("walk through a symlink");
        assert_eq!(e.kind(), io::ErrorKind::NotADirectory, "{e}");
        assert!(e.to_string().contains("link"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
