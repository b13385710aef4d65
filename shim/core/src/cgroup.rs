//! Placing the container init in its cgroup, in every mounted hierarchy.
//!
//! The manager creates and configures the cgroup; the shim only joins it (and
//! creates missing directories when run by hand, removing them again at exit).
//! `linux.cgroupsPath` is taken relative to each hierarchy's root.

use common::cgroup_files;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// True for cgroup2.
    pub unified: bool,
}

/// The cgroup hierarchies of a `/proc/self/mountinfo` text (one mount per
/// hierarchy, whole trees only: [`common::mountinfo::cgroup_mounts`]).
pub fn hierarchies_from_mountinfo(text: &str) -> Vec<Hierarchy> {
    common::mountinfo::cgroup_mounts(text)
        .into_iter()
        .map(|m| Hierarchy {
            mount_point: m.mount_point,
            unified: m.unified,
        })
        .collect()
}

pub fn hierarchies() -> io::Result<Vec<Hierarchy>> {
    Ok(hierarchies_from_mountinfo(&fs::read_to_string(
        "/proc/self/mountinfo",
    )?))
}

/// True when the host runs the pure cgroup v2 layout.
pub fn host_is_unified(h: &[Hierarchy]) -> bool {
    h.iter()
        .any(|h| h.unified && h.mount_point == Path::new("/sys/fs/cgroup"))
}

/// A new cgroup v1 cpuset starts with empty `cpuset.cpus` and `cpuset.mems`
/// and refuses tasks (ENOSPC) until they are set: copy them from the parent.
/// Without the cpuset controller (or on cgroup2) there is nothing to do.
/// A new v1 cpuset cgroup starts with empty cpus and mems, in which no task
/// can run: copy the parent's. (On cgroup2 empty means "inherit".)
fn inherit_cpuset(dir: &Path) -> io::Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = dir.join(file);
        let Ok(cur) = fs::read_to_string(&own) else {
            continue;
        };
        if cur.trim().is_empty() {
            let from = fs::read_to_string(parent.join(file))?;
            fs::write(&own, from.trim())
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", own.display())))?;
        }
    }
    Ok(())
}

/// The container's cgroup directory in every hierarchy.
#[derive(Debug, Default)]
pub struct ContainerCgroup {
    pub dirs: Vec<(Hierarchy, PathBuf)>,
    /// Directories the shim created itself (deepest last), removed by [`Self::cleanup`].
    created: Vec<PathBuf>,
}

impl ContainerCgroup {
    /// Resolves (and creates where missing) `path` below every hierarchy.
    pub fn prepare(hierarchies: &[Hierarchy], path: &str) -> io::Result<Self> {
        let rel = path.trim_start_matches('/');
        let mut cg = ContainerCgroup::default();
        if rel.is_empty() {
            return Ok(cg);
        }
        if rel.split('/').any(|c| c == ".." || c == ".") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("linux.cgroupsPath {path:?} must not contain . or .."),
            ));
        }
        for h in hierarchies {
            let dir = h.mount_point.join(rel);
            if let Err(e) = cg.create_all(&h.mount_point, &dir, h.unified) {
                cg.cleanup();
                return Err(io::Error::new(
                    e.kind(),
                    format!("creating cgroup {}: {e}", dir.display()),
                ));
            }
            cg.dirs.push((h.clone(), dir));
        }
        Ok(cg)
    }

    fn create_all(&mut self, base: &Path, dir: &Path, unified: bool) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut p = dir;
        while !p.exists() && p != base {
            missing.push(p.to_path_buf());
            p = match p.parent() {
                Some(parent) => parent,
                None => break,
            };
        }
        for d in missing.into_iter().rev() {
            fs::create_dir(&d)?;
            self.created.push(d.clone());
            if !unified {
                inherit_cpuset(&d)?;
            }
        }
        Ok(())
    }

    /// The directories, and which of them the shim created, as the monitor
    /// executable receives them.
    pub fn from_parts(dirs: Vec<(Hierarchy, PathBuf)>, created: Vec<PathBuf>) -> Self {
        ContainerCgroup { dirs, created }
    }

    /// The directories this shim created (deepest last).
    pub fn created(&self) -> &[PathBuf] {
        &self.created
    }

    /// The cgroup2 directory, if any (for CLONE_INTO_CGROUP).
    pub fn unified_dir(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(h, _)| h.unified)
            .map(|(_, d)| d.as_path())
    }

    /// Moves `pid` into every hierarchy's directory (skipping cgroup2 when the
    /// process was born there).
    pub fn join(&self, pid: i32, skip_unified: bool) -> io::Result<()> {
        for (h, dir) in &self.dirs {
            if skip_unified && h.unified {
                continue;
            }
            let procs = dir.join("cgroup.procs");
            fs::write(&procs, pid.to_string())
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", procs.display())))?;
        }
        Ok(())
    }

    /// Number of OOM kills recorded in the container's cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        let mut total = 0;
        for (h, dir) in &self.dirs {
            let file = cgroup_files::oom_counter_file(h.unified);
            if let Ok(text) = fs::read_to_string(dir.join(file)) {
                total += cgroup_files::oom_kills(&text).unwrap_or(0);
            }
        }
        total
    }

    /// Removes the directories this shim created (they must be empty by now).
    pub fn cleanup(&mut self) {
        for d in self.created.drain(..).rev() {
            let _ = fs::remove_dir(&d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
27 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
28 25 0:26 / /sys/fs/cgroup/cpu\\040x rw - cgroup cgroup rw,cpu
29 30 0:5 / /proc rw - proc proc rw";

    #[test]
    fn finds_every_hierarchy() {
        let h = hierarchies_from_mountinfo(HYBRID);
        assert_eq!(h.len(), 3);
        assert!(h[0].unified);
        assert_eq!(h[1].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(h[2].mount_point, Path::new("/sys/fs/cgroup/cpu x"));
        assert!(!host_is_unified(&h));
        let v2 = hierarchies_from_mountinfo("26 25 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw");
        assert!(host_is_unified(&v2));
    }

    #[test]
    fn dot_dot_is_refused() {
        let h = vec![Hierarchy {
            mount_point: "/nonexistent".into(),
            unified: true,
        }];
        assert!(ContainerCgroup::prepare(&h, "/a/../b").is_err());
    }

    #[test]
    fn creates_and_removes_only_missing_dirs() {
        let base = std::env::temp_dir().join(format!("zctr-cg-unit-{}", std::process::id()));
        fs::create_dir_all(base.join("a")).unwrap();
        let h = vec![Hierarchy {
            mount_point: base.clone(),
            unified: true,
        }];
        let mut cg = ContainerCgroup::prepare(&h, "a/b/c").unwrap();
        assert!(base.join("a/b/c").is_dir());
        assert_eq!(cg.unified_dir(), Some(base.join("a/b/c").as_path()));
        cg.cleanup();
        assert!(!base.join("a/b").exists());
        assert!(base.join("a").exists());
        fs::remove_dir_all(&base).unwrap();
    }
}
