//! The spec's `linux.resources` in `cgroups-rs` terms (v1 or v2 files).
//! Device rules are only converted for v1: cgroup2 has no devices controller
//! and gets a BPF program instead (`devices`, `bpf`).

use cgroups_rs::fs::devices::{DevicePermissions, DeviceType};
use cgroups_rs::fs::{DeviceResource, MaxValue, Resources};
use oci_spec::runtime::LinuxResources;

/// The controllers the limits in `r` need (device rules aside: v1 needs
/// `devices` for them, cgroup2 a BPF program).
pub fn limited_controllers(r: &LinuxResources) -> Vec<&'static str> {
    let mut out = Vec::new();
    if r.memory().as_ref().is_some_and(|m| {
        m.limit().is_some_and(|l| l >= 0) || m.reservation().is_some() || m.swap().is_some()
    }) {
        out.push("memory");
    }
    if r.cpu()
        .as_ref()
        .is_some_and(|c| c.shares().is_some() || c.quota().is_some_and(|q| q > 0))
    {
        out.push("cpu");
    }
    if r.pids().as_ref().is_some_and(|p| p.limit() > 0) {
        out.push("pids");
    }
    out
}

/// Converts the spec's resources to `cgroups-rs` terms, for v1 or v2 files.
pub fn to_resources(r: &LinuxResources, v2: bool, memsw: bool) -> Resources {
    let mut res = Resources::default();
    if let Some(m) = r.memory() {
        res.memory.memory_hard_limit = m.limit();
        res.memory.memory_soft_limit = m.reservation();
        match (m.swap(), m.limit()) {
            // OCI's swap is memory+swap (the v1 meaning); v2 wants swap alone.
            (Some(swap), Some(limit)) if v2 && swap >= 0 && limit >= 0 => {
                res.memory.memory_swap_limit = Some(swap.saturating_sub(limit).max(0));
            }
            (Some(swap), _) if !v2 && memsw => res.memory.memory_swap_limit = Some(swap),
            _ => {}
        }
    }
    if let Some(p) = r.pids() {
        res.pid.maximum_number_of_processes = Some(if p.limit() > 0 {
            MaxValue::Value(p.limit())
        } else {
            MaxValue::Max
        });
    }
    if let Some(c) = r.cpu() {
        res.cpu.shares = c.shares().map(|s| if v2 { shares_to_weight(s) } else { s });
        res.cpu.quota = c.quota();
        res.cpu.period = c.period();
    }
    if !v2 {
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
    }
    res
}

/// cpu.shares (2..262144) to cpu.weight (1..10000), the conversion runc uses.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
        LinuxPidsBuilder, LinuxResourcesBuilder,
    };

    #[test]
    fn limits_name_the_controllers_they_need() {
        let none = LinuxResourcesBuilder::default().build().unwrap();
        assert!(limited_controllers(&none).is_empty());
        let all = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(1 << 20)
                    .build()
                    .unwrap(),
            )
            .cpu(
                LinuxCpuBuilder::default()
                    .quota(50_000)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(10).build().unwrap())
            .build()
            .unwrap();
        assert_eq!(limited_controllers(&all), ["memory", "cpu", "pids"]);
        // Unlimited values need nothing.
        let unlimited = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
            .build()
            .unwrap();
        assert!(limited_controllers(&unlimited).is_empty());
    }

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(0), 0);
    }

    #[test]
    fn spec_resources_convert_for_v1_and_v2() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(64 << 20)
                    .swap(128 << 20)
                    .build()
                    .unwrap(),
            )
            .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
            .cpu(
                LinuxCpuBuilder::default()
                    .shares(1024u64)
                    .quota(50_000)
                    .period(100_000u64)
                    .build()
                    .unwrap(),
            )
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
        let v1 = to_resources(&r, false, true);
        assert_eq!(v1.memory.memory_hard_limit, Some(64 << 20));
        assert_eq!(v1.memory.memory_swap_limit, Some(128 << 20));
        assert_eq!(
            v1.pid.maximum_number_of_processes,
            Some(MaxValue::Value(32))
        );
        assert_eq!(v1.cpu.shares, Some(1024));
        assert_eq!(v1.cpu.quota, Some(50_000));
        assert_eq!(v1.devices.devices.len(), 2);
        assert!(!v1.devices.devices[0].allow);
        assert_eq!(v1.devices.devices[0].major, -1);
        assert_eq!(v1.devices.devices[1].devtype, DeviceType::Char);
        assert_eq!(v1.devices.devices[1].access.len(), 2);
        let v1_no_memsw = to_resources(&r, false, false);
        assert_eq!(v1_no_memsw.memory.memory_swap_limit, None);
        let v2 = to_resources(&r, true, false);
        assert_eq!(v2.memory.memory_swap_limit, Some(64 << 20));
        assert_eq!(v2.cpu.shares, Some(39));
        assert!(v2.devices.devices.is_empty());
    }
}
