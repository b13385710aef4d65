//! `linux.resources` when zctr-shim runs by hand: without
//! `--cgroup-managed` (which the manager passes, having applied them
//! itself) the shim applies them through `zctr-cgroups` once the init is in
//! its cgroup and before it may exec, so the container's own code never
//! runs without its limits.

use oci_spec::runtime::Spec;
use zctr_cgroups::CgroupPath;
use zctr_shim_core::SetupError;

/// Applies the config's resources to the cgroup at `cgroups_path` (relative
/// to every hierarchy's root). No resources: nothing to do. Resources but
/// no cgroup path: refused, naming the field.
pub fn apply(spec: &Spec, cgroups_path: &str) -> Result<(), SetupError> {
    let Some(r) = spec.linux().as_ref().and_then(|l| l.resources().as_ref()) else {
        return Ok(());
    };
    let fail =
        |e: &dyn std::fmt::Display| SetupError::new("linux.resources", libc::EINVAL, e.to_string());
    if cgroups_path.trim_matches('/').is_empty() {
        return Err(fail(
            &"linux.resources needs linux.cgroupsPath (the cgroup they are applied to)",
        ));
    }
    let path = CgroupPath::new(cgroups_path).map_err(|e| fail(&e))?;
    // Device rules get runc's default allow list after them, as configs
    // written for runc expect (`runc spec`'s deny-all rule included).
    let r = zctr_cgroups::with_default_devices(r);
    zctr_cgroups::detect()
        .and_then(|cg| cg.create(&path, Some(&r)))
        .map_err(|e| fail(&e))
}
