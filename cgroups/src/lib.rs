//! The containers' control groups, behind one trait so that the differences
//! between cgroup v1, v2 and the hybrid layout (v1 controllers plus a cgroup2
//! mount without controllers) stay in this module.
//!
//! v1 creation and v1 device rules go through `cgroups-rs`. Limits are written
//! to the cgroup files directly (`resources`: each field converted for the
//! side its controller is on, or refused, and a live update needs the values
//! it replaces), as are freezing with a wait for the frozen state, recursive
//! process listing, OOM counters, killing and removal: `cgroups-rs` either
//! lacks them or only knows `/sys/fs/cgroup` as the cgroup2 root (hugetlb is
//! on the cgroup2 mount of a hybrid host). Device rules on cgroup2 (which has no devices controller) are compiled
//! into an eBPF program (`devices`) and attached with `bpf(2)` (`bpf`).
//!
//! - `v1`, `v2`, `hybrid`: the three implementations of [`Cgroups`].
//! - `resources`: the spec's limits as a plan of cgroup file writes (refusing
//!   what the host cannot apply), and its application (`resources::apply`).
//! - `devices`: device rules to BPF instructions (pure).
//! - `bpf`: the `bpf(2)` wrappers (the only `unsafe` here).

mod bpf;
mod devices;
mod hybrid;
mod resources;
pub mod stats;
mod v1;
mod v2;

#[cfg(test)]
mod kernel_tests;
#[cfg(test)]
mod limits_kernel_tests;

use common::mountinfo::{cgroup_mounts, CgroupMount};
use oci_spec::runtime::LinuxResources;
use serde::Serialize;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("no cgroup hierarchy is mounted")]
    NoHierarchy,
    #[error("cgroup {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "cannot enable the {controller} controller in {}/cgroup.subtree_control: {source} \
         (a cgroup2 cgroup that holds processes cannot pass controllers down: \
         choose a --cgroup-parent whose ancestors hold none)",
        dir.display()
    )]
    Controllers {
        dir: PathBuf,
        controller: String,
        source: io::Error,
    },
    /// A `linux.resources` field this host cannot apply, or an invalid one.
    #[error("{field}: {reason}")]
    Refused { field: String, reason: String },
    #[error("{field}: writing {value:?} to {}: {source}", path.display())]
    Write {
        field: String,
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    /// A live update failed midway; what it had written was written back.
    #[error(
        "{error} (the update was undone{})",
        if restore_errors.is_empty() { String::new() } else {
            format!(", but restoring failed: {}", join_errors(restore_errors))
        }
    )]
    UpdateFailed {
        error: Box<CgroupError>,
        restore_errors: Vec<CgroupError>,
    },
    #[error("cgroup limits for {path} could not be applied: {message}")]
    Apply { path: String, message: String },
    #[error("cgroup {path} did not reach the {state} state in time")]
    Timeout { path: String, state: &'static str },
    #[error("no freezer for cgroup {path}")]
    NoFreezer { path: String },
    /// `source` names the rule (`linux.resources.devices[i]`); `path` is
    /// the cgroup (empty when only validated).
    #[error("{source}")]
    DeviceRule {
        path: String,
        source: devices::DeviceRuleError,
    },
    #[error("cgroup {path}: loading the device program (BPF_PROG_LOAD) failed: {errno}; verifier log: {log}")]
    DeviceProgramLoad {
        path: PathBuf,
        errno: nix::errno::Errno,
        log: String,
    },
    #[error("cgroup {path}: attaching the device program (BPF_PROG_ATTACH) failed: {errno}")]
    DeviceProgramAttach {
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    /// Several steps failed; every one was still tried.
    #[error("{what}: {} errors: {}", errors.len(), join_errors(errors))]
    Several {
        what: &'static str,
        errors: Vec<CgroupError>,
    },
}

impl CgroupError {
    /// Whether the request itself is at fault (a field refused, a bad device
    /// rule), not the host: a client error.
    pub fn is_refusal(&self) -> bool {
        match self {
            CgroupError::Refused { .. } | CgroupError::DeviceRule { .. } => true,
            CgroupError::Several { errors, .. } => errors.iter().all(CgroupError::is_refusal),
            _ => false,
        }
    }
}

fn join_errors(errors: &[CgroupError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `Ok` when `errors` is empty, the error itself when there is one, else
/// [`CgroupError::Several`].
pub(crate) fn all_ok(what: &'static str, mut errors: Vec<CgroupError>) -> Result<(), CgroupError> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(CgroupError::Several { what, errors }),
    }
}

fn io_err(path: &Path, source: io::Error) -> CgroupError {
    CgroupError::Io {
        path: path.into(),
        source,
    }
}

/// A cgroup path relative to the root of every hierarchy, e.g. `zctr/web`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupPath(String);

impl CgroupPath {
    /// Accepts `a/b/c` (a leading or trailing `/` is dropped); rejects empty
    /// paths and `.`/`..` or empty components.
    pub fn new(path: &str) -> Result<Self, CgroupError> {
        let trimmed = path.trim_matches('/');
        let bad = |reason| CgroupError::InvalidPath {
            path: path.to_string(),
            reason,
        };
        if trimmed.is_empty() {
            return Err(bad("empty"));
        }
        for c in trimmed.split('/') {
            if c.is_empty() || c == "." || c == ".." {
                return Err(bad("empty, '.' or '..' component"));
            }
            if c.contains('\0') || c.contains('\n') {
                return Err(bad("NUL or newline"));
            }
        }
        Ok(Self(trimmed.to_string()))
    }

    /// `self/name`, where `name` is a single component.
    pub fn child(&self, name: &str) -> Result<Self, CgroupError> {
        if name.contains('/') {
            return Err(CgroupError::InvalidPath {
                path: name.to_string(),
                reason: "a child name is a single component",
            });
        }
        Self::new(&format!("{}/{}", self.0, name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where this cgroup lives below a hierarchy mounted at `mount`.
    pub fn under(&self, mount: &Path) -> PathBuf {
        mount.join(&self.0)
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    V1,
    V2,
    Hybrid,
}

/// What the manager needs from control groups.
pub trait Cgroups: Send + Sync + fmt::Debug {
    fn layout(&self) -> Layout;
    /// Creates the cgroup in every hierarchy and applies `resources`. A field
    /// this host cannot apply is refused before anything is made (all such
    /// fields in one error); a write the kernel rejects removes the cgroup
    /// again: a failed create leaves none.
    fn create(
        &self,
        path: &CgroupPath,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError>;
    /// Checks `resources` against this host without touching anything: a
    /// field this host cannot apply is refused with an error naming it
    /// (`linux.resources.memory.kernel: ...`). `create` and `update` do the
    /// same checks first.
    fn validate(&self, resources: &LinuxResources) -> Result<(), CgroupError>;
    /// Changes the limits of the existing cgroup `path` live: validated first,
    /// then applied all or none (on a failure midway the values read before
    /// are written back). Only the fields present in `resources` change.
    fn update(&self, path: &CgroupPath, resources: &LinuxResources) -> Result<(), CgroupError>;
    /// The `cgroup.procs` file of this cgroup in every hierarchy (to place a process).
    fn procs_files(&self, path: &CgroupPath) -> Vec<PathBuf>;
    /// Freezes every process in the cgroup and waits until they are frozen.
    fn freeze(&self, path: &CgroupPath) -> Result<(), CgroupError>;
    fn thaw(&self, path: &CgroupPath) -> Result<(), CgroupError>;
    /// Every process in the cgroup and its descendants.
    fn pids(&self, path: &CgroupPath) -> Result<Vec<i32>, CgroupError>;
    /// How many processes the kernel OOM-killed in it (0 when unknown).
    fn oom_kills(&self, path: &CgroupPath) -> u64;
    /// SIGKILLs every process in it and waits until it is empty.
    fn kill_all(&self, path: &CgroupPath) -> Result<(), CgroupError>;
    /// Removes the cgroup (and empty descendants) from every hierarchy; missing is fine.
    fn remove(&self, path: &CgroupPath) -> Result<(), CgroupError>;
    fn exists(&self, path: &CgroupPath) -> bool;
}

/// The caller's own cgroup: the deepest path `/proc/self/cgroup` lists
/// (on a hybrid host the v1 hierarchies may place it at different depths;
/// the deepest is at or below the others when they form one chain).
pub fn own_base(proc_self_cgroup: &str) -> String {
    proc_self_cgroup
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .map(|p| p.trim_matches('/'))
        .max_by_key(|p| {
            if p.is_empty() {
                0
            } else {
                p.split('/').count()
            }
        })
        .unwrap_or("")
        .to_string()
}

/// The devices every runc container may use, appended after the config's
/// own rules as runc does (containerd and podman rely on that): mknod of
/// any node, null, zero, full, tty, random, urandom, the pty slaves, ptmx.
pub fn default_device_rules() -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    let rule = |t, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = oci_spec::runtime::LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(t)
            .access(access.to_string());
        if let Some(m) = major {
            b = b.major(m);
        }
        if let Some(m) = minor {
            b = b.minor(m);
        }
        b.build().expect("all fields set")
    };
    use oci_spec::runtime::LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
    ]
}

/// `r` with [`default_device_rules`] after its own device rules, when it
/// has any (a config without device rules gets none added).
pub fn with_default_devices(r: &LinuxResources) -> LinuxResources {
    let mut r = r.clone();
    if let Some(mut rules) = r.devices().clone().filter(|d| !d.is_empty()) {
        rules.extend(default_device_rules());
        r.set_devices(Some(rules));
    }
    r
}

/// Looks at the mounted hierarchies and picks the matching implementation.
pub fn detect() -> Result<Box<dyn Cgroups>, CgroupError> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| io_err(Path::new("/proc/self/mountinfo"), e))?;
    let (v1, v2) = split_mounts(cgroup_mounts(&text));
    Ok(match (v1.is_empty(), v2) {
        (true, Some(root)) => Box::new(v2::V2::new(root, true)),
        (false, None) => Box::new(v1::V1::new(v1)),
        (false, Some(root)) => Box::new(hybrid::Hybrid::new(
            v1::V1::new(v1),
            v2::V2::new(root, false),
        )),
        (true, None) => return Err(CgroupError::NoHierarchy),
    })
}

/// The v1 hierarchies, and the cgroup2 mount if there is one.
fn split_mounts(mounts: Vec<CgroupMount>) -> (Vec<CgroupMount>, Option<PathBuf>) {
    let (v2, v1): (Vec<_>, Vec<_>) = mounts.into_iter().partition(|m| m.unified);
    (v1, v2.into_iter().next().map(|m| m.mount_point))
}

fn read_pids_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    match fs::read_to_string(&procs) {
        Ok(s) => out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(&procs, e)),
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                read_pids_recursive(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

/// How long a removal may wait for the kernel to release a cgroup.
const REMOVE_PATIENCE: Duration = Duration::from_secs(5);

/// Removes the cgroup directory `dir` and its sub-cgroups, deepest first,
/// retrying while the kernel still reports one busy (processes that just
/// died are released lazily) until `deadline`. Goes on past every error (a
/// busy sub-cgroup does not keep its siblings) and appends them to `errors`.
/// Only directories are touched: a kernel file at `dir` is left alone.
fn remove_tree(dir: &Path, deadline: Instant, errors: &mut Vec<CgroupError>) {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            errors.push(io_err(dir, io::Error::from_raw_os_error(libc::ENOTDIR)));
            return;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => {
            errors.push(io_err(dir, e));
            return;
        }
    }
    match fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    remove_tree(&e.path(), deadline, errors);
                }
            }
        }
        // Removed meanwhile (the monitor task and `delete` may both clear it).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => errors.push(io_err(dir, e)),
    }
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                errors.push(io_err(dir, e));
                return;
            }
        }
    }
}

/// Removes `path` below every mount in `mounts`, trying each one whatever
/// happened to the others.
fn remove_everywhere<'a>(
    path: &CgroupPath,
    mounts: impl IntoIterator<Item = &'a Path>,
) -> Result<(), CgroupError> {
    let deadline = Instant::now() + REMOVE_PATIENCE;
    let mut errors = Vec::new();
    for m in mounts {
        remove_tree(&path.under(m), deadline, &mut errors);
    }
    all_ok("removing the cgroup", errors)
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|e| io_err(path, e))
}

fn wait_until(
    path: &CgroupPath,
    state: &'static str,
    mut done: impl FnMut() -> bool,
) -> Result<(), CgroupError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        if Instant::now() > deadline {
            return Err(CgroupError::Timeout {
                path: path.to_string(),
                state,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn kill_pids(pids: &[i32]) {
    for &pid in pids {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// SIGKILL to every listed process, then a thaw: a task frozen by `pause`
/// acts on SIGKILL only once it runs again (for hierarchies without
/// `cgroup.kill`). No freeze against forks between listing and killing:
/// [`wait_empty`] kills again whatever appeared until nothing is left, and a
/// freeze here would wait on a concurrent kill's thaw.
fn kill_listed<C: Cgroups + ?Sized>(cg: &C, path: &CgroupPath) -> Result<(), CgroupError> {
    let listed = cg.pids(path);
    if let Ok(pids) = &listed {
        kill_pids(pids);
    }
    let thawed = match cg.thaw(path) {
        Err(CgroupError::NoFreezer { .. }) => Ok(()),
        other => other,
    };
    listed?;
    thawed
}

/// Waits until the cgroup has no process left, killing stragglers meanwhile.
fn wait_empty<C: Cgroups + ?Sized>(cg: &C, path: &CgroupPath) -> Result<(), CgroupError> {
    wait_until(path, "empty", || {
        let pids = cg.pids(path).unwrap_or_default();
        kill_pids(&pids);
        pids.is_empty()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_are_validated_and_joined() {
        let p = CgroupPath::new("/zctr/").unwrap();
        assert_eq!(p.as_str(), "zctr");
        let c = p.child("web").unwrap();
        assert_eq!(c.as_str(), "zctr/web");
        assert_eq!(
            c.under(Path::new("/sys/fs/cgroup/memory")),
            PathBuf::from("/sys/fs/cgroup/memory/zctr/web")
        );
        for bad in ["", "/", "a//b", "a/../b", ".", "a/./b"] {
            assert!(CgroupPath::new(bad).is_err(), "{bad:?}");
        }
        assert!(p.child("a/b").is_err());
        assert!(p.child("..").is_err());
    }

    #[test]
    fn mounts_split_into_v1_hierarchies_and_the_cgroup2_mount() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
";
        let (v1, v2) = split_mounts(cgroup_mounts(text));
        assert_eq!(v1.len(), 2);
        assert_eq!(v1[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let (v1, v2) = split_mounts(cgroup_mounts(
            "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        ));
        assert!(v1.is_empty());
        assert_eq!(v2, Some(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn removal_goes_on_past_errors_and_leaves_files_alone() {
        let t = zctr_tests::TempDir::new("cg-remove").unwrap();
        let root = t.path();
        // a/ holds a file (rmdir fails), its sibling b/ and a/c/ are empty;
        // "cpu.cfs_quota_us" is a file, as a kernel file would be.
        fs::create_dir_all(root.join("x/a/c")).unwrap();
        fs::create_dir_all(root.join("x/b")).unwrap();
        fs::write(root.join("x/a/keep"), "").unwrap();
        fs::write(root.join("cpu.cfs_quota_us"), "-1").unwrap();
        let deadline = Instant::now();
        let mut errors = Vec::new();
        remove_tree(&root.join("x"), deadline, &mut errors);
        assert!(!root.join("x/b").exists() && !root.join("x/a/c").exists());
        assert!(root.join("x/a/keep").exists());
        assert_eq!(errors.len(), 2, "{errors:?}"); // x/a and x: not empty
        let mut errors = Vec::new();
        remove_tree(&root.join("cpu.cfs_quota_us"), deadline, &mut errors);
        assert!(root.join("cpu.cfs_quota_us").is_file());
        assert_eq!(errors.len(), 1);
        // Both mounts are tried; the errors of each are reported together.
        fs::create_dir_all(root.join("m1/p/ctr")).unwrap();
        fs::write(root.join("m1/p/ctr/f"), "").unwrap();
        fs::create_dir_all(root.join("m2/p/ctr")).unwrap();
        let p = CgroupPath::new("p/ctr").unwrap();
        let e = remove_everywhere(&p, [root.join("m1").as_path(), root.join("m2").as_path()])
            .unwrap_err();
        assert!(e.to_string().contains("m1/p/ctr"), "{e}");
        assert!(!root.join("m2/p/ctr").exists());
        assert!(remove_everywhere(&p, [root.join("m2").as_path()]).is_ok());
    }
}
