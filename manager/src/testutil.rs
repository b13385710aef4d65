//! Helpers for unit tests only.

use oci_spec::runtime::LinuxResources;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use zctr_cgroups::{CgroupError, CgroupPath, Cgroups, Layout};

/// A directory under the system temp dir, removed (with its content) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "zctr-unit-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A [`Cgroups`] that touches nothing and records
/// every call as `"<method> <path>"`, in order. Empty cgroups: no pids, no
/// OOM kills, no `cgroup.procs` files to place a process with.
#[derive(Debug, Default)]
pub struct FakeCgroups {
    calls: std::sync::Mutex<Vec<String>>,
}

impl FakeCgroups {
    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn note(&self, method: &str, path: &CgroupPath) {
        self.calls.lock().unwrap().push(format!("{method} {path}"));
    }
}

impl Cgroups for FakeCgroups {
    fn layout(&self) -> Layout {
        Layout::V2
    }
    fn create(
        &self,
        path: &CgroupPath,
        _resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        self.note("create", path);
        Ok(())
    }
    fn validate(&self, _resources: &LinuxResources) -> Result<(), CgroupError> {
        Ok(())
    }
    fn update(&self, path: &CgroupPath, _resources: &LinuxResources) -> Result<(), CgroupError> {
        self.note("update", path);
        Ok(())
    }
    fn procs_files(&self, path: &CgroupPath) -> Vec<PathBuf> {
        self.note("procs_files", path);
        Vec::new()
    }
    fn freeze(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        self.note("freeze", path);
        Ok(())
    }
    fn thaw(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        self.note("thaw", path);
        Ok(())
    }
    fn pids(&self, path: &CgroupPath) -> Result<Vec<i32>, CgroupError> {
        self.note("pids", path);
        Ok(Vec::new())
    }
    fn oom_kills(&self, path: &CgroupPath) -> u64 {
        self.note("oom_kills", path);
        0
    }
    fn kill_all(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        self.note("kill_all", path);
        Ok(())
    }
    fn remove(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        self.note("remove", path);
        Ok(())
    }
    fn exists(&self, path: &CgroupPath) -> bool {
        self.note("exists", path);
        false
    }
}
