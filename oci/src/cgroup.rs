//! The container's cgroup: where it goes (`linux.cgroupsPath`, resolved as
//! runc's cgroupfs driver does), runc's default device rules, and the
//! freezer state for `state`.

use crate::error::{Error, Result};
use common::mountinfo::cgroup_mounts;
use std::fs;
use zctr_cgroups::{CgroupPath, Cgroups};

pub use zctr_cgroups::own_base;

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

pub use zctr_cgroups::default_device_rules;

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
