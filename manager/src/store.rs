//! The state root on disk: one directory per container, atomic JSON writes, and
//! the lock file that keeps a second daemon off the same root.

use nix::fcntl::{Flock, FlockArg};
use serde::{de::DeserializeOwned, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use common::layout::{LOCK_FILE, RECORD_FILE};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state root {path} is locked by another zctr daemon")]
    Locked { path: PathBuf },
    #[error("{path} already exists")]
    Exists { path: PathBuf },
    #[error("no space left on the state disk writing {path}")]
    NoSpace { path: PathBuf },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} does not parse: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl StoreError {
    fn io(path: &Path, source: io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC)
            || source.raw_os_error() == Some(libc::EDQUOT)
        {
            StoreError::NoSpace { path: path.into() }
        } else {
            StoreError::Io {
                path: path.into(),
                source,
            }
        }
    }
}

/// The state root, held under an exclusive lock for the life of the daemon.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    _lock: Flock<File>,
    /// The event log beside the containers' directories (`crate::events`).
    events: crate::events::Events,
}

impl Store {
    /// Creates the root (mode 0700) if needed and takes its lock, refusing a
    /// root another daemon holds.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| StoreError::io(root, e))?;
        let lock_path = root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| StoreError::io(&lock_path, e))?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            if errno == nix::errno::Errno::EWOULDBLOCK {
                StoreError::Locked {
                    path: root.to_path_buf(),
                }
            } else {
                StoreError::io(&lock_path, io::Error::from(errno))
            }
        })?;
        Ok(Self {
            root: root.to_path_buf(),
            _lock: lock,
            events: crate::events::Events::open(root),
        })
    }

    /// The directory of container `id` (which need not exist).
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Creates the directory of a new container; an existing one is `Exists`.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf, StoreError> {
        let dir = self.dir(id);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(StoreError::Exists { path: dir })
            }
            Err(e) => Err(StoreError::io(&dir, e)),
        }
    }

    /// Removes a container's directory and everything in it; a missing one is
    /// fine. Without recursion and with a few descriptors whatever the depth
    /// (`rmtree`): a container-made tree can neither overflow the calling
    /// thread's stack nor exhaust the daemon's descriptors.
    pub fn remove_dir(&self, id: &str) -> Result<(), StoreError> {
        let dir = self.dir(id);
        let root = File::open(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        crate::rmtree::remove_at(&root, std::ffi::OsStr::new(id)).map_err(|e| {
            let kind = io::Error::from_raw_os_error(e.errno as i32).kind();
            StoreError::io(&dir, io::Error::new(kind, e.to_string()))
        })
    }

    /// Names of every directory in the root (candidates for recovery), sorted.
    pub fn events(&self) -> &crate::events::Events {
        &self.events
    }

    pub fn list(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        let entries = fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io(&self.root, e))?;
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Writes `value` as the record of container `id`, atomically.
    #[cfg(test)]
    pub fn save<T: Serialize>(&self, id: &str, value: &T) -> Result<(), StoreError> {
        self.save_changed(id, value, None, true).map(|_| ())
    }

    /// Writes `value` as the record of container `id`, atomically, unless
    /// its bytes hash to `last` (what the file already holds: a write that
    /// would change nothing costs two fsyncs for no durability). Returns the
    /// hash of what the file now holds. `durable`: see [`write_replace`].
    pub fn save_changed<T: Serialize>(
        &self,
        id: &str,
        value: &T,
        last: Option<u64>,
        durable: bool,
    ) -> Result<u64, StoreError> {
        let path = self.dir(id).join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Json {
            path: path.clone(),
            source,
        })?;
        let hash = content_hash(&json);
        if last != Some(hash) {
            write_replace(&path, &json, durable)?;
        }
        Ok(hash)
    }

    /// Reads the record of container `id`.
    pub fn load<T: DeserializeOwned>(&self, id: &str) -> Result<T, StoreError> {
        read_json(&self.dir(id).join(RECORD_FILE))
    }
}

/// The hash [`Store::save_changed`] compares: of the bytes a record is
/// saved as.
pub fn record_hash<T: Serialize>(value: &T) -> Option<u64> {
    serde_json::to_vec_pretty(value)
        .ok()
        .map(|json| content_hash(&json))
}

fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Reads and parses a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = fs::read(path).map_err(|e| StoreError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
        path: path.into(),
        source,
    })
}

/// Replaces `path` with `bytes` so that a reader sees either the old or the new
/// content, never a mix, even across a crash: temp file, fsync, rename, fsync
/// dir. With `durable` false, without the two fsyncs: a
/// reader still sees the old or the new content, and so does everyone after
/// the daemon is killed (the page cache outlives it); only a host crash may
/// lose the write. For what is worth nothing after a host crash (a bundle
/// regenerated from the record at every launch, a `creating` record that
/// recovery cleans up whether it is there or not).
pub fn write_replace(path: &Path, bytes: &[u8], durable: bool) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let t = TempDir::new("store-atomic");
        let p = t.path().join("x.json");
        write_replace(&p, b"one", true).unwrap();
        write_replace(&p, b"two", false).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(t.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn second_store_on_one_root_is_refused() {
        let t = TempDir::new("store-lock");
        let first = Store::open(t.path()).unwrap();
        let err = Store::open(t.path()).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        drop(first);
        Store::open(t.path()).unwrap();
    }

    #[test]
    fn dirs_and_records() {
        let t = TempDir::new("store-dirs");
        let s = Store::open(t.path()).unwrap();
        s.create_dir("a").unwrap();
        assert!(matches!(
            s.create_dir("a").unwrap_err(),
            StoreError::Exists { .. }
        ));
        s.save("a", &serde_json::json!({"k": 1})).unwrap();
        let v: serde_json::Value = s.load("a").unwrap();
        assert_eq!(v["k"], 1);
        fs::write(t.path().join("not-a-dir"), b"").unwrap();
        assert_eq!(s.list().unwrap(), vec!["a".to_string()]);
        s.remove_dir("a").unwrap();
        s.remove_dir("a").unwrap();
        assert!(s.list().unwrap().is_empty());
        let err = s.load::<serde_json::Value>("a").unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }));
    }

    #[test]
    fn an_unchanged_record_is_not_written_again() {
        let t = TempDir::new("store-unchanged");
        let s = Store::open(t.path()).unwrap();
        s.create_dir("c").unwrap();
        let v = serde_json::json!({"k": 1});
        let h = s.save_changed("c", &v, None, true).unwrap();
        assert_eq!(record_hash(&v), Some(h));
        // Same content and the hash of the file: no write (a file changed
        // behind the store's back stays as it is).
        fs::write(s.dir("c").join(RECORD_FILE), b"sentinel").unwrap();
        assert_eq!(s.save_changed("c", &v, Some(h), true).unwrap(), h);
        assert_eq!(fs::read(s.dir("c").join(RECORD_FILE)).unwrap(), b"sentinel");
        // Unknown hash or changed content: written.
        s.save_changed("c", &v, None, true).unwrap();
        let back: serde_json::Value = s.load("c").unwrap();
        assert_eq!(back, v);
        let w = serde_json::json!({"k": 2});
        let h2 = s.save_changed("c", &w, Some(h), true).unwrap();
        assert_ne!(h2, h);
        let back: serde_json::Value = s.load("c").unwrap();
        assert_eq!(back, w);
    }

    #[test]
    fn corrupt_record_is_a_json_error() {
        let t = TempDir::new("store-corrupt");
        let s = Store::open(t.path()).unwrap();
        s.create_dir("b").unwrap();
        fs::write(s.dir("b").join(RECORD_FILE), b"{nope").unwrap();
        assert!(matches!(
            s.load::<serde_json::Value>("b").unwrap_err(),
            StoreError::Json { .. }
        ));
    }
}
