//! `zctr-probe report`: gather what the process sees into one serializable value.

use crate::caps::CapSet;
use crate::cli::Checks;
use crate::errno::Errno;
use crate::parse::{self, IdMapEntry, Mount, Status};
use crate::sys;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Namespaces reported under `namespaces`.
const NAMESPACES: [&str; 8] = ["user", "pid", "mnt", "uts", "ipc", "net", "cgroup", "time"];

/// Limit files looked for in every visible cgroup directory (v1 and v2 names).
const CGROUP_FILES: [&str; 9] = [
    "memory.max",
    "memory.swap.max",
    "pids.max",
    "cpu.max",
    "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes",
    "cpu.cfs_quota_us",
    "cpu.cfs_period_us",
    "cpu.shares",
];

/// Bytes returned by `--read`.
const READ_LIMIT: u64 = 4096;

#[derive(Debug, Serialize)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
    pub saved: u32,
}

impl From<sys::Ids> for Ids {
    fn from(i: sys::Ids) -> Self {
        Ids {
            real: i.real,
            effective: i.effective,
            saved: i.saved,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Caps {
    pub inheritable: Option<CapSet>,
    pub permitted: Option<CapSet>,
    pub effective: Option<CapSet>,
    pub bounding: Option<CapSet>,
    pub ambient: Option<CapSet>,
}

#[derive(Debug, Serialize)]
pub struct Fd {
    pub fd: i32,
    pub target: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Cgroup {
    /// Raw lines of /proc/self/cgroup.
    pub lines: Vec<String>,
    /// Limit file path → trimmed content, for every limit file that exists.
    pub files: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct NetIf {
    pub name: String,
    /// IFF_UP (SIOCGIFFLAGS, else sysfs flags); null if neither worked.
    pub up: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct Rlimit {
    /// null means unlimited.
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct CheckResult {
    pub path: String,
    pub ok: bool,
    pub errno: Option<i32>,
    pub error: Option<String>,
    /// Only for `read` checks: up to 4 KiB, lossily decoded as UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct CheckResults {
    pub open: Vec<CheckResult>,
    pub write: Vec<CheckResult>,
    pub read: Vec<CheckResult>,
}

/// The whole report. Fields that could not be read are null (or empty) and the
/// reason is recorded in `errors` under the field's name.
#[derive(Debug, Serialize)]
pub struct Report {
    pub pid: u32,
    pub ppid: u32,
    pub uid: Ids,
    pub gid: Ids,
    pub groups: Vec<u32>,
    pub uid_map: Option<String>,
    pub gid_map: Option<String>,
    pub uid_map_entries: Vec<IdMapEntry>,
    pub gid_map_entries: Vec<IdMapEntry>,
    pub caps: Caps,
    pub no_new_privs: Option<bool>,
    pub seccomp: Option<i64>,
    pub namespaces: BTreeMap<String, String>,
    pub hostname: Option<String>,
    pub cwd: Option<String>,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub fds: Vec<Fd>,
    pub mounts: Vec<Mount>,
    pub cgroup: Cgroup,
    pub net: Vec<NetIf>,
    pub rlimit_nofile: Option<Rlimit>,
    pub oom_score_adj: Option<i32>,
    pub checks: CheckResults,
    pub errors: BTreeMap<String, String>,
}

struct Errors(BTreeMap<String, String>);

impl Errors {
    fn keep<T>(&mut self, what: &str, r: io::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.insert(what.to_string(), Errno::from(&e).to_string());
                None
            }
        }
    }
}

/// Collect everything. Open fds are listed first, before the probe opens anything else.
pub fn collect(checks: &Checks) -> Report {
    let mut errs = Errors(BTreeMap::new());
    let fds = errs.keep("fds", open_fds()).unwrap_or_default();

    let status = errs
        .keep("status", fs::read_to_string("/proc/self/status"))
        .map(|s| Status::parse(&s))
        .unwrap_or_default();
    let cap = |key: &str| status.get(key).and_then(CapSet::from_hex);
    let caps = Caps {
        inheritable: cap("CapInh"),
        permitted: cap("CapPrm"),
        effective: cap("CapEff"),
        bounding: cap("CapBnd"),
        ambient: cap("CapAmb"),
    };

    let uid_map = errs.keep("uid_map", fs::read_to_string("/proc/self/uid_map"));
    let gid_map = errs.keep("gid_map", fs::read_to_string("/proc/self/gid_map"));

    let namespaces = NAMESPACES
        .iter()
        .filter_map(|ns| {
            let link = fs::read_link(format!("/proc/self/ns/{ns}"));
            errs.keep(&format!("namespaces.{ns}"), link)
                .map(|t| (ns.to_string(), t.to_string_lossy().into_owned()))
        })
        .collect();

    let mounts = errs
        .keep("mounts", fs::read_to_string("/proc/self/mountinfo"))
        .map(|t| parse::mountinfo(&t))
        .unwrap_or_default();
    let cgroup_text = errs
        .keep("cgroup", fs::read_to_string("/proc/self/cgroup"))
        .unwrap_or_default();
    let cgroup = Cgroup {
        lines: cgroup_text.lines().map(str::to_string).collect(),
        files: cgroup_files(&mounts, &parse::cgroup_lines(&cgroup_text)),
    };

    let rlimit_nofile = errs
        .keep("rlimit_nofile", sys::rlimit_nofile())
        .map(|(soft, hard)| Rlimit { soft, hard });
    let oom_score_adj = errs
        .keep(
            "oom_score_adj",
            fs::read_to_string("/proc/self/oom_score_adj"),
        )
        .and_then(|s| s.trim().parse().ok());

    Report {
        pid: std::process::id(),
        ppid: std::os::unix::process::parent_id(),
        uid: sys::uids().into(),
        gid: sys::gids().into(),
        groups: errs.keep("groups", sys::groups()).unwrap_or_default(),
        uid_map_entries: uid_map.as_deref().map(parse::id_map).unwrap_or_default(),
        gid_map_entries: gid_map.as_deref().map(parse::id_map).unwrap_or_default(),
        uid_map,
        gid_map,
        caps,
        no_new_privs: status.number("NoNewPrivs").map(|v| v != 0),
        seccomp: status.number("Seccomp"),
        namespaces,
        hostname: errs.keep("hostname", sys::hostname()),
        cwd: errs
            .keep("cwd", std::env::current_dir())
            .map(|p| p.to_string_lossy().into_owned()),
        args: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        env: std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect(),
        fds,
        mounts,
        cgroup,
        net: errs.keep("net", interfaces()).unwrap_or_default(),
        rlimit_nofile,
        oom_score_adj,
        checks: run_checks(checks),
        errors: errs.0,
    }
}

/// Entries of /proc/self/fd with their targets. The directory's own fd is closed
/// before the targets are read, so its entry fails with ENOENT and is left out.
fn open_fds() -> io::Result<Vec<Fd>> {
    let names: Vec<String> = fs::read_dir("/proc/self/fd")?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut fds: Vec<Fd> = names
        .iter()
        .filter_map(|n| {
            let fd = n.parse().ok()?;
            let target = fs::read_link(format!("/proc/self/fd/{n}")).ok()?;
            Some(Fd {
                fd,
                target: target.to_string_lossy().into_owned(),
            })
        })
        .collect();
    fds.sort_by_key(|f| f.fd);
    Ok(fds)
}

/// Directories to look for limit files in: every cgroup mount point, and the
/// process's own cgroup below it when /proc/self/cgroup shows where that is.
fn cgroup_dirs(mounts: &[Mount], lines: &[parse::CgroupLine]) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/sys/fs/cgroup")];
    for m in mounts {
        let v2 = m.fs_type == "cgroup2";
        if !v2 && m.fs_type != "cgroup" {
            continue;
        }
        let mount_point = PathBuf::from(&m.mount_point);
        dirs.push(mount_point.clone());
        let line = lines.iter().find(|l| {
            if v2 {
                l.hierarchy_id == 0
            } else {
                !l.controllers.is_empty()
                    && l.controllers.iter().all(|c| m.super_options.contains(c))
            }
        });
        if let Some(rel) = line.and_then(|l| l.path.strip_prefix(m.root.as_str())) {
            let rel = rel.trim_start_matches('/');
            if !rel.is_empty() {
                dirs.push(mount_point.join(rel));
            }
        }
    }
    dirs.dedup();
    dirs
}

fn cgroup_files(mounts: &[Mount], lines: &[parse::CgroupLine]) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for dir in cgroup_dirs(mounts, lines) {
        for name in CGROUP_FILES {
            let path = dir.join(name);
            if let Ok(content) = fs::read_to_string(&path) {
                files.insert(
                    path.to_string_lossy().into_owned(),
                    content.trim().to_string(),
                );
            }
        }
    }
    files
}

/// Interfaces of the probe's network namespace: names from /proc/self/net/dev
/// (sysfs shows the namespace of whoever mounted it), the up flag from
/// SIOCGIFFLAGS, else from /sys/class/net/NAME/flags.
fn interfaces() -> io::Result<Vec<NetIf>> {
    let names = match fs::read_to_string("/proc/self/net/dev") {
        Ok(dev) => parse::net_dev_names(&dev),
        Err(e) => match fs::read_dir("/sys/class/net") {
            Ok(dir) => dir
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => return Err(e),
        },
    };
    let mut list: Vec<NetIf> = names
        .into_iter()
        .map(|name| {
            let up = match sys::interface_flags(&name) {
                Ok(flags) => Some(flags & libc::IFF_UP as u32 != 0),
                Err(_) => fs::read_to_string(format!("/sys/class/net/{name}/flags"))
                    .ok()
                    .and_then(|f| parse::iff_up(&f)),
            };
            NetIf { name, up }
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(list)
}

fn check_result(path: &str, r: io::Result<Option<String>>) -> CheckResult {
    match r {
        Ok(content) => CheckResult {
            path: path.to_string(),
            ok: true,
            errno: None,
            error: None,
            content,
        },
        Err(e) => {
            let en = Errno::from(&e);
            CheckResult {
                path: path.to_string(),
                ok: false,
                errno: Some(en.errno),
                error: Some(en.error),
                content: None,
            }
        }
    }
}

fn read_limited(path: &Path) -> io::Result<String> {
    let mut buf = Vec::new();
    fs::File::open(path)?
        .take(READ_LIMIT)
        .read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn append(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)?;
    f.write_all(b"zctr-probe\n")
}

fn run_checks(checks: &Checks) -> CheckResults {
    CheckResults {
        open: checks
            .open
            .iter()
            .map(|p| check_result(p, fs::File::open(p).map(|_| None)))
            .collect(),
        write: checks
            .write
            .iter()
            .map(|p| check_result(p, append(Path::new(p)).map(|()| None)))
            .collect(),
        read: checks
            .read
            .iter()
            .map(|p| check_result(p, read_limited(Path::new(p)).map(Some)))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_dirs_follow_hierarchies() {
        let mounts = parse::mountinfo(
            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
             32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             41 31 0:38 /zctr /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
        );
        let lines = parse::cgroup_lines("4:memory:/a/b\n1:cpu,cpuacct:/\n0::/zctr/c1\n");
        let dirs = cgroup_dirs(&mounts, &lines);
        let s: Vec<_> = dirs.iter().map(|d| d.to_str().unwrap()).collect();
        assert_eq!(
            s,
            vec![
                "/sys/fs/cgroup",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/memory/a/b",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/unified/c1",
            ]
        );
    }

    #[test]
    fn collects_on_host() {
        let checks = Checks {
            open: vec!["/nonexistent/zctr".into()],
            write: vec![],
            read: vec!["/proc/self/comm".into()],
        };
        let r = collect(&checks);
        assert_eq!(r.pid, std::process::id());
        assert!(r.namespaces.contains_key("mnt"));
        assert!(r.mounts.iter().any(|m| m.mount_point == "/"));
        assert_eq!(r.checks.open[0].error.as_deref(), Some("ENOENT"));
        assert!(r.checks.read[0].ok);
        assert!(r.fds.iter().all(|f| !f.target.ends_with("/fd")));
        serde_json::to_string(&r).unwrap();
    }
}
