//! `process.capabilities`: the five sets as bit masks, and the rule that
//! without a user namespace of its own a container gets no capability the
//! shim lacks.

use super::{err, HostFacts, PlanError};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};
use std::str::FromStr;

/// Capability masks (bit n = capability n).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapPlan {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapPlan {
    /// CAP_SYS_ADMIN is in the bounding set.
    pub fn sys_admin(&self) -> bool {
        self.bounding & (1u64 << ::caps::Capability::CAP_SYS_ADMIN.index()) != 0
    }
}

/// Names of the capabilities in `mask`, comma-separated.
fn cap_names(mask: u64) -> String {
    ::caps::all()
        .into_iter()
        .filter(|c| mask & (1u64 << c.index()) != 0)
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn cap_mask(field: &str, caps: Option<&Capabilities>) -> Result<u64, PlanError> {
    let mut mask = 0u64;
    for cap in caps.into_iter().flatten() {
        let name = format!("CAP_{cap}");
        let parsed = ::caps::Capability::from_str(&name)
            .map_err(|_| err(field, format!("unknown capability {name}")))?;
        mask |= 1u64 << parsed.index();
    }
    Ok(mask)
}

/// `own_userns`: the container has a user namespace of its own (new or joined).
pub fn plan(
    caps: Option<&LinuxCapabilities>,
    own_userns: bool,
    host: &HostFacts,
) -> Result<CapPlan, PlanError> {
    let caps = match caps {
        None => CapPlan::default(),
        Some(c) => CapPlan {
            bounding: cap_mask("process.capabilities.bounding", c.bounding().as_ref())?,
            effective: cap_mask("process.capabilities.effective", c.effective().as_ref())?,
            permitted: cap_mask("process.capabilities.permitted", c.permitted().as_ref())?,
            inheritable: cap_mask("process.capabilities.inheritable", c.inheritable().as_ref())?,
            ambient: cap_mask("process.capabilities.ambient", c.ambient().as_ref())?,
        },
    };
    // Without a user namespace (new or joined) the container's bounding set is
    // a subset of the shim's: what the shim lacks cannot be granted.
    let wanted = caps.bounding | caps.effective | caps.permitted | caps.inheritable | caps.ambient;
    if !own_userns && wanted & !host.bounding != 0 {
        return Err(err(
            "process.capabilities",
            format!(
                "{} not in the runtime's own bounding set: it cannot grant them \
                 (run zctr-shim with them, or leave them out)",
                cap_names(wanted & !host.bounding)
            ),
        ));
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn capabilities_the_shim_lacks_are_refused_by_name_without_a_user_namespace() {
        let json = base(
            "",
            r#""args":["/x"],"capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"]}"#,
        );
        let mut h = host();
        h.bounding = !(1u64 << 5); // no CAP_KILL
        let e = build(&spec(&json), Path::new("/"), &h, None).unwrap_err();
        assert_eq!(e.field, "process.capabilities");
        assert!(e.reason.starts_with("CAP_KILL not in"), "{e}");
        // A new user namespace has a full bounding set of its own.
        let json = json.replace(
            r#""namespaces":["#,
            r#""uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
               "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
               "namespaces":[{"type":"user"},"#,
        );
        build(&spec(&json), Path::new("/"), &h, None).unwrap();
    }
}
