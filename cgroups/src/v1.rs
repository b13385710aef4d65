//! cgroup v1: one hierarchy per controller (or group of controllers). Device
//! rules go to the devices controller through `cgroups-rs`.

use super::devices;
use super::resources::{limited_controllers, to_resources};
use super::{
    io_err, kill_pids, read_pids_recursive, remove_everywhere, wait_empty, wait_until, write_file,
    CgroupError, CgroupPath, Cgroups, Layout,
};
use cgroups_rs::fs::{hierarchies, Cgroup as CgFs};
use common::cgroup_files::{oom_counter_file, oom_kills};
use common::mountinfo::CgroupMount;
use oci_spec::runtime::LinuxResources;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct V1 {
    mounts: Vec<CgroupMount>,
}

impl V1 {
    pub(super) fn new(mounts: Vec<CgroupMount>) -> Self {
        Self { mounts }
    }

    pub(super) fn mount_of(&self, controller: &str) -> Option<&Path> {
        self.mounts
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))
            .map(|m| m.mount_point.as_path())
    }

    fn fs(path: &CgroupPath) -> CgFs {
        CgFs::load(Box::new(hierarchies::V1::new()), path.as_str())
    }

    /// Thaws the cgroup and every sub-cgroup below it in the freezer
    /// hierarchy (a no-op without one).
    pub(super) fn thaw_tree(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        let Some(mount) = self.mount_of("freezer") else {
            return Ok(());
        };
        let mut errors = Vec::new();
        thaw_dir(&path.under(mount), &mut errors);
        super::all_ok("thawing the cgroup", errors)
    }

    fn procs_root(&self, path: &CgroupPath) -> PathBuf {
        let mount = self
            .mount_of("freezer")
            .or_else(|| self.mount_of("pids"))
            .or_else(|| self.mount_of("memory"))
            .unwrap_or_else(|| self.mounts[0].mount_point.as_path());
        path.under(mount)
    }
}

/// Writes THAWED to `dir`'s freezer and to every sub-cgroup's, deepest
/// first (a sub-cgroup frozen on its own stays frozen when its parent thaws).
fn thaw_dir(dir: &Path, errors: &mut Vec<CgroupError>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                thaw_dir(&e.path(), errors);
            }
        }
    }
    let state = dir.join("freezer.state");
    match fs::write(&state, "THAWED") {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.push(io_err(&state, e)),
    }
}

impl Cgroups for V1 {
    fn layout(&self) -> Layout {
        Layout::V1
    }

    fn create(
        &self,
        path: &CgroupPath,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        // The same checks as for the cgroup2 program, so no layout accepts
        // what another refuses.
        if let Some(rules) = resources.and_then(|r| r.devices().as_deref()) {
            devices::parse(rules).map_err(|source| CgroupError::DeviceRule {
                path: path.to_string(),
                source,
            })?;
        }
        // A limit without its controller would silently not hold.
        if let Some(r) = resources {
            let mut needed = limited_controllers(r);
            if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
                needed.push("devices");
            }
            if let Some(c) = needed.into_iter().find(|c| self.mount_of(c).is_none()) {
                return Err(CgroupError::MissingController {
                    path: path.to_string(),
                    controller: c,
                    layout: "cgroup v1: no hierarchy has it",
                });
            }
        }
        let cg = Self::fs(path);
        let apply_err = |e: cgroups_rs::fs::error::Error| CgroupError::Apply {
            path: path.to_string(),
            message: format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            ),
        };
        cg.create().map_err(apply_err)?;
        // Hierarchies cgroups-rs does not know (named ones other than systemd).
        for m in &self.mounts {
            let dir = path.under(&m.mount_point);
            fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        }
        if let Some(r) = resources {
            let memsw = self
                .mount_of("memory")
                .map(|m| path.under(m).join("memory.memsw.limit_in_bytes").exists())
                .unwrap_or(false);
            cg.apply(&to_resources(r, false, memsw))
                .map_err(apply_err)?;
        }
        Ok(())
    }

    fn validate(&self, _resources: &LinuxResources) -> Result<(), CgroupError> {
        Ok(())
    }

    fn update(&self, path: &CgroupPath, resources: &LinuxResources) -> Result<(), CgroupError> {
        let memsw = self
            .mount_of("memory")
            .map(|m| path.under(m).join("memory.memsw.limit_in_bytes").exists())
            .unwrap_or(false);
        Self::fs(path)
            .apply(&to_resources(resources, false, memsw))
            .map_err(|e| CgroupError::Apply {
                path: path.to_string(),
                message: e.to_string(),
            })
    }

    fn procs_files(&self, path: &CgroupPath) -> Vec<PathBuf> {
        self.mounts
            .iter()
            .map(|m| path.under(&m.mount_point).join("cgroup.procs"))
            .collect()
    }

    fn freeze(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        let mount = self.mount_of("freezer").ok_or(CgroupError::NoFreezer {
            path: path.to_string(),
        })?;
        let state = path.under(mount).join("freezer.state");
        write_file(&state, "FROZEN")?;
        let r = wait_until(path, "frozen", || {
            fs::read_to_string(&state)
                .map(|s| s.trim() == "FROZEN")
                .unwrap_or(false)
        });
        if r.is_err() {
            let _ = write_file(&state, "THAWED");
        }
        r
    }

    fn thaw(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        let mount = self.mount_of("freezer").ok_or(CgroupError::NoFreezer {
            path: path.to_string(),
        })?;
        let state = path.under(mount).join("freezer.state");
        write_file(&state, "THAWED")?;
        wait_until(path, "thawed", || {
            fs::read_to_string(&state)
                .map(|s| s.trim() == "THAWED")
                .unwrap_or(true)
        })
    }

    fn pids(&self, path: &CgroupPath) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        read_pids_recursive(&self.procs_root(path), &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn oom_kills(&self, path: &CgroupPath) -> u64 {
        self.mount_of("memory")
            .and_then(|m| fs::read_to_string(path.under(m).join(oom_counter_file(false))).ok())
            .and_then(|s| oom_kills(&s))
            .unwrap_or(0)
    }

    fn kill_all(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        if !self.exists(path) {
            return Ok(());
        }
        // Killed, then thawed, sub-cgroups included (whoever froze them): a
        // task in the v1 freezer acts on SIGKILL only once it runs again.
        // Whatever forked meanwhile is killed by wait_empty's rounds.
        let listed = self.pids(path);
        if let Ok(pids) = &listed {
            kill_pids(pids);
        }
        let thawed = self.thaw_tree(path);
        let emptied = wait_empty(self, path);
        if !self.exists(path) {
            // Removed meanwhile: nothing can be left in it.
            return Ok(());
        }
        super::all_ok(
            "killing the cgroup's processes",
            [listed.err(), thawed.err(), emptied.err()]
                .into_iter()
                .flatten()
                .collect(),
        )
    }

    fn remove(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        remove_everywhere(path, self.mounts.iter().map(|m| m.mount_point.as_path()))
    }

    fn exists(&self, path: &CgroupPath) -> bool {
        self.mounts
            .iter()
            .any(|m| path.under(&m.mount_point).is_dir())
    }
}
