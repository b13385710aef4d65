//! Scratch directories that clean up after themselves, mounts included.

use crate::error::Context;
use crate::{mountinfo, sys, Error};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A directory under /tmp (or a given base) removed recursively on drop.
///
/// Before removing, every mount at or below it (as seen in this process's mount
/// namespace) is detached, deepest first. If a mount cannot be detached the
/// directory is left in place (with a message on stderr) rather than deleting
/// files through a mount. Set `ZCTR_TEST_KEEP=1` to keep all scratch dirs.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// Create `/tmp/<prefix>-<pid>-<n>` (mode 0755).
    pub fn new(prefix: &str) -> Result<TempDir, Error> {
        TempDir::new_in("/tmp", prefix)
    }

    /// Create `<base>/<prefix>-<pid>-<n>` (mode 0755); `base` must exist.
    pub fn new_in(base: impl AsRef<Path>, prefix: &str) -> Result<TempDir, Error> {
        let base = base.as_ref();
        let base = base
            .canonicalize()
            .ctx(|| format!("canonicalize {}", base.display()))?;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("{prefix}-{}-{n}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o755).create(&path) {
                Ok(()) => {
                    // The umask may have narrowed the mode.
                    set_mode(&path, 0o755)?;
                    let keep = std::env::var_os("ZCTR_TEST_KEEP").is_some_and(|v| v == "1");
                    return Ok(TempDir { path, keep });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).ctx(|| format!("mkdir {}", path.display())),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(rel)`.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Disarm: the directory survives the drop; returns its path.
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }

    /// Unmount everything below and remove the directory now, reporting errors.
    pub fn remove(mut self) -> Result<(), Error> {
        self.keep = true;
        remove_tree(&self.path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(e) = remove_tree(&self.path) {
            eprintln!("zctr-tests: leaving {}: {e}", self.path.display());
        }
    }
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .ctx(|| format!("chmod {mode:o} {}", path.display()))
}

/// Mount points at or below `dir`, deepest (then most recent) first.
pub fn mounts_below(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found: Vec<(usize, u32, PathBuf)> = mountinfo::read_own()
        .ctx(|| "read /proc/self/mountinfo".to_string())?
        .into_iter()
        .filter(|m| m.mount_point.starts_with(dir))
        .map(|m| {
            (
                m.mount_point.components().count(),
                m.mount_id,
                m.mount_point,
            )
        })
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse((m.0, m.1)));
    Ok(found.into_iter().map(|(_, _, p)| p).collect())
}

/// Detach every mount at or below `dir` (deepest first, repeated for stacked
/// mounts). Fails if some mount is still there afterwards.
pub fn unmount_below(dir: &Path) -> Result<(), Error> {
    for _ in 0..16 {
        let mounts = mounts_below(dir)?;
        if mounts.is_empty() {
            return Ok(());
        }
        for m in mounts {
            // EINVAL: already gone with its parent; the next pass re-checks.
            let _ = sys::umount_detach(&m);
        }
    }
    match mounts_below(dir)?.first() {
        None => Ok(()),
        Some(m) => Err(Error::Io {
            context: format!("unmount {}", m.display()),
            source: std::io::Error::from_raw_os_error(libc::EBUSY),
        }),
    }
}

/// Unmount everything below `dir`, then remove it recursively (never following symlinks).
pub fn remove_tree(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    unmount_below(dir)?;
    std::fs::remove_dir_all(dir).ctx(|| format!("rm -r {}", dir.display()))
}
