//! Throw-away cgroups below the test process's own cgroup, in every mounted
//! hierarchy (v1 controllers and cgroup2).
//!
//! The shim puts a container into `<mount>/<cgroupsPath>` of *every* hierarchy,
//! so a test needs one relative path that is valid everywhere. The test process
//! may sit in different cgroups in different v1 hierarchies (e.g. `memory:/a/b`
//! but `cpu:/`); [`TestCgroup`] picks the deepest of those paths as base, which
//! is at or below the process's own cgroup in each hierarchy as long as the
//! paths form one chain, and creates `<base>/zctr-test-<pid>-<n>` everywhere
//! (creating missing intermediate directories, and removing those again).

use crate::error::Context;
use crate::{mountinfo, sys, Error};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);
static STALE_SWEEP: Once = Once::new();

/// How long cleanup keeps killing and retrying rmdir before giving up.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(10);

/// cgroup v1 or v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// One mounted hierarchy the test process is a member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub version: CgroupVersion,
    /// Hierarchy id from /proc/self/cgroup (0 for cgroup2).
    pub id: u32,
    /// v1 controllers (`["cpu","cpuacct"]`, `["name=systemd"]`); empty for cgroup2.
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// The mount's root inside the hierarchy (usually `/`).
    pub mount_root: String,
    /// The test process's own cgroup in this hierarchy (from /proc/self/cgroup).
    pub own_path: String,
}

impl Hierarchy {
    /// Absolute directory of cgroup `rel` (a path relative to the hierarchy root),
    /// or `None` if `rel` is outside this mount.
    pub fn dir_of(&self, rel: &str) -> Option<PathBuf> {
        let root = self.mount_root.trim_end_matches('/');
        let below = rel.strip_prefix(root)?;
        if !(below.is_empty() || below.starts_with('/') || root.is_empty()) {
            return None;
        }
        Some(self.mount_point.join(below.trim_start_matches('/')))
    }

    /// Whether this hierarchy carries v1 controller `name` (or is cgroup2 and `name` is `""`).
    pub fn has(&self, name: &str) -> bool {
        match self.version {
            CgroupVersion::V2 => name.is_empty(),
            CgroupVersion::V1 => self.controllers.iter().any(|c| c == name),
        }
    }
}

/// The hierarchies of this process that are mounted (read from /proc/self/cgroup
/// and /proc/self/mountinfo).
pub fn own_hierarchies() -> Result<Vec<Hierarchy>, Error> {
    let cgroup = fs::read_to_string("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup".into())?;
    let mounts = mountinfo::read_own().ctx(|| "read /proc/self/mountinfo".into())?;
    Ok(hierarchies_from(&cgroup, &mounts))
}

/// [`own_hierarchies`] on given file contents.
pub fn hierarchies_from(cgroup: &str, mounts: &[mountinfo::MountEntry]) -> Vec<Hierarchy> {
    let mut out = Vec::new();
    for line in cgroup.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let Ok(id) = id.parse::<u32>() else { continue };
        let controllers: Vec<String> = ctrls
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .collect();
        let v2 = id == 0 && controllers.is_empty();
        let mount = mounts
            .iter()
            .filter(|m| {
                if v2 {
                    m.fs_type == "cgroup2"
                } else {
                    m.fs_type == "cgroup"
                        && !controllers.is_empty()
                        && controllers.iter().all(|c| m.super_options.contains(c))
                }
            })
            // Prefer a mount whose root contains our cgroup, shortest root first.
            .filter(|m| path.starts_with(m.root.as_str()))
            .min_by_key(|m| m.root.len());
        if let Some(m) = mount {
            out.push(Hierarchy {
                version: if v2 {
                    CgroupVersion::V2
                } else {
                    CgroupVersion::V1
                },
                id,
                controllers,
                mount_point: m.mount_point.clone(),
                mount_root: m.root.clone(),
                own_path: path.to_string(),
            });
        }
    }
    out
}

fn components(p: &str) -> Vec<&str> {
    p.split('/').filter(|c| !c.is_empty()).collect()
}

/// The deepest own path, if every hierarchy's own path is a prefix of it.
pub fn common_base(hs: &[Hierarchy]) -> Result<String, Error> {
    let deepest = hs
        .iter()
        .map(|h| h.own_path.as_str())
        .max_by_key(|p| components(p).len())
        .ok_or(Error::NoCgroups)?;
    let d = components(deepest);
    for h in hs {
        let c = components(&h.own_path);
        if d.get(..c.len()) != Some(&c[..]) {
            return Err(Error::NoCommonCgroupPath {
                own_paths: hs.iter().map(|h| h.own_path.clone()).collect(),
            });
        }
    }
    Ok(format!("/{}", d.join("/")))
}

/// The test cgroup in one hierarchy.
#[derive(Debug, Clone)]
pub struct CgroupDir {
    pub hierarchy: Hierarchy,
    /// Absolute directory, e.g. `/sys/fs/cgroup/memory/process_api/x/zctr-test-12-0`.
    pub path: PathBuf,
}

/// A cgroup `zctr-test-<pid>-<n>` created below the test process's cgroup in
/// every mounted hierarchy, at the same relative path everywhere.
///
/// On drop (also while unwinding from a panic) every process in it or its
/// descendants is killed (v2 `cgroup.kill` when present, else SIGKILL to every
/// pid in `cgroup.procs` until empty, thawing v1 freezers first), then the
/// directories are removed, children first, along with any intermediate
/// directories this helper created. The first `new()` in a process also sweeps
/// away `zctr-test-<pid>-*` groups left by test processes that no longer exist.
#[derive(Debug)]
pub struct TestCgroup {
    name: String,
    relative_path: String,
    dirs: Vec<CgroupDir>,
    /// Intermediate directories this helper created, in creation order.
    created: Vec<PathBuf>,
    removed: bool,
}

impl TestCgroup {
    /// Create a fresh test cgroup in every hierarchy.
    pub fn new() -> Result<TestCgroup, Error> {
        let hs = own_hierarchies()?;
        let base = common_base(&hs)?;
        STALE_SWEEP.call_once(|| sweep_stale(&hs, &base));
        let name = format!(
            "zctr-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let relative_path = format!("{}/{name}", base.trim_end_matches('/'));
        let mut cg = TestCgroup {
            name,
            relative_path,
            dirs: Vec::new(),
            created: Vec::new(),
            removed: false,
        };
        for h in hs {
            let path = h.dir_of(&cg.relative_path).ok_or_else(|| Error::Io {
                context: format!(
                    "{} is outside the mount {}",
                    cg.relative_path,
                    h.mount_point.display()
                ),
                source: io::Error::from_raw_os_error(libc::EXDEV),
            })?;
            cg.create_dir(&h, &path)?;
            cg.dirs.push(CgroupDir { hierarchy: h, path });
        }
        Ok(cg)
    }

    /// mkdir -p `path`, recording what was created; a stale leaf is cleared first.
    fn create_dir(&mut self, h: &Hierarchy, path: &Path) -> Result<(), Error> {
        if path.exists() {
            kill_and_remove(&[(path.to_path_buf(), own_dir(h))], &[])?;
        }
        let mut missing: Vec<&Path> = path
            .ancestors()
            .take_while(|a| *a != h.mount_point && !a.exists())
            .collect();
        missing.reverse();
        for dir in missing {
            match fs::create_dir(dir) {
                Ok(()) => {
                    if dir != path {
                        self.created.push(dir.to_path_buf());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir != path => {}
                Err(e) => return Err(e).ctx(|| format!("mkdir {}", dir.display())),
            }
            if h.has("cpuset") {
                inherit_cpuset(dir)?;
            }
        }
        Ok(())
    }

    /// The cgroup's leaf name, `zctr-test-<pid>-<n>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path relative to each hierarchy's root, the same in all of them,
    /// e.g. `/process_api/xyz/zctr-test-123-0`: what to put in `linux.cgroupsPath`.
    pub fn relative_path(&self) -> &str {
        &self.relative_path
    }

    /// The cgroup's directory in every hierarchy.
    pub fn dirs(&self) -> &[CgroupDir] {
        &self.dirs
    }

    /// Absolute directory in the v1 hierarchy carrying `controller` ("memory", "pids", "freezer", ...).
    pub fn v1_dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.hierarchy.version == CgroupVersion::V1 && d.hierarchy.has(controller))
            .map(|d| d.path.as_path())
    }

    /// Absolute directory in the cgroup2 hierarchy, if mounted.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.hierarchy.version == CgroupVersion::V2)
            .map(|d| d.path.as_path())
    }

    /// On cgroup2, enables `controller` for this cgroup (in its parent's
    /// `cgroup.subtree_control`). False where that is impossible: no cgroup2
    /// hierarchy, the controller is bound to v1, or the parent holds processes.
    pub fn enable_v2(&self, controller: &str) -> bool {
        let Some(dir) = self.v2_dir() else {
            return false;
        };
        let Some(parent) = dir.parent() else {
            return false;
        };
        let _ = fs::write(
            parent.join("cgroup.subtree_control"),
            format!("+{controller}"),
        );
        fs::read_to_string(dir.join("cgroup.controllers"))
            .is_ok_and(|c| c.split_whitespace().any(|c| c == controller))
    }

    /// Directory holding `file` for `controller`: the v1 controller's hierarchy if
    /// mounted, else cgroup2 (e.g. `("memory", ...)` → memory.limit_in_bytes lives there).
    pub fn dir_for(&self, controller: &str) -> Option<&Path> {
        self.v1_dir(controller).or_else(|| self.v2_dir())
    }

    /// Read `<dir>/<file>` trimmed, from the hierarchy `dir_for(controller)`.
    pub fn read(&self, controller: &str, file: &str) -> Result<String, Error> {
        let dir = self.dir_for(controller).ok_or(Error::NoCgroups)?;
        let p = dir.join(file);
        fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .ctx(|| format!("read {}", p.display()))
    }

    /// Write `value` to `<dir>/<file>` in the hierarchy `dir_for(controller)`.
    pub fn write(&self, controller: &str, file: &str, value: &str) -> Result<(), Error> {
        let dir = self.dir_for(controller).ok_or(Error::NoCgroups)?;
        let p = dir.join(file);
        fs::write(&p, value).ctx(|| format!("write {value:?} to {}", p.display()))
    }

    /// Move process `pid` into this cgroup in every hierarchy.
    pub fn add_pid(&self, pid: u32) -> Result<(), Error> {
        for d in &self.dirs {
            let p = d.path.join("cgroup.procs");
            fs::write(&p, pid.to_string()).ctx(|| format!("add {pid} to {}", p.display()))?;
        }
        Ok(())
    }

    /// Spawn `cmd` so the child joins this cgroup (every hierarchy) before exec.
    pub fn spawn(&self, cmd: &mut Command) -> Result<Child, Error> {
        let files: Vec<PathBuf> = self
            .dirs
            .iter()
            .map(|d| d.path.join("cgroup.procs"))
            .collect();
        let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        sys::join_cgroups_before_exec(cmd, &refs).ctx(|| "prepare cgroup join".into())?;
        cmd.spawn()
            .ctx(|| format!("spawn {cmd:?} in {}", self.relative_path))
    }

    /// All pids in the cgroup or its descendants, over all hierarchies (sorted, unique).
    pub fn pids(&self) -> Vec<u32> {
        let mut set = BTreeSet::new();
        for d in &self.dirs {
            for dir in subtree(&d.path) {
                set.extend(read_pids(&dir));
            }
        }
        set.into_iter().collect()
    }

    /// Kill everything and remove all directories now, reporting failures.
    pub fn remove(mut self) -> Result<(), Error> {
        self.removed = true;
        self.cleanup()
    }

    fn cleanup(&self) -> Result<(), Error> {
        let leaves: Vec<(PathBuf, PathBuf)> = self
            .dirs
            .iter()
            .map(|d| (d.path.clone(), own_dir(&d.hierarchy)))
            .collect();
        kill_and_remove(&leaves, &self.created)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        if let Err(e) = self.cleanup() {
            eprintln!(
                "zctr-tests: cgroup {} not fully removed: {e}",
                self.relative_path
            );
        }
    }
}

/// The test process's own cgroup directory in `h`.
fn own_dir(h: &Hierarchy) -> PathBuf {
    h.dir_of(&h.own_path)
        .unwrap_or_else(|| h.mount_point.clone())
}

/// v1 cpuset: a new group starts with empty cpus/mems, which would refuse tasks.
fn inherit_cpuset(dir: &Path) -> Result<(), Error> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let Ok(cur) = fs::read_to_string(&own) else {
            continue;
        };
        if cur.trim().is_empty() {
            let from = fs::read_to_string(parent.join(file)).unwrap_or_default();
            fs::write(&own, from.trim()).ctx(|| format!("write {}", own.display()))?;
        }
    }
    Ok(())
}

/// `dir` and all cgroup directories below it, deepest first.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
        out.push(dir.to_path_buf());
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, &mut out);
    }
    out
}

fn read_pids(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Kill every process below each `(leaf, home)` of `leaves`, then remove the
/// directories (children first), then the `intermediates` (newest first, best
/// effort). The test process itself, if found inside, is moved back to `home`.
fn kill_and_remove(leaves: &[(PathBuf, PathBuf)], intermediates: &[PathBuf]) -> Result<(), Error> {
    let deadline = Instant::now() + CLEANUP_DEADLINE;
    let me = std::process::id();
    loop {
        let mut any = false;
        for (leaf, home) in leaves {
            // v2: one write kills the whole subtree.
            let kill_file = leaf.join("cgroup.kill");
            if kill_file.exists() && !read_pids(leaf).is_empty() {
                let _ = fs::write(&kill_file, "1");
            }
            for dir in subtree(leaf) {
                let state = dir.join("freezer.state");
                if state.exists() {
                    let _ = fs::write(&state, "THAWED");
                }
                for pid in read_pids(&dir) {
                    any = true;
                    if pid == me {
                        // Never kill the test itself: move it back home.
                        let _ = fs::write(home.join("cgroup.procs"), me.to_string());
                        continue;
                    }
                    let _ = sys::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
        if !any {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::Io {
                context: format!("processes still alive in {leaves:?}"),
                source: io::Error::from_raw_os_error(libc::EBUSY),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut first_err = None;
    for (leaf, _) in leaves {
        for dir in subtree(leaf) {
            loop {
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => {
                        first_err.get_or_insert(Error::Io {
                            context: format!("rmdir {}", dir.display()),
                            source: e,
                        });
                        break;
                    }
                }
            }
        }
    }
    for dir in intermediates.iter().rev() {
        // Busy or non-empty: another test's cgroup still lives there.
        let _ = fs::remove_dir(dir);
    }
    first_err.map_or(Ok(()), Err)
}

/// Remove `zctr-test-<pid>-*` groups under `base` whose pid is gone.
fn sweep_stale(hs: &[Hierarchy], base: &str) {
    for h in hs {
        let Some(dir) = h.dir_of(base) else { continue };
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("zctr-test-")
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok());
            if let Some(pid) = pid {
                if pid != std::process::id() as i32 && !sys::pid_exists(pid) {
                    let _ = kill_and_remove(&[(e.path(), own_dir(h))], &[]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CGROUP: &str = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n\
        4:memory:/process_api/ddc7\n3:cpuset:/\n1:cpu,cpuacct:/\n0::/\n";
    const MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_hierarchies_and_common_base() {
        let hs = hierarchies_from(CGROUP, &mountinfo::parse(MOUNTS));
        // cpuset is not mounted in this sample, so it is skipped.
        assert_eq!(hs.len(), 6);
        let mem = hs.iter().find(|h| h.has("memory")).unwrap();
        assert_eq!(mem.mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(mem.own_path, "/process_api/ddc7");
        let cpu = hs.iter().find(|h| h.has("cpuacct")).unwrap();
        assert_eq!(cpu.controllers, vec!["cpu", "cpuacct"]);
        let v2 = hs.iter().find(|h| h.version == CgroupVersion::V2).unwrap();
        assert_eq!(v2.mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert!(hs.iter().any(|h| h.has("name=systemd")));
        assert_eq!(common_base(&hs).unwrap(), "/process_api/ddc7");
        assert_eq!(
            mem.dir_of("/process_api/ddc7/x"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/ddc7/x"))
        );
    }

    #[test]
    fn rejects_diverging_paths() {
        let hs = hierarchies_from("4:memory:/a/b\n8:pids:/c\n", &mountinfo::parse(MOUNTS));
        assert!(matches!(
            common_base(&hs),
            Err(Error::NoCommonCgroupPath { .. })
        ));
        let hs = hierarchies_from("4:memory:/a/b\n8:pids:/a\n", &mountinfo::parse(MOUNTS));
        assert_eq!(common_base(&hs).unwrap(), "/a/b");
        assert!(matches!(common_base(&[]), Err(Error::NoCgroups)));
    }

    #[test]
    fn dir_of_respects_mount_root() {
        let h = Hierarchy {
            version: CgroupVersion::V2,
            id: 0,
            controllers: vec![],
            mount_point: PathBuf::from("/sys/fs/cgroup"),
            mount_root: "/ctr".into(),
            own_path: "/ctr".into(),
        };
        assert_eq!(h.dir_of("/ctr/x"), Some(PathBuf::from("/sys/fs/cgroup/x")));
        assert_eq!(h.dir_of("/ctr"), Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(h.dir_of("/ctrl/x"), None);
        assert_eq!(h.dir_of("/other"), None);
    }
}
