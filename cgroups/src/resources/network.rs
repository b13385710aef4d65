//! `linux.resources.network`: the v1-only net_cls (`net_cls.classid`) and
//! net_prio (`net_prio.ifpriomap`) controllers; cgroup2 has neither.

use super::{Ctx, Restore};
use oci_spec::runtime::LinuxNetwork;

/// An interface name as the kernel takes it: 1..15 bytes, no '/', no space.
fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 15
        || name.contains(|c: char| c == '/' || c.is_whitespace() || c == '\0')
    {
        Err(format!("{name:?} is not an interface name"))
    } else {
        Ok(())
    }
}

pub(super) fn plan(n: &LinuxNetwork, cx: &mut Ctx) {
    if let Some(id) = n.class_id() {
        if let Some(side) = cx.side("network.classID", "net_cls") {
            cx.write(
                "network.classID",
                "net_cls",
                side,
                "net_cls.classid",
                id.to_string(),
            );
        }
    }
    let prios = n.priorities().as_deref().unwrap_or_default();
    if prios.is_empty() {
        return;
    }
    let Some(side) = cx.side("network.priorities", "net_prio") else {
        return;
    };
    for p in prios {
        if let Err(e) = check_ifname(p.name()) {
            cx.refuse("network.priorities", e);
            continue;
        }
        let restore = Restore::Line {
            key: p.name().clone(),
            reset: format!("{} 0", p.name()),
        };
        let choices = vec![(
            "net_prio.ifpriomap".to_string(),
            format!("{} {}", p.name(), p.priority()),
        )];
        cx.write_with("network.priorities", "net_prio", side, choices, restore);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_hosts::{hybrid, v1, v2};
    use super::super::{plan, Host};
    use oci_spec::runtime::{
        LinuxInterfacePriorityBuilder, LinuxNetworkBuilder, LinuxResourcesBuilder,
    };

    fn run(n: LinuxNetworkBuilder, host: &Host) -> Result<Vec<(String, String)>, String> {
        let r = LinuxResourcesBuilder::default()
            .network(n.build().unwrap())
            .build()
            .unwrap();
        let p = plan(&r, host).map_err(|e| e.to_string())?;
        Ok(p.writes.into_iter().map(|w| w.choices[0].clone()).collect())
    }

    fn prio(name: &str) -> LinuxNetworkBuilder {
        LinuxNetworkBuilder::default().priorities(vec![LinuxInterfacePriorityBuilder::default()
            .name(name)
            .priority(5u32)
            .build()
            .unwrap()])
    }

    #[test]
    fn network_needs_the_v1_controllers() {
        assert_eq!(
            run(prio("eth0").class_id(0x100001u32), &v1()).unwrap(),
            [
                ("net_cls.classid".to_string(), "1048577".to_string()),
                ("net_prio.ifpriomap".to_string(), "eth0 5".to_string())
            ]
        );
        assert_eq!(
            run(LinuxNetworkBuilder::default().class_id(1u32), &hybrid()).unwrap_err(),
            "linux.resources.network.classID: needs the v1 net_cls controller, not mounted"
        );
        assert_eq!(
            run(prio("eth0"), &v2()).unwrap_err(),
            "linux.resources.network.priorities: needs the v1 net_prio controller, and this host has cgroup2 only"
        );
        assert_eq!(
            run(prio("a b"), &v1()).unwrap_err(),
            "linux.resources.network.priorities: \"a b\" is not an interface name"
        );
    }
}
