//! `linux.resources.devices` for the v1 devices controller, in `cgroups-rs`
//! terms (cgroup2 gets a BPF program instead: `devices`, `bpf`).

use cgroups_rs::fs::devices::{DevicePermissions, DeviceType};
use cgroups_rs::fs::{DeviceResource, Resources};
use oci_spec::runtime::LinuxResources;

/// The device rules of `r` as `cgroups-rs` resources (nothing else set).
pub fn to_resources(r: &LinuxResources) -> Resources {
    let mut res = Resources::default();
    for d in r.devices().iter().flatten() {
        let devtype = match d.typ().map(|t| t.as_str().to_string()).as_deref() {
            Some("c" | "u") => DeviceType::Char,
            Some("b") => DeviceType::Block,
            _ => DeviceType::All, // "a" (a "p" rule is refused before this)
        };
        let access = d
            .access()
            .as_deref()
            .unwrap_or("rwm")
            .chars()
            .filter_map(|c| match c {
                'r' => Some(DevicePermissions::Read),
                'w' => Some(DevicePermissions::Write),
                'm' => Some(DevicePermissions::MkNod),
                _ => None,
            })
            .collect();
        res.devices.devices.push(DeviceResource {
            allow: d.allow(),
            devtype,
            major: d.major().unwrap_or(-1),
            minor: d.minor().unwrap_or(-1),
            access,
        });
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxResourcesBuilder};

    #[test]
    fn device_rules_convert_for_the_v1_controller() {
        let r = LinuxResourcesBuilder::default()
            .devices(vec![
                LinuxDeviceCgroupBuilder::default()
                    .allow(false)
                    .access("rwm")
                    .build()
                    .unwrap(),
                LinuxDeviceCgroupBuilder::default()
                    .allow(true)
                    .typ(LinuxDeviceType::C)
                    .major(1)
                    .minor(3)
                    .access("rw")
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap();
        let v1 = to_resources(&r);
        assert_eq!(v1.devices.devices.len(), 2);
        assert!(!v1.devices.devices[0].allow);
        assert_eq!(v1.devices.devices[0].major, -1);
        assert_eq!(v1.devices.devices[1].devtype, DeviceType::Char);
        assert_eq!(v1.devices.devices[1].access.len(), 2);
    }
}
