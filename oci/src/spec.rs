//! `spec`: a default config.json like `runc spec`'s, which zctr-oci runs
//! unmodified (rootfs "rootfs", `sh` on a terminal, a read-only root, the
//! usual mounts, masked and read-only paths, deny-all devices on top of
//! runc's default allow list).

use crate::error::{Context, Error, Result};
use serde_json::json;
use std::path::Path;

pub fn default_spec() -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    json!({
        "ociVersion": crate::state::OCI_VERSION,
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "zctr",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
              "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }, { "type": "cgroup" }
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// Writes `<bundle>/config.json`; an existing one is kept (as runc does).
pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    if rootless {
        return Err(Error::new("spec --rootless is not supported by zctr-oci"));
    }
    let path = bundle.join("config.json");
    if path.symlink_metadata().is_ok() {
        return Err(Error::new(format!(
            "File {} exists. Remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_string_pretty(&default_spec()).unwrap_or_default();
    std::fs::write(&path, text + "\n").ctx(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_spec_parses_as_an_oci_spec() {
        let v = super::default_spec();
        let s: oci_spec::runtime::Spec = serde_json::from_value(v).unwrap();
        assert_eq!(s.root().as_ref().unwrap().path().to_str(), Some("rootfs"));
        assert_eq!(s.process().as_ref().unwrap().terminal(), Some(true));
    }
}
