//! Whether an unprivileged host user can reach a host path.
//!
//! Through a writable idmapped bind mount the container's root writes files
//! owned by host root, set-id bits included. Such a mount is only allowed when
//! no unprivileged host user can reach its source: some directory on the way
//! from `/` to it (the source itself included) is owned by root and grants no
//! search permission to others, nor to a group other than root. (ACLs are not
//! read: a directory that opens itself through an ACL to other users must not
//! hold such a source.) See "Writes and the host" in docs/shim.md.

use std::io;
use std::os::unix::fs::MetadataExt;
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
/// resolved), each looked up with `stat`; `None` when one of them is closed
/// to unprivileged users, else the path as it was checked.
pub fn open_to_others(
    path: &Path,
    mut stat: impl FnMut(&Path) -> io::Result<DirMode>,
) -> io::Result<Option<PathBuf>> {
    let mut dir = PathBuf::from("/");
    if stat(&dir)?.closes() {
        return Ok(None);
    }
    for c in path.components().skip(1) {
        dir.push(c);
        if stat(&dir)?.closes() {
            return Ok(None);
        }
    }
    Ok(Some(dir))
}

/// [`open_to_others`] on the real filesystem: the source is resolved first
/// (the check must see the directories the mount will really come from).
pub fn host_path_open_to_others(path: &Path) -> io::Result<Option<PathBuf>> {
    let real = std::fs::canonicalize(path)?;
    open_to_others(&real, |p| {
        let md = std::fs::metadata(p)?;
        Ok(DirMode {
            uid: md.uid(),
            gid: md.gid(),
            mode: md.mode(),
        })
    })
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
}
