//! What a cgroup uses, read from its files in every mounted hierarchy: CPU
//! time and throttling, memory (usage, limit, page cache, anonymous memory,
//! OOM kills), pids, block I/O. The same [`Stats`] from v1, v2 and hybrid
//! hosts: each value comes from the first hierarchy that has its file (on a
//! hybrid host the cgroup2 mount has no controllers, so the v1 files answer).
//! A value no hierarchy has is `None`, never a made-up zero.
//!
//! Parsing is pure ([`Files`] is the seam the tests fake).

use crate::CgroupPath;
use common::cgroup_files::{keyed_value, oom_counter_file, oom_kills};
use common::mountinfo::CgroupMount;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub memory: Memory,
    pub pids: Pids,
    pub io: Io,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Cpu {
    /// CPU time used, all CPUs, in nanoseconds.
    pub usage_ns: Option<u64>,
    pub user_ns: Option<u64>,
    pub system_ns: Option<u64>,
    /// Enforcement periods, and those in which the quota ran out.
    pub periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    /// Time spent throttled, in nanoseconds.
    pub throttled_ns: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Bytes in use (page cache included, as the limit counts it).
    pub usage: Option<u64>,
    /// The limit in bytes; `None` when unlimited or unknown.
    pub limit: Option<u64>,
    /// Page cache (v2 `file`, v1 `total_cache`).
    pub cache: Option<u64>,
    /// Anonymous memory (v2 `anon`, v1 `total_rss`).
    pub anon: Option<u64>,
    /// Processes the kernel's OOM killer killed in it.
    pub oom_kills: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Pids {
    pub current: Option<u64>,
    /// `None` when unlimited or unknown.
    pub limit: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Io {
    pub read_bytes: Option<u64>,
    pub write_bytes: Option<u64>,
}

/// Reads a cgroup file (the tests fake it).
pub trait Files {
    fn read(&self, path: &Path) -> Option<String>;
}

/// The real files.
pub struct Fs;

impl Files for Fs {
    fn read(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// The stats of `path` in the hierarchies of `/proc/self/mountinfo`.
pub fn read(path: &CgroupPath) -> Stats {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| common::mountinfo::cgroup_mounts(&t))
        .unwrap_or_default();
    read_in(&Fs, &mounts, path)
}

/// The stats of `path` in `mounts`.
pub fn read_in(files: &dyn Files, mounts: &[CgroupMount], path: &CgroupPath) -> Stats {
    let mut s = Stats::default();
    for m in mounts {
        let dir = path.under(&m.mount_point);
        let f = |name: &str| files.read(&dir.join(name));
        if m.unified {
            v2(&mut s, &f);
        } else {
            v1(&mut s, &f);
        }
        fill(
            &mut s.memory.oom_kills,
            f(oom_counter_file(m.unified)).and_then(|t| oom_kills(&t)),
        );
    }
    s
}

/// Sets `slot` unless an earlier hierarchy did.
fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

fn number(text: Option<String>) -> Option<u64> {
    text?.trim().parse().ok()
}

/// A limit file: a number, or `max` (v2) / a huge number (v1: unlimited is
/// the largest page-aligned value) for none.
fn limit(text: Option<String>) -> Option<u64> {
    let t = text?;
    let v: u64 = t.trim().parse().ok()?;
    (v < (1u64 << 62)).then_some(v)
}

fn v2(s: &mut Stats, f: &dyn Fn(&str) -> Option<String>) {
    if let Some(cpu) = f("cpu.stat") {
        let us = |k| keyed_value(&cpu, k).map(|v| v * 1000);
        fill(&mut s.cpu.usage_ns, us("usage_usec"));
        fill(&mut s.cpu.user_ns, us("user_usec"));
        fill(&mut s.cpu.system_ns, us("system_usec"));
        fill(&mut s.cpu.periods, keyed_value(&cpu, "nr_periods"));
        fill(
            &mut s.cpu.throttled_periods,
            keyed_value(&cpu, "nr_throttled"),
        );
        fill(&mut s.cpu.throttled_ns, us("throttled_usec"));
    }
    fill(&mut s.memory.usage, number(f("memory.current")));
    if s.memory.usage.is_some() && s.memory.limit.is_none() {
        s.memory.limit = limit(f("memory.max"));
    }
    if let Some(st) = f("memory.stat") {
        fill(&mut s.memory.cache, keyed_value(&st, "file"));
        fill(&mut s.memory.anon, keyed_value(&st, "anon"));
    }
    pids(s, f);
    if let Some(io) = f("io.stat") {
        let (r, w) = io_v2(&io);
        fill(&mut s.io.read_bytes, Some(r));
        fill(&mut s.io.write_bytes, Some(w));
    }
}

fn v1(s: &mut Stats, f: &dyn Fn(&str) -> Option<String>) {
    fill(&mut s.cpu.usage_ns, number(f("cpuacct.usage")));
    if let Some(st) = f("cpuacct.stat") {
        // USER_HZ ticks (100 per second on every Linux ABI).
        let ns = |k| keyed_value(&st, k).map(|t| t * 10_000_000);
        fill(&mut s.cpu.user_ns, ns("user"));
        fill(&mut s.cpu.system_ns, ns("system"));
    }
    if let Some(cpu) = f("cpu.stat") {
        fill(&mut s.cpu.periods, keyed_value(&cpu, "nr_periods"));
        fill(
            &mut s.cpu.throttled_periods,
            keyed_value(&cpu, "nr_throttled"),
        );
        fill(&mut s.cpu.throttled_ns, keyed_value(&cpu, "throttled_time"));
    }
    fill(&mut s.memory.usage, number(f("memory.usage_in_bytes")));
    if s.memory.usage.is_some() && s.memory.limit.is_none() {
        s.memory.limit = limit(f("memory.limit_in_bytes"));
    }
    if let Some(st) = f("memory.stat") {
        fill(&mut s.memory.cache, keyed_value(&st, "total_cache"));
        fill(&mut s.memory.anon, keyed_value(&st, "total_rss"));
    }
    pids(s, f);
    if let Some(io) = f("blkio.throttle.io_service_bytes_recursive") {
        let (r, w) = io_v1(&io);
        fill(&mut s.io.read_bytes, Some(r));
        fill(&mut s.io.write_bytes, Some(w));
    }
}

fn pids(s: &mut Stats, f: &dyn Fn(&str) -> Option<String>) {
    let current = number(f("pids.current"));
    if current.is_some() && s.pids.current.is_none() {
        s.pids.current = current;
        s.pids.limit = number(f("pids.max"));
    }
}

/// v2 `io.stat`: `MAJ:MIN rbytes=N wbytes=N rios=N ...` per device, summed.
fn io_v2(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for kv in text.split_whitespace() {
        match kv.split_once('=') {
            Some(("rbytes", v)) => r += v.parse::<u64>().unwrap_or(0),
            Some(("wbytes", v)) => w += v.parse::<u64>().unwrap_or(0),
            _ => {}
        }
    }
    (r, w)
}

/// v1 `blkio.throttle.io_service_bytes_recursive`: `MAJ:MIN Read N` lines
/// per device (and a `Total` line), summed over devices.
fn io_v1(text: &str) -> (u64, u64) {
    let (mut r, mut w) = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, n] = f.as_slice() {
            let n = n.parse::<u64>().unwrap_or(0);
            match *op {
                "Read" => r += n,
                "Write" => w += n,
                _ => {}
            }
        }
    }
    (r, w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    struct Fake(HashMap<PathBuf, &'static str>);

    impl Files for Fake {
        fn read(&self, path: &Path) -> Option<String> {
            self.0.get(path).map(|s| s.to_string())
        }
    }

    fn mount(p: &str, unified: bool) -> CgroupMount {
        CgroupMount {
            mount_point: p.into(),
            unified,
            controllers: Vec::new(),
        }
    }

    #[test]
    fn v2_files() {
        let d = "/sys/fs/cgroup/zctr/web.zctr";
        let files = Fake(
            [
                ("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 30\n"),
                ("memory.current", "1048576\n"),
                ("memory.max", "max\n"),
                ("memory.stat", "anon 4096\nfile 8192\nkernel 10\n"),
                ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
                ("pids.current", "3\n"),
                ("pids.max", "max\n"),
                ("io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n"),
            ]
            .into_iter()
            .map(|(f, v)| (Path::new(d).join(f), v))
            .collect(),
        );
        let s = read_in(
            &files,
            &[mount("/sys/fs/cgroup", true)],
            &CgroupPath::new("zctr/web.zctr").unwrap(),
        );
        assert_eq!(s.cpu.usage_ns, Some(1_500_000));
        assert_eq!(s.cpu.throttled_periods, Some(2));
        assert_eq!(s.cpu.throttled_ns, Some(30_000));
        assert_eq!(s.memory.usage, Some(1 << 20));
        assert_eq!(s.memory.limit, None);
        assert_eq!((s.memory.anon, s.memory.cache), (Some(4096), Some(8192)));
        assert_eq!(s.memory.oom_kills, Some(1));
        assert_eq!((s.pids.current, s.pids.limit), (Some(3), None));
        assert_eq!((s.io.read_bytes, s.io.write_bytes), (Some(101), Some(202)));
    }

    #[test]
    fn hybrid_takes_the_v1_controllers_and_ignores_the_empty_cgroup2() {
        let v1 = |c: &str, f: &str| Path::new("/sys/fs/cgroup").join(c).join("a").join(f);
        let files = Fake(
            [
                (v1("cpu,cpuacct", "cpuacct.usage"), "2000000\n"),
                (v1("cpu,cpuacct", "cpuacct.stat"), "user 3\nsystem 1\n"),
                (
                    v1("cpu,cpuacct", "cpu.stat"),
                    "nr_periods 5\nnr_throttled 1\nthrottled_time 700\n",
                ),
                (v1("memory", "memory.usage_in_bytes"), "65536\n"),
                (
                    v1("memory", "memory.limit_in_bytes"),
                    "9223372036854771712\n",
                ),
                (
                    v1("memory", "memory.stat"),
                    "cache 1\nrss 2\ntotal_cache 10\ntotal_rss 20\n",
                ),
                (
                    v1("memory", "memory.oom_control"),
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
                (v1("pids", "pids.current"), "4\n"),
                (v1("pids", "pids.max"), "64\n"),
                (
                    v1("blkio", "blkio.throttle.io_service_bytes_recursive"),
                    "8:0 Read 10\n8:0 Write 20\n8:0 Total 30\nTotal 30\n",
                ),
                // The cgroup2 mount of a hybrid host: no controller files.
                (
                    Path::new("/sys/fs/cgroup/unified/a/cgroup.procs").into(),
                    "1\n",
                ),
            ]
            .into_iter()
            .collect(),
        );
        let mounts = [
            mount("/sys/fs/cgroup/unified", true),
            mount("/sys/fs/cgroup/cpu,cpuacct", false),
            mount("/sys/fs/cgroup/memory", false),
            mount("/sys/fs/cgroup/pids", false),
            mount("/sys/fs/cgroup/blkio", false),
        ];
        let s = read_in(&files, &mounts, &CgroupPath::new("a").unwrap());
        assert_eq!(s.cpu.usage_ns, Some(2_000_000));
        assert_eq!(s.cpu.user_ns, Some(30_000_000));
        assert_eq!(s.cpu.throttled_ns, Some(700));
        assert_eq!(s.memory.usage, Some(65536));
        assert_eq!(s.memory.limit, None, "the v1 'unlimited' value is no limit");
        assert_eq!((s.memory.cache, s.memory.anon), (Some(10), Some(20)));
        assert_eq!(s.memory.oom_kills, Some(2));
        assert_eq!((s.pids.current, s.pids.limit), (Some(4), Some(64)));
        assert_eq!((s.io.read_bytes, s.io.write_bytes), (Some(10), Some(20)));
    }

    #[test]
    fn nothing_mounted_or_no_such_cgroup_is_all_unknown() {
        let s = read_in(&Fake(HashMap::new()), &[], &CgroupPath::new("a").unwrap());
        assert_eq!(s, Stats::default());
    }
}
