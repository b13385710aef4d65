//! `features`: what this runtime supports, in the JSON shape of runc 1.1+'s
//! `runc features` (the runtime-spec "features" document).

use crate::error::Result;
use common::mountinfo::cgroup_mounts;
use serde_json::json;

const MOUNT_OPTIONS: &[&str] = &[
    "defaults",
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "nosymfollow",
    "symfollow",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
    "bind",
    "rbind",
    "idmap",
    "ridmap",
    "tmpcopyup",
];

/// The document, for this host (cgroup layouts, LSMs).
pub fn document() -> serde_json::Value {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| cgroup_mounts(&t))
        .unwrap_or_default();
    let v1 = mounts.iter().any(|m| !m.unified);
    let v2 = mounts.iter().any(|m| m.unified);
    let lsms = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    let caps: Vec<String> = common::capability::ALL
        .iter()
        .map(|c| common::capability::name(*c))
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::state::OCI_VERSION,
        "hooks": [
            "prestart", "createRuntime", "createContainer", "startContainer",
            "poststart", "poststop"
        ],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {
                "v1": v1,
                "v2": v2,
                "systemd": false,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                    "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                    "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
                "knownFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
                ],
                "supportedFlags": [
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                    "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
                ]
            },
            "apparmor": { "enabled": lsms.split(',').any(|l| l.trim() == "apparmor") },
            "selinux": { "enabled": lsms.split(',').any(|l| l.trim() == "selinux") },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": true } }
        },
        "annotations": {
            "org.zctr.oci.version": env!("CARGO_PKG_VERSION"),
            "org.zctr.oci.seccomp.compiler": "zctr (no libseccomp)"
        }
    })
}

pub fn print() -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&document()).unwrap_or_default()
    );
    Ok(())
}
