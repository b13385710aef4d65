//! Fields zctr does not apply, refused by name (the runtime-spec wants an
//! error, never a silent ignore): `linux.intelRdt`, `linux.netDevices`,
//! `linux.memoryPolicy`, and the sections of other platforms (`solaris`,
//! `windows`, `vm`, `zos`). `linux.resources` is the cgroup code's.

use super::{err, HostFacts, PlanError};
use oci_spec::runtime::{Linux, Spec};

pub fn check(spec: &Spec, linux: &Linux, host: &HostFacts) -> Result<(), PlanError> {
    if linux.intel_rdt().is_some() {
        return Err(err(
            "linux.intelRdt",
            if host.resctrl {
                "Intel RDT (resctrl) is not supported by zctr"
            } else {
                "resctrl is not mounted at /sys/fs/resctrl on this host (and zctr does not support Intel RDT)"
            },
        ));
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(err(
            "linux.netDevices",
            "moving host network devices into the container is not supported",
        ));
    }
    if linux.memory_policy().is_some() {
        return Err(err(
            "linux.memoryPolicy",
            "NUMA memory policies (set_mempolicy) are not supported",
        ));
    }
    let other = [
        ("solaris", spec.solaris().is_some()),
        ("windows", spec.windows().is_some()),
        ("vm", spec.vm().is_some()),
        ("zos", spec.zos().is_some()),
    ];
    if let Some((name, _)) = other.iter().find(|(_, set)| *set) {
        return Err(err(
            *name,
            "is for another platform: zctr runs Linux containers (namespaces, no VM)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn unsupported_fields_are_refused_by_name() {
        let cases = [
            (
                r#""intelRdt":{"closID":"x"},"#,
                "linux.intelRdt",
                "resctrl is not mounted",
            ),
            (
                r#""netDevices":{"eth9":{"name":"e"}},"#,
                "linux.netDevices",
                "moving host",
            ),
            (
                r#""memoryPolicy":{"mode":"MPOL_BIND","nodes":"0"},"#,
                "linux.memoryPolicy",
                "NUMA",
            ),
        ];
        for (linux, field, why) in cases {
            let e = build(
                &spec(&base(linux, r#""args":["/x"]"#)),
                Path::new("/"),
                &host(),
                None,
            )
            .unwrap_err();
            assert_eq!(e.field, field);
            assert!(e.reason.contains(why), "{e}");
        }
        let mut h = host();
        h.resctrl = true;
        let e = build(
            &spec(&base(r#""intelRdt":{"closID":"x"},"#, r#""args":["/x"]"#)),
            Path::new("/"),
            &h,
            None,
        )
        .unwrap_err();
        assert!(e.reason.contains("not supported by zctr"), "{e}");
        let json = base("", r#""args":["/x"]"#).replace(
            r#"{"ociVersion":"1.0.2","#,
            r#"{"ociVersion":"1.0.2","vm":{"hypervisor":{"path":"/h"},"kernel":{"path":"/k"}},"#,
        );
        let e = build(&spec(&json), Path::new("/"), &host(), None).unwrap_err();
        assert_eq!(e.field, "vm");
    }
}
