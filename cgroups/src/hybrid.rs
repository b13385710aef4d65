//! The hybrid layout: v1 controllers do the work (limits, freezer, OOM, device
//! rules), the controller-less cgroup2 mount still gets the same cgroup so the
//! container is in one place everywhere (and `cgroup.kill` can end it at once).
//! The cgroup2 directory also gets the device rules as a BPF program: the
//! kernel enforces both, and the same rules give the same answer.

use super::resources::apply::{self, Dirs};
use super::resources::{Host, Plan};
use super::v1::{no_cgroup, refuse_device_update, V1};
use super::v2::{device_program, V2};
use super::{all_ok, CgroupError, CgroupPath, Cgroups, Layout};
use oci_spec::runtime::LinuxResources;
use std::path::PathBuf;

#[derive(Debug)]
pub struct Hybrid {
    v1: V1,
    v2: V2,
}

impl Hybrid {
    pub(super) fn new(v1: V1, v2: V2) -> Self {
        Self { v1, v2 }
    }

    /// v1 controllers, and those of the cgroup2 mount (hugetlb on some hosts).
    fn host(&self) -> Host {
        self.v1.host(Layout::Hybrid, Some(self.v2.root()))
    }

    fn dirs(&self, path: &CgroupPath) -> Dirs {
        Dirs {
            v1: self.v1.dirs(path),
            v2: self.v2.dirs(path),
        }
    }
}

impl Cgroups for Hybrid {
    fn layout(&self) -> Layout {
        Layout::Hybrid
    }

    fn create(
        &self,
        path: &CgroupPath,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError> {
        // Everything refused before anything is made.
        let program = device_program(path, resources)?;
        let host = self.host();
        let plan = match resources {
            Some(r) => self.v1.plan(r, &host)?,
            None => Plan::default(),
        };
        let made = self
            .v1
            .make(path)
            .and_then(|()| self.v2.make(path, &plan))
            .and_then(|()| {
                apply::write_all(&apply::resolve(&plan, &self.dirs(path), &host.release)?)?;
                if let Some(r) = resources {
                    self.v1.apply_devices(path, r)?;
                }
                self.v2.attach(path, program.as_deref())
            });
        if made.is_err() {
            let _ = self.remove(path);
        }
        made
    }

    fn validate(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        self.v1.plan(resources, &self.host()).map(drop)
    }

    fn update(&self, path: &CgroupPath, resources: &LinuxResources) -> Result<(), CgroupError> {
        refuse_device_update(resources)?;
        let host = self.host();
        let plan = self.v1.plan(resources, &host)?;
        if !self.exists(path) {
            return Err(no_cgroup(path));
        }
        apply::update(&plan, &self.dirs(path), &host.release)
    }

    fn procs_files(&self, path: &CgroupPath) -> Vec<PathBuf> {
        let mut v = self.v1.procs_files(path);
        v.extend(self.v2.procs_files(path));
        v
    }

    fn freeze(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        if self.v1.mount_of("freezer").is_some() {
            self.v1.freeze(path)
        } else {
            self.v2.freeze(path)
        }
    }

    fn thaw(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        if self.v1.mount_of("freezer").is_some() {
            self.v1.thaw(path)
        } else {
            self.v2.thaw(path)
        }
    }

    fn pids(&self, path: &CgroupPath) -> Result<Vec<i32>, CgroupError> {
        let mut v = self.v1.pids(path)?;
        v.extend(self.v2.pids(path)?);
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    fn oom_kills(&self, path: &CgroupPath) -> u64 {
        self.v1.oom_kills(path)
    }

    /// `cgroup.kill` on the cgroup2 side first (every process at once, no
    /// fork escapes it), then the v1 side, which thaws what `pause` froze in
    /// the v1 freezer (a frozen task acts on SIGKILL only once thawed) and
    /// waits; then the cgroup2 side waits too. Each step runs in any case.
    fn kill_all(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        let sent = self.v2.send_kill(path).and_then(Result::err);
        let errors = [
            sent,
            self.v1.kill_all(path).err(),
            self.v2.kill_all(path).err(),
        ];
        all_ok(
            "killing the cgroup's processes",
            errors.into_iter().flatten().collect(),
        )
    }

    fn remove(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        let errors = [self.v1.remove(path).err(), self.v2.remove(path).err()];
        all_ok(
            "removing the cgroup",
            errors.into_iter().flatten().collect(),
        )
    }

    fn exists(&self, path: &CgroupPath) -> bool {
        self.v1.exists(path) || self.v2.exists(path)
    }
}
