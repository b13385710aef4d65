//! The container's cgroup: where it goes (`linux.cgroupsPath`, resolved as
//! runc's cgroupfs driver does), runc's default device rules, and the
//! freezer state for `state`.

use crate::error::{Error, Result};
use common::mountinfo::cgroup_mounts;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};
use std::fs;
use zctr_cgroups::{CgroupPath, Cgroups};

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

/// `linux.cgroupsPath` to a path relative to every hierarchy's root:
/// absolute as is, relative below the caller's own cgroup, absent as
/// `<own cgroup>/zctr-oci-<id>`. The systemd form (`slice:prefix:name`) is
/// refused: zctr-oci has no systemd driver.
pub fn resolve(config_path: Option<&str>, id: &str, own: &str) -> Result<CgroupPath> {
    let join = |rel: &str| {
        if own.is_empty() {
            rel.to_string()
        } else {
            format!("{own}/{rel}")
        }
    };
    let path = match config_path {
        Some(p) if p.contains(':') => {
            return Err(Error::new(format!(
                "linux.cgroupsPath {p:?}: the systemd form (slice:prefix:name) is not supported \
                 (zctr-oci manages cgroupfs paths only; --systemd-cgroup is refused)"
            )))
        }
        Some(p) if p.starts_with('/') => p.to_string(),
        Some(p) if !p.is_empty() => join(p),
        _ => join(&format!("zctr-oci-{id}")),
    };
    CgroupPath::new(&path).map_err(|e| Error::at("linux.cgroupsPath", e))
}

/// The devices every runc container may use, appended after the config's
/// own rules as runc does (containerd and podman rely on that): mknod of
/// any node, null, zero, full, tty, random, urandom, the pty slaves, ptmx.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |t, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
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
    use LinuxDeviceType::{B, C};
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

/// Whether the cgroup is frozen (v1 freezer, or cgroup2's `cgroup.freeze`).
pub fn frozen(path: &str) -> bool {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let rel = path.trim_matches('/');
    cgroup_mounts(&text).iter().any(|m| {
        let dir = m.mount_point.join(rel);
        if m.unified {
            fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
        } else if m.controllers.iter().any(|c| c == "freezer") {
            fs::read_to_string(dir.join("freezer.state"))
                .is_ok_and(|s| matches!(s.trim(), "FROZEN" | "FREEZING"))
        } else {
            false
        }
    })
}

pub fn detect() -> Result<Box<dyn Cgroups>> {
    zctr_cgroups::detect().map_err(|e| Error::at("cgroups", e))
}

/// Removes the cgroup everywhere: through the cgroup driver, then any
/// directory left in a hierarchy it does not manage (a named v1 hierarchy
/// the setup code joined).
pub fn remove(cg: &dyn Cgroups, path: &CgroupPath) -> Result<()> {
    let r = cg.remove(path).map_err(Error::from);
    if let Ok(text) = fs::read_to_string("/proc/self/mountinfo") {
        for m in cgroup_mounts(&text) {
            let _ = fs::remove_dir(path.under(&m.mount_point));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_like_runcs_cgroupfs_driver() {
        let own = own_base("12:memory:/a/b\n11:cpu,cpuacct:/a\n0::/a/b\n1:name=systemd:/\n");
        assert_eq!(own, "a/b");
        assert_eq!(resolve(Some("/x/y"), "c", &own).unwrap().as_str(), "x/y");
        assert_eq!(resolve(Some("x/y"), "c", &own).unwrap().as_str(), "a/b/x/y");
        assert_eq!(resolve(None, "c", &own).unwrap().as_str(), "a/b/zctr-oci-c");
        assert_eq!(resolve(None, "c", "").unwrap().as_str(), "zctr-oci-c");
        let e = resolve(Some("system.slice:zctr:c"), "c", &own).unwrap_err();
        assert!(e.to_string().contains("systemd"), "{e}");
        assert!(resolve(Some("/a/../b"), "c", &own).is_err());
    }
}
