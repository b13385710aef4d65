//! What the numbers were measured on: machine, kernel, cgroups, versions.

use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            let s = if s.trim().is_empty() {
                String::from_utf8_lossy(&o.stderr).into_owned()
            } else {
                s
            };
            s.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|| "not installed".into())
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The cgroup layout: v2 (unified at /sys/fs/cgroup), hybrid, or v1.
pub fn cgroup_layout() -> &'static str {
    let mounts = read("/proc/self/mounts");
    let v2: Vec<&str> = mounts
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("cgroup2"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    let v1 = mounts
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("cgroup"));
    match (v1, v2.as_slice()) {
        (false, [_, ..]) => "v2",
        (true, [_, ..]) => "hybrid",
        _ => "v1",
    }
}

/// Whether cgroup2 is mounted at /sys/fs/cgroup/unified (hybrid, where
/// crun 1.8.1 needs it unmounted in a namespace of its own).
pub fn unified_mounted() -> bool {
    read("/proc/self/mounts")
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/sys/fs/cgroup/unified"))
}

pub fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn describe(bin_dir: &Path) -> Value {
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let zctr = bin_dir.join("zctr");
    let zctr_oci = bin_dir.join("zctr-oci");
    json!({
        "date": first_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "cpu": model,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "mem_mib": mem_kib / 1024,
        "kernel": first_line("uname", &["-sr"]),
        "os": read("/etc/os-release").lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME=")).unwrap_or("?").trim_matches('"'),
        "cgroups": cgroup_layout(),
        "loadavg_at_start": loadavg(),
        "versions": {
            "zctr": first_line(&zctr.to_string_lossy(), &["--version"]),
            "zctr-oci": if zctr_oci.is_file() { first_line(&zctr_oci.to_string_lossy(), &["--version"]) } else { "not built".into() },
            "runc": first_line("runc", &["--version"]),
            "crun": first_line("crun", &["--version"]),
            "conmon": first_line("conmon", &["--version"]),
            "busybox": first_line("busybox", &[]),
            "git": first_line("git", &["rev-parse", "--short", "HEAD"]),
        }
    })
}
