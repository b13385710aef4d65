//! cgroup v1: one hierarchy per controller (or group of controllers). Device
//! rules go to the devices controller through `cgroups-rs`.

use super::devices;
use super::resources::apply::{self, Dirs};
use super::resources::{self as res, v1_devices, Host, Plan};
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

    /// Every mounted controller and its hierarchy.
    fn controllers(&self) -> Vec<(&str, &Path)> {
        self.mounts
            .iter()
            .flat_map(|m| {
                m.controllers
                    .iter()
                    .map(move |c| (c.as_str(), m.mount_point.as_path()))
            })
            .collect()
    }

    pub(super) fn host(&self, layout: Layout, v2_root: Option<&Path>) -> Host {
        Host::probe(layout, &self.controllers(), v2_root)
    }

    /// The cgroup's directory for every controller.
    pub(super) fn dirs(&self, path: &CgroupPath) -> Vec<(String, PathBuf)> {
        self.controllers()
            .into_iter()
            .map(|(c, m)| (c.to_string(), path.under(m)))
            .collect()
    }

    /// The plan for `resources` on `host`, device rules checked too (the same
    /// checks as for the cgroup2 program, so no layout accepts what another
    /// refuses); touches nothing.
    pub(super) fn plan(
        &self,
        resources: &LinuxResources,
        host: &Host,
    ) -> Result<Plan, CgroupError> {
        if let Some(rules) = resources.devices().as_deref() {
            devices::parse(rules).map_err(|source| CgroupError::DeviceRule {
                path: String::new(),
                source,
            })?;
            if !rules.is_empty() && self.mount_of("devices").is_none() {
                return Err(CgroupError::Refused {
                    field: "linux.resources.devices".into(),
                    reason: host.missing("devices"),
                });
            }
        }
        res::plan(resources, host)
    }

    /// Creates the directory in every hierarchy.
    pub(super) fn make(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        Self::fs(path).create().map_err(|e| apply_err(path, e))?;
        // Hierarchies cgroups-rs does not know (named ones other than systemd).
        for m in &self.mounts {
            let dir = path.under(&m.mount_point);
            fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        }
        Ok(())
    }

    /// The device rules, through the v1 devices controller.
    pub(super) fn apply_devices(
        &self,
        path: &CgroupPath,
        resources: &LinuxResources,
    ) -> Result<(), CgroupError> {
        if resources.devices().as_ref().is_some_and(|d| !d.is_empty()) {
            Self::fs(path)
                .apply(&v1_devices::to_resources(resources))
                .map_err(|e| apply_err(path, e))?;
        }
        Ok(())
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

fn apply_err(path: &CgroupPath, e: cgroups_rs::fs::error::Error) -> CgroupError {
    CgroupError::Apply {
        path: path.to_string(),
        message: format!(
            "{e}: {}",
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default()
        ),
    }
}

/// Device rules are set when the cgroup is made; a live update refuses them.
pub(super) fn refuse_device_update(resources: &LinuxResources) -> Result<(), CgroupError> {
    if resources.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(CgroupError::Refused {
            field: "linux.resources.devices".into(),
            reason: "device rules are set when the container is created; a live update \
                     cannot change them"
                .into(),
        });
    }
    Ok(())
}

pub(super) fn no_cgroup(path: &CgroupPath) -> CgroupError {
    io_err(
        Path::new(path.as_str()),
        std::io::Error::from(std::io::ErrorKind::NotFound),
    )
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
        let host = self.host(Layout::V1, None);
        let plan = match resources {
            Some(r) => self.plan(r, &host)?,
            None => Plan::default(),
        };
        let made = self.make(path).and_then(|()| {
            let dirs = Dirs {
                v1: self.dirs(path),
                v2: None,
            };
            apply::write_all(&apply::resolve(&plan, &dirs, &host.release)?)?;
            match resources {
                Some(r) => self.apply_devices(path, r),
                None => Ok(()),
            }
        });
        if made.is_err() {
            // Nothing of a refused or failed create is left behind.
            let _ = self.remove(path);
        }
        made
    }

    fn validate(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        self.plan(resources, &self.host(Layout::V1, None)).map(drop)
    }

    fn update(&self, path: &CgroupPath, resources: &LinuxResources) -> Result<(), CgroupError> {
        let host = self.host(Layout::V1, None);
        refuse_device_update(resources)?;
        let plan = self.plan(resources, &host)?;
        if !self.exists(path) {
            return Err(no_cgroup(path));
        }
        let dirs = Dirs {
            v1: self.dirs(path),
            v2: None,
        };
        apply::update(&plan, &dirs, &host.release)
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
