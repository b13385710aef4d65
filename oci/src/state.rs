//! The state directory `<root>/<id>/`: `state.json` (what `create` learnt,
//! written atomically) and, until `start`, `exec.fifo` (the start gate).
//! The status is worked out from the live system each time, as runc does.

use crate::error::{Context, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";
/// The OCI runtime spec version zctr-oci reports.
pub const OCI_VERSION: &str = "1.2.0";

/// What `create` saves about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat` of the init when it was created.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The cgroup, relative to every hierarchy's root.
    pub cgroup: String,
    /// The config.json it was created from (exec, update and delete read it).
    pub config: serde_json::Value,
    #[serde(default)]
    pub owner: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// A container's state directory.
pub struct Dir {
    pub id: String,
    pub path: PathBuf,
}

/// runc's rule for ids: letters, digits, `_`, `+`, `-`, `.`, not `.`/`..`.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::new(format!("invalid container id format: {id:?}")))
    }
}

impl Dir {
    pub fn of(root: &Path, id: &str) -> Result<Dir> {
        check_id(id)?;
        Ok(Dir {
            id: id.to_string(),
            path: root.join(id),
        })
    }

    /// Makes the directory; an existing one means the id is taken.
    pub fn make(root: &Path, id: &str) -> Result<Dir> {
        let d = Dir::of(root, id)?;
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .ctx(|| format!("state root {}", root.display()))?;
        // 0700: state.json holds the config (its environment may hold secrets).
        match fs::DirBuilder::new().mode(0o700).create(&d.path) {
            Ok(()) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::new(format!("container {id} already exists")))
            }
            Err(e) => Err(Error::at(format!("state dir {}", d.path.display()), e)),
        }
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join(FIFO)
    }

    /// `state.json`; `None` while `create` has not written it yet.
    pub fn load(&self) -> Result<Option<Saved>> {
        let file = self.path.join(STATE_FILE);
        match fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .ctx(|| format!("{}", file.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.exists() {
                    Ok(None)
                } else {
                    Err(not_exist(&self.id))
                }
            }
            Err(e) => Err(Error::at(file.display(), e)),
        }
    }

    /// The saved state of a container that exists and is fully created.
    pub fn load_existing(&self) -> Result<Saved> {
        match self.load()? {
            Some(s) => Ok(s),
            None => Err(Error::new(format!(
                "container {} is still being created",
                self.id
            ))),
        }
    }

    /// Writes `state.json` atomically (temporary file, rename). No fsync:
    /// the root lives in /run (tmpfs), gone at reboot anyway, and an fsync
    /// on a disk costs more than the whole `run` of a small container.
    pub fn save(&self, s: &Saved) -> Result<()> {
        let file = self.path.join(STATE_FILE);
        let tmp = self.path.join(".state.json.tmp");
        let what = || format!("write {}", file.display());
        let mut f = fs::File::create(&tmp).ctx(what)?;
        f.write_all(&serde_json::to_vec(s).ctx(what)?).ctx(what)?;
        fs::rename(&tmp, &file).ctx(what)
    }

    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::at(format!("remove {}", self.path.display()), e)),
        }
    }

    /// The container's status now.
    pub fn status(&self, s: &Saved) -> Status {
        if !crate::proc::alive(s.pid, s.start_time) {
            return Status::Stopped;
        }
        if self.fifo().exists() {
            return Status::Created;
        }
        if crate::cgroup::frozen(&s.cgroup) {
            return Status::Paused;
        }
        Status::Running
    }
}

/// runc's wording, which containerd and podman look for.
pub fn not_exist(id: &str) -> Error {
    let _ = id;
    Error::new("container does not exist")
}

/// The OCI state JSON of `runc state` (and the entries of `list --format json`).
pub fn oci_state(s: &Saved, status: Status) -> serde_json::Value {
    let pid = if status == Status::Stopped { 0 } else { s.pid };
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": s.id,
        "pid": pid,
        "status": status.as_str(),
        "bundle": s.bundle,
        "rootfs": s.rootfs,
        "created": s.created,
        "annotations": s.annotations,
        "owner": s.owner,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runcs_rule() {
        for ok in ["a", "abc-1.2_x+y", &"f".repeat(64)] {
            check_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }
}
