//! cgroup v2: one unified hierarchy. Limits need the controllers, which only
//! a pure-v2 host (`/sys/fs/cgroup` is cgroup2) has; device rules need none:
//! they become a BPF program attached to the cgroup's directory.

use super::devices::{self, Insn};
use super::resources::apply::{self, Dirs};
use super::resources::{self as res, Host, Plan};
use super::v1::{no_cgroup, refuse_device_update};
use super::{
    bpf, io_err, kill_listed, read_pids_recursive, remove_everywhere, wait_empty, wait_until,
    write_file, CgroupError, CgroupPath, Cgroups, Layout,
};
use common::cgroup_files::{keyed_value, oom_counter_file, oom_kills};
use oci_spec::runtime::LinuxResources;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct V2 {
    root: PathBuf,
    /// The host's only hierarchy (not the controller-less side of a hybrid
    /// host): the usual controllers are enabled down to every container.
    pure: bool,
}

/// The device program for `resources`, or `None` when it has no device
/// rules (nothing is restricted then, as on v1 where nothing is written).
pub(super) fn device_program(
    path: &CgroupPath,
    resources: Option<&LinuxResources>,
) -> Result<Option<Vec<Insn>>, CgroupError> {
    match resources.and_then(|r| r.devices().as_deref()) {
        None | Some([]) => Ok(None),
        Some(rules) => {
            devices::compile(rules)
                .map(Some)
                .map_err(|source| CgroupError::DeviceRule {
                    path: path.to_string(),
                    source,
                })
        }
    }
}

/// Loads `program` and attaches it to the cgroup2 directory `dir`.
pub(super) fn attach_device_program(dir: &Path, program: &[Insn]) -> Result<(), CgroupError> {
    let cgroup = fs::File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| io_err(dir, e))?;
    let prog = bpf::load_device_program(program).map_err(|f| CgroupError::DeviceProgramLoad {
        path: dir.into(),
        errno: f.errno,
        log: f.log,
    })?;
    bpf::attach_device_program(cgroup.as_fd(), prog.as_fd()).map_err(|errno| {
        CgroupError::DeviceProgramAttach {
            path: dir.into(),
            errno,
        }
    })
}

impl V2 {
    pub(super) fn new(root: PathBuf, pure: bool) -> Self {
        Self { root, pure }
    }

    fn dir(&self, path: &CgroupPath) -> PathBuf {
        path.under(&self.root)
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// The cgroup2 directory for the plan's writes.
    pub(super) fn dirs(&self, path: &CgroupPath) -> Option<PathBuf> {
        Some(self.dir(path))
    }

    fn host(&self) -> Host {
        Host::probe(Layout::V2, &[], Some(&self.root))
    }

    /// Enables the controllers in `needed` (the limits' controllers) in every
    /// level above the container's cgroup; they must succeed, else their
    /// limit files would not exist: a cgroup holding processes cannot pass
    /// controllers down (EBUSY). A pure cgroup2 host also gets cpu, memory,
    /// pids, cpuset and io where possible.
    fn enable_controllers(&self, path: &CgroupPath, needed: &[String]) -> Result<(), CgroupError> {
        let mut dir = self.root.clone();
        for comp in path.as_str().split('/') {
            let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            let enabled =
                fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            let control = dir.join("cgroup.subtree_control");
            for c in available.split_whitespace() {
                let required = needed.iter().any(|n| n == c);
                let usual = self.pure && matches!(c, "cpu" | "memory" | "pids" | "cpuset" | "io");
                if !(required || usual) || enabled.split_whitespace().any(|e| e == c) {
                    continue;
                }
                match fs::write(&control, format!("+{c}")) {
                    Err(e) if required => {
                        return Err(CgroupError::Controllers {
                            dir: dir.clone(),
                            controller: c.to_string(),
                            source: e,
                        })
                    }
                    _ => {}
                }
            }
            dir.push(comp);
        }
        Ok(())
    }

    /// Creates the directory, the controllers of `plan` enabled on the way.
    pub(super) fn make(&self, path: &CgroupPath, plan: &Plan) -> Result<(), CgroupError> {
        let dir = self.dir(path);
        // The levels above first, so that each can pass controllers down.
        if let Some(parent) = dir.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        self.enable_controllers(path, &plan.v2_controllers)?;
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))
    }

    /// Attaches `program` (the device rules) to the cgroup's directory.
    pub(super) fn attach(
        &self,
        path: &CgroupPath,
        program: Option<&[Insn]>,
    ) -> Result<(), CgroupError> {
        match program {
            Some(p) => attach_device_program(&self.dir(path), p),
            None => Ok(()),
        }
    }

    /// SIGKILL to every process of the cgroup at once through `cgroup.kill`
    /// (5.14+; it also ends tasks of a frozen cgroup2 cgroup, and nothing
    /// forks past it); `None` without that file.
    pub(super) fn send_kill(&self, path: &CgroupPath) -> Option<Result<(), CgroupError>> {
        let kill_file = self.dir(path).join("cgroup.kill");
        kill_file.exists().then(|| write_file(&kill_file, "1"))
    }

    fn frozen(dir: &Path) -> bool {
        fs::read_to_string(dir.join("cgroup.events"))
            .ok()
            .and_then(|s| keyed_value(&s, "frozen"))
            == Some(1)
    }
}

impl Cgroups for V2 {
    fn layout(&self) -> Layout {
        Layout::V2
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
            Some(r) => res::plan(r, &host)?,
            None => Plan::default(),
        };
        // The limits and the program, before any process can be placed there.
        let made = self.make(path, &plan).and_then(|()| {
            let dirs = Dirs {
                v1: Vec::new(),
                v2: self.dirs(path),
            };
            apply::write_all(&apply::resolve(&plan, &dirs, &host.release)?)?;
            self.attach(path, program.as_deref())
        });
        if made.is_err() {
            let _ = self.remove(path);
        }
        made
    }

    fn validate(&self, resources: &LinuxResources) -> Result<(), CgroupError> {
        device_program(&CgroupPath::new("validate")?, Some(resources))?;
        res::plan(resources, &self.host()).map(drop)
    }

    fn update(&self, path: &CgroupPath, resources: &LinuxResources) -> Result<(), CgroupError> {
        refuse_device_update(resources)?;
        let host = self.host();
        let plan = res::plan(resources, &host)?;
        if !self.exists(path) {
            return Err(no_cgroup(path));
        }
        let dirs = Dirs {
            v1: Vec::new(),
            v2: self.dirs(path),
        };
        apply::update(&plan, &dirs, &host.release)
    }

    fn procs_files(&self, path: &CgroupPath) -> Vec<PathBuf> {
        vec![self.dir(path).join("cgroup.procs")]
    }

    fn freeze(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        let dir = self.dir(path);
        write_file(&dir.join("cgroup.freeze"), "1")?;
        let r = wait_until(path, "frozen", || Self::frozen(&dir));
        if r.is_err() {
            let _ = write_file(&dir.join("cgroup.freeze"), "0");
        }
        r
    }

    fn thaw(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        let dir = self.dir(path);
        write_file(&dir.join("cgroup.freeze"), "0")?;
        wait_until(path, "thawed", || !Self::frozen(&dir))
    }

    fn pids(&self, path: &CgroupPath) -> Result<Vec<i32>, CgroupError> {
        let mut out = Vec::new();
        read_pids_recursive(&self.dir(path), &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    fn oom_kills(&self, path: &CgroupPath) -> u64 {
        fs::read_to_string(self.dir(path).join(oom_counter_file(true)))
            .ok()
            .and_then(|s| oom_kills(&s))
            .unwrap_or(0)
    }

    fn kill_all(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        let dir = self.dir(path);
        if !dir.is_dir() {
            return Ok(());
        }
        let signalled = match self.send_kill(path) {
            Some(Ok(())) => Ok(()),
            Some(Err(_)) | None => kill_listed(self, path),
        };
        let emptied = wait_empty(self, path);
        if !self.exists(path) {
            // Removed meanwhile: nothing can be left in it.
            return Ok(());
        }
        super::all_ok(
            "killing the cgroup's processes",
            [signalled.err(), emptied.err()]
                .into_iter()
                .flatten()
                .collect(),
        )
    }

    fn remove(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        remove_everywhere(path, [self.root.as_path()])
    }

    fn exists(&self, path: &CgroupPath) -> bool {
        self.dir(path).is_dir()
    }
}
