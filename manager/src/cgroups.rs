//! The containers' control groups, behind one trait so that the differences
//! between cgroup v1, v2 and the hybrid layout (v1 controllers plus a cgroup2
//! mount without controllers) stay in this file.
//!
//! Limits are applied with `cgroups-rs` (its `Resources` + `apply`); creation,
//! freezing with a wait for the frozen state, recursive process listing, OOM
//! counters, killing and removal use the cgroup files directly because
//! `cgroups-rs` either lacks them or only knows `/sys/fs/cgroup` as the cgroup2
//! root.

use cgroups_rs::fs::devices::{DevicePermissions, DeviceType};
use cgroups_rs::fs::{hierarchies, Cgroup as CgFs, DeviceResource, MaxValue, Resources};
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
    #[error("cgroup limits for {path} could not be applied: {message}")]
    Apply { path: String, message: String },
    #[error("cgroup {path} did not reach the {state} state in time")]
    Timeout { path: String, state: &'static str },
    #[error("no freezer for cgroup {path}")]
    NoFreezer { path: String },
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
    /// Creates the cgroup in every hierarchy and applies `resources`.
    fn create(
        &self,
        path: &CgroupPath,
        resources: Option<&LinuxResources>,
    ) -> Result<(), CgroupError>;
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

/// Looks at the mounted hierarchies and picks the matching implementation.
pub fn detect() -> Result<Box<dyn Cgroups>, CgroupError> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| io_err(Path::new("/proc/self/mountinfo"), e))?;
    let (v1, v2) = parse_mountinfo(&text);
    Ok(match (v1.is_empty(), v2) {
        (true, Some(root)) => Box::new(V2::new(root)),
        (false, None) => Box::new(V1 { mounts: v1 }),
        (false, Some(root)) => Box::new(Hybrid {
            v1: V1 { mounts: v1 },
            v2: V2::new(root),
        }),
        (true, None) => return Err(CgroupError::NoHierarchy),
    })
}

/// The cgroup v1 mounts (with their controllers) and the cgroup2 mount of a
/// mountinfo text. (`cgroups-rs` only reports v1 mounts, so this is ours.)
fn parse_mountinfo(text: &str) -> (Vec<V1Mount>, Option<PathBuf>) {
    let mut v1 = Vec::new();
    let mut v2 = None;
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let (Some(point), mut r) = (left.split(' ').nth(4), right.split(' ')) else {
            continue;
        };
        let (fstype, _source, opts) = (r.next(), r.next(), r.next().unwrap_or(""));
        match fstype {
            Some("cgroup") => v1.push(V1Mount {
                point: PathBuf::from(point),
                controllers: opts
                    .split(',')
                    .filter(|o| *o != "rw" && *o != "ro")
                    .map(str::to_string)
                    .collect(),
            }),
            Some("cgroup2") if v2.is_none() => v2 = Some(PathBuf::from(point)),
            _ => {}
        }
    }
    (v1, v2)
}

/// Converts the spec's resources to `cgroups-rs` terms, for v1 or v2 files.
pub fn to_resources(r: &LinuxResources, v2: bool, memsw: bool) -> Resources {
    let mut res = Resources::default();
    if let Some(m) = r.memory() {
        res.memory.memory_hard_limit = m.limit();
        res.memory.memory_soft_limit = m.reservation();
        match (m.swap(), m.limit()) {
            // OCI's swap is memory+swap (the v1 meaning); v2 wants swap alone.
            (Some(swap), Some(limit)) if v2 && swap >= 0 && limit >= 0 => {
                res.memory.memory_swap_limit = Some(swap.saturating_sub(limit).max(0));
            }
            (Some(swap), _) if !v2 && memsw => res.memory.memory_swap_limit = Some(swap),
            _ => {}
        }
    }
    if let Some(p) = r.pids() {
        res.pid.maximum_number_of_processes = Some(if p.limit() > 0 {
            MaxValue::Value(p.limit())
        } else {
            MaxValue::Max
        });
    }
    if let Some(c) = r.cpu() {
        res.cpu.shares = c.shares().map(|s| if v2 { shares_to_weight(s) } else { s });
        res.cpu.quota = c.quota();
        res.cpu.period = c.period();
    }
    if !v2 {
        for d in r.devices().iter().flatten() {
            let devtype = match d.typ().map(|t| t.as_str().to_string()).as_deref() {
                Some("c") => DeviceType::Char,
                Some("b") => DeviceType::Block,
                _ => DeviceType::All,
            };
            let access = d
                .access()
                .as_deref()
                .unwrap_or("rwm")
                .chars()
                .filter_map(|c| match c {
                    'r' => Some(DevicePermissions::Read),
                    'w' => Some(DevicePermissions::Write),
                    'm' => Some(DevicePermissions::MkNod),
                    _ => None,
                })
                .collect();
            res.devices.devices.push(DeviceResource {
                allow: d.allow(),
                devtype,
                major: d.major().unwrap_or(-1),
                minor: d.minor().unwrap_or(-1),
                access,
            });
        }
    }
    res
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), the conversion runc uses.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// Reads `key N` from a flat-keyed cgroup file such as `memory.events`.
pub fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok())?
    })
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

/// Removes `dir` and its sub-cgroups, deepest first, retrying while the kernel
/// still reports it busy (processes that just died are released lazily).
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(io_err(dir, e)),
        }
    }
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

/// SIGKILL to every listed process, frozen first so nothing forks between
/// listing and killing (for hierarchies without `cgroup.kill`).
fn kill_listed<C: Cgroups + ?Sized>(cg: &C, path: &CgroupPath) -> Result<(), CgroupError> {
    let frozen = cg.freeze(path).is_ok();
    kill_pids(&cg.pids(path)?);
    if frozen {
        cg.thaw(path)?;
    }
    Ok(())
}

/// Waits until the cgroup has no process left, killing stragglers meanwhile.
fn wait_empty<C: Cgroups + ?Sized>(cg: &C, path: &CgroupPath) -> Result<(), CgroupError> {
    wait_until(path, "empty", || {
        let pids = cg.pids(path).unwrap_or_default();
        kill_pids(&pids);
        pids.is_empty()
    })
}

#[derive(Debug, Clone)]
struct V1Mount {
    point: PathBuf,
    controllers: Vec<String>,
}

/// cgroup v1: one hierarchy per controller (or group of controllers).
#[derive(Debug)]
pub struct V1 {
    mounts: Vec<V1Mount>,
}

impl V1 {
    fn mount_of(&self, controller: &str) -> Option<&Path> {
        self.mounts
            .iter()
            .find(|m| m.controllers.iter().any(|c| c == controller))
            .map(|m| m.point.as_path())
    }

    fn fs(path: &CgroupPath) -> CgFs {
        CgFs::load(Box::new(hierarchies::V1::new()), path.as_str())
    }

    fn procs_root(&self, path: &CgroupPath) -> PathBuf {
        let mount = self
            .mount_of("freezer")
            .or_else(|| self.mount_of("pids"))
            .or_else(|| self.mount_of("memory"))
            .unwrap_or_else(|| self.mounts[0].point.as_path());
        path.under(mount)
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
            let dir = path.under(&m.point);
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

    fn procs_files(&self, path: &CgroupPath) -> Vec<PathBuf> {
        self.mounts
            .iter()
            .map(|m| path.under(&m.point).join("cgroup.procs"))
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
            .and_then(|m| fs::read_to_string(path.under(m).join("memory.oom_control")).ok())
            .and_then(|s| keyed_value(&s, "oom_kill"))
            .unwrap_or(0)
    }

    fn kill_all(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        if !self.exists(path) {
            return Ok(());
        }
        kill_listed(self, path)?;
        wait_empty(self, path)
    }

    fn remove(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        for m in &self.mounts {
            remove_tree(&path.under(&m.point))?;
        }
        Ok(())
    }

    fn exists(&self, path: &CgroupPath) -> bool {
        self.mounts.iter().any(|m| path.under(&m.point).is_dir())
    }
}

/// cgroup v2: one unified hierarchy. Limits need the controllers, which only
/// a pure-v2 host (`/sys/fs/cgroup` is cgroup2) has.
#[derive(Debug)]
pub struct V2 {
    root: PathBuf,
    controllers: bool,
}

impl V2 {
    fn new(root: PathBuf) -> Self {
        let controllers = root == Path::new(hierarchies::UNIFIED_MOUNTPOINT)
            && hierarchies::is_cgroup2_unified_mode();
        Self { root, controllers }
    }

    fn dir(&self, path: &CgroupPath) -> PathBuf {
        path.under(&self.root)
    }

    /// Enables the controllers the limits need in every ancestor's subtree_control.
    fn enable_controllers(&self, path: &CgroupPath) {
        let mut dir = self.root.clone();
        let comps: Vec<&str> = path.as_str().split('/').collect();
        for comp in &comps {
            let available = fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            let wanted: Vec<String> = available
                .split_whitespace()
                .filter(|c| matches!(*c, "cpu" | "memory" | "pids" | "cpuset" | "io"))
                .map(|c| format!("+{c}"))
                .collect();
            if !wanted.is_empty() {
                // Best effort: a parent holding processes refuses (EBUSY); the
                // limit files then do not exist and applying reports it.
                let _ = fs::write(dir.join("cgroup.subtree_control"), wanted.join(" "));
            }
            dir.push(comp);
        }
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
        if self.controllers {
            self.enable_controllers(path);
        }
        let dir = self.dir(path);
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        if let (Some(r), true) = (resources, self.controllers) {
            let cg = CgFs::load(Box::new(hierarchies::V2::new()), path.as_str());
            cg.apply(&to_resources(r, true, false))
                .map_err(|e| CgroupError::Apply {
                    path: path.to_string(),
                    message: format!(
                        "{e}: {}",
                        std::error::Error::source(&e)
                            .map(|s| s.to_string())
                            .unwrap_or_default()
                    ),
                })?;
        }
        Ok(())
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
        fs::read_to_string(self.dir(path).join("memory.events"))
            .ok()
            .and_then(|s| keyed_value(&s, "oom_kill"))
            .unwrap_or(0)
    }

    fn kill_all(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        let dir = self.dir(path);
        if !dir.is_dir() {
            return Ok(());
        }
        let kill_file = dir.join("cgroup.kill");
        if kill_file.exists() {
            write_file(&kill_file, "1")?;
        } else {
            kill_listed(self, path)?;
        }
        wait_empty(self, path)
    }

    fn remove(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        remove_tree(&self.dir(path))
    }

    fn exists(&self, path: &CgroupPath) -> bool {
        self.dir(path).is_dir()
    }
}

/// The hybrid layout: v1 controllers do the work (limits, freezer, OOM), the
/// controller-less cgroup2 mount still gets the same cgroup so the container
/// is in one place everywhere (and `cgroup.kill` can end it at once).
#[derive(Debug)]
pub struct Hybrid {
    v1: V1,
    v2: V2,
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
        self.v1.create(path, resources)?;
        self.v2.create(path, None)
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

    fn kill_all(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        self.v2.kill_all(path)?;
        self.v1.kill_all(path)
    }

    fn remove(&self, path: &CgroupPath) -> Result<(), CgroupError> {
        self.v1.remove(path)?;
        self.v2.remove(path)
    }

    fn exists(&self, path: &CgroupPath) -> bool {
        self.v1.exists(path) || self.v2.exists(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
        LinuxPidsBuilder, LinuxResourcesBuilder,
    };

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
    fn mountinfo_gives_v1_controllers_and_the_cgroup2_mount() {
        let text = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";
        let (v1, v2) = parse_mountinfo(text);
        assert_eq!(v1.len(), 3);
        assert_eq!(v1[1].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(v1[2].controllers, vec!["name=systemd"]);
        assert_eq!(v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        let (v1, v2) = parse_mountinfo("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert!(v1.is_empty());
        assert_eq!(v2, Some(PathBuf::from("/sys/fs/cgroup")));
    }

    #[test]
    fn keyed_values_parse() {
        let events = "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(1));
        assert_eq!(keyed_value(events, "oom"), Some(2));
        assert_eq!(keyed_value(events, "nope"), None);
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n";
        assert_eq!(keyed_value(v1, "oom_kill"), Some(4));
    }

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(0), 0);
    }

    #[test]
    fn spec_resources_convert_for_v1_and_v2() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .swap(128 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(50_000)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1)
                    .minor(3)
                    .access("rw")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        let v1 = to_resources(&r, false, true);
        assert_eq!(v1.memory.memory_hard_limit, Some(64 << 20));
        assert_eq!(v1.memory.memory_swap_limit, Some(128 << 20));
        assert_eq!(
            v1.pid.maximum_number_of_processes,
            Some(MaxValue::Value(32))
        );
        assert_eq!(v1.cpu.shares, Some(1024));
        assert_eq!(v1.cpu.quota, Some(50_000));
        assert_eq!(v1.devices.devices.len(), 2);
        assert!(!v1.devices.devices[0].allow);
        assert_eq!(v1.devices.devices[0].major, -1);
        assert_eq!(v1.devices.devices[1].devtype, DeviceType::Char);
        assert_eq!(v1.devices.devices[1].access.len(), 2);
        let v1_no_memsw = to_resources(&r, false, false);
        assert_eq!(v1_no_memsw.memory.memory_swap_limit, None);
        let v2 = to_resources(&r, true, false);
        assert_eq!(v2.memory.memory_swap_limit, Some(64 << 20));
        assert_eq!(v2.cpu.shares, Some(39));
        assert!(v2.devices.devices.is_empty());
    }
}
