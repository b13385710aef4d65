//! The running container as `spawn` finds it: its init alive and not
//! paused, the namespaces of the init that differ from the caller's, the
//! cgroups the init is in.

use super::ExecError;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The namespace kinds, in the order the helper joins them: every one but
/// user first (as host root, with every capability over them), user last.
/// Each with the caller's file it is compared with: the pid and time
/// namespaces the caller's children would get.
const KINDS: [(&str, &str, libc::c_int); 8] = [
    ("cgroup", "cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", "ipc", libc::CLONE_NEWIPC),
    ("uts", "uts", libc::CLONE_NEWUTS),
    ("net", "net", libc::CLONE_NEWNET),
    ("pid", "pid_for_children", libc::CLONE_NEWPID),
    ("time", "time_for_children", libc::CLONE_NEWTIME),
    ("mnt", "mnt", libc::CLONE_NEWNS),
    ("user", "user", libc::CLONE_NEWUSER),
];

/// The init's namespaces that differ from the caller's thread's, open.
pub struct Namespaces {
    /// All but user, in joining order.
    pub join: Vec<(OwnedFd, libc::c_int)>,
    pub user: Option<OwnedFd>,
}

fn io_err(step: &str, what: &str, e: &std::io::Error) -> ExecError {
    ExecError::new(step, e.raw_os_error().unwrap_or(0), format!("{what}: {e}"))
}

/// Opens `/proc/<pid>/ns/*` where it names another namespace than the
/// calling thread's (compared by device and inode of the open file).
pub fn namespaces(pid: i32) -> Result<Namespaces, ExecError> {
    let mut ns = Namespaces {
        join: Vec::new(),
        user: None,
    };
    for (theirs, ours, flag) in KINDS {
        let ours = match fs::metadata(format!("/proc/thread-self/ns/{ours}")) {
            Ok(m) => m,
            // A kernel without this namespace kind (time before 5.6).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(io_err("namespaces", ours, &e)),
        };
        let path = format!("/proc/{pid}/ns/{theirs}");
        let file = fs::File::open(&path).map_err(|e| io_err("namespaces", &path, &e))?;
        let m = file
            .metadata()
            .map_err(|e| io_err("namespaces", &path, &e))?;
        if (m.dev(), m.ino()) == (ours.dev(), ours.ino()) {
            continue;
        }
        if flag == libc::CLONE_NEWUSER {
            ns.user = Some(file.into());
        } else {
            ns.join.push((file.into(), flag));
        }
    }
    Ok(ns)
}

/// `cgroup.procs` of every cgroup `pid` is in, one per mounted hierarchy
/// (from `/proc/<pid>/cgroup` and this process's mountinfo). Hierarchies
/// not mounted here are left out.
pub fn cgroup_procs_of(pid: i32) -> std::io::Result<Vec<PathBuf>> {
    let lines = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let mounts = common::mountinfo::cgroup_mounts(&fs::read_to_string("/proc/self/mountinfo")?);
    Ok(procs_files(&lines, &mounts))
}

/// [`cgroup_procs_of`] on given texts.
pub(super) fn procs_files(lines: &str, mounts: &[common::mountinfo::CgroupMount]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in lines.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let mount = if ctrls.is_empty() {
            mounts.iter().find(|m| m.unified)
        } else {
            let first = ctrls.split(',').next().unwrap_or_default();
            mounts
                .iter()
                .find(|m| !m.unified && m.controllers.iter().any(|c| c == first))
        };
        if let Some(m) = mount {
            let dir = m.mount_point.join(path.trim_start_matches('/'));
            out.push(dir.join("cgroup.procs"));
        }
    }
    out
}

/// Refuses an init that is gone, a zombie, or (with `start_time`) another
/// process that got its pid.
pub fn check_alive(pid: i32, start_time: Option<u64>) -> Result<(), ExecError> {
    let gone = |why: &str| {
        ExecError::new(
            "container state",
            libc::ESRCH,
            format!("the container's init (pid {pid}) {why}: the container is stopped"),
        )
    };
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|_| gone("is gone"))?;
    let stat = common::state::parse_proc_stat(&stat).ok_or_else(|| gone("is unreadable"))?;
    if matches!(stat.state, 'Z' | 'X') {
        return Err(gone("has exited"));
    }
    if start_time.is_some_and(|t| t != stat.start_time) {
        return Err(gone("is gone (its pid belongs to another process now)"));
    }
    Ok(())
}

/// Refuses a paused container: a cgroup whose v1 `freezer.state` is not
/// THAWED or whose v2 `cgroup.freeze` is 1 (a process joining it would
/// freeze before it could exec).
pub fn check_not_frozen(procs: &[PathBuf]) -> Result<(), ExecError> {
    for dir in procs.iter().filter_map(|p| p.parent()) {
        if let Some(state) = read_trimmed(&dir.join("freezer.state")) {
            if state != "THAWED" {
                return Err(paused(dir, "freezer.state", &state));
            }
        }
        if let Some(freeze) = read_trimmed(&dir.join("cgroup.freeze")) {
            if freeze != "0" {
                return Err(paused(dir, "cgroup.freeze", &freeze));
            }
        }
        // cgroup v2: frozen through an ancestor (its own cgroup.freeze is 0).
        if let Some(events) = read_trimmed(&dir.join("cgroup.events")) {
            if events.lines().any(|l| l.trim() == "frozen 1") {
                return Err(paused(dir, "cgroup.events", "frozen 1"));
            }
        }
    }
    Ok(())
}

fn read_trimmed(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn paused(dir: &Path, file: &str, value: &str) -> ExecError {
    ExecError::new(
        "container state",
        libc::EBUSY,
        format!(
            "the container is paused ({}/{file}: {value}): resume it first",
            dir.display()
        ),
    )
}

/// Opens each `cgroup.procs` for writing.
pub fn open_procs(procs: &[PathBuf]) -> Result<Vec<OwnedFd>, ExecError> {
    procs
        .iter()
        .map(|p| {
            fs::OpenOptions::new()
                .write(true)
                .open(p)
                .map(OwnedFd::from)
                .map_err(|e| io_err("join cgroup", &p.display().to_string(), &e))
        })
        .collect()
}

/// `/proc/<pid>/root`, O_PATH: the init's root directory.
pub fn open_root(pid: i32) -> Result<OwnedFd, ExecError> {
    let path = format!("/proc/{pid}/root");
    let c = std::ffi::CString::new(path.clone()).expect("no NUL");
    crate::setup::sys::openat_owned(
        libc::AT_FDCWD,
        &c,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .map_err(|e| {
        ExecError::new(
            "open the container's root",
            e as i32,
            format!("{path}: {}", e.desc()),
        )
    })
}

/// Raw numbers of owned fds, for the child's context.
pub fn raw(fds: &[OwnedFd]) -> Vec<std::os::fd::RawFd> {
    fds.iter().map(AsRawFd::as_raw_fd).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_lines_map_to_the_mounted_hierarchies() {
        let mounts = common::mountinfo::cgroup_mounts(
            "30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
             31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        let files = procs_files(
            "4:memory:/a/b\n2:cpu,cpuacct:/a/b\n1:name=systemd:/x\n0::/a/b\n",
            &mounts,
        );
        assert_eq!(
            files,
            [
                "/sys/fs/cgroup/memory/a/b/cgroup.procs",
                "/sys/fs/cgroup/cpu,cpuacct/a/b/cgroup.procs",
                "/sys/fs/cgroup/unified/a/b/cgroup.procs",
            ]
            .map(PathBuf::from)
        );
    }

    #[test]
    fn a_dead_or_replaced_init_is_refused() {
        let me = std::process::id() as i32;
        check_alive(me, None).unwrap();
        let e = check_alive(me, Some(1)).unwrap_err();
        assert!(e.to_string().contains("another process"), "{e}");
        let e = check_alive(i32::MAX, None).unwrap_err();
        assert_eq!(e.errno, libc::ESRCH);
    }

    #[test]
    fn the_callers_own_namespaces_are_not_joined() {
        let ns = namespaces(std::process::id() as i32).unwrap();
        assert!(ns.join.is_empty() && ns.user.is_none());
    }
}
