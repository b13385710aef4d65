//! What each privilege profile decides: namespaces, capabilities, device
//! access, default limits, masked and read-only paths, rlimits.
//! The reasons are in `docs/profiles.md`.

use super::{built, SpecError};
use crate::capability;
use crate::config::{cpu_quota, IdMap, Limits, NetworkMode, Profile, CPU_PERIOD};
use crate::seccomp::SeccompOption;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxSeccomp,
    PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
};

/// Default CPU limit of the unprivileged profile: one CPU.
pub const UNPRIVILEGED_CPUS: f64 = 1.0;
/// Default memory limit of the unprivileged profile: 512 MiB.
pub const UNPRIVILEGED_MEMORY: u64 = 512 << 20;
/// Default pids limit of the unprivileged profile.
pub const UNPRIVILEGED_PIDS: i64 = 1024;
/// RLIMIT_NOFILE (soft and hard) of the unprivileged profile.
pub const UNPRIVILEGED_NOFILE: u64 = 1024;

/// Paths the unprivileged profile hides (kernel information and attack surface).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths the unprivileged profile makes read-only (kernel tunables).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Character devices the unprivileged profile may use: (major, minor, name);
/// minor None = all minors.
pub const ALLOWED_DEVICES: [(i64, Option<i64>, &str); 8] = [
    (1, Some(3), "null"),
    (1, Some(5), "zero"),
    (1, Some(7), "full"),
    (1, Some(8), "random"),
    (1, Some(9), "urandom"),
    (5, Some(0), "tty"),
    (5, Some(2), "ptmx"),
    (136, None, "pts/*"),
];

/// Whether the profile creates a user namespace (only the unprivileged one).
pub fn uses_user_namespace(profile: Profile) -> bool {
    profile == Profile::Unprivileged
}

/// Leaves out of `spec`'s capability sets those the runtime itself does not
/// hold (`held`, its bounding set), unless `config` adds them explicitly.
///
/// Only a container without a user namespace is limited by the runtime's
/// bounding set (a new user namespace starts with a full one). So a
/// privileged container on a host where the runtime runs with a reduced set
/// (a restricted sandbox) gets what the runtime has, while an explicit
/// `capabilities.add` of a missing one still fails, by name, in the shim.
pub fn limit_to_held(
    spec: &mut oci_spec::runtime::Spec,
    config: &crate::config::ContainerConfig,
    held: &[Capability],
) -> Result<(), SpecError> {
    if uses_user_namespace(config.profile) {
        return Ok(());
    }
    let (add, _) = config.capabilities.resolve()?;
    let keep = |set: &Option<Capabilities>| -> Option<Capabilities> {
        set.as_ref().map(|s| {
            s.iter()
                .filter(|c| held.contains(c) || add.contains(c))
                .copied()
                .collect()
        })
    };
    let Some(process) = spec.process_mut() else {
        return Ok(());
    };
    let Some(caps) = process.capabilities().clone() else {
        return Ok(());
    };
    let mut limited = caps.clone();
    limited
        .set_bounding(keep(caps.bounding()))
        .set_effective(keep(caps.effective()))
        .set_permitted(keep(caps.permitted()))
        .set_inheritable(keep(caps.inheritable()))
        .set_ambient(keep(caps.ambient()));
    process.set_capabilities(Some(limited));
    Ok(())
}

/// Whether the profile creates a cgroup namespace (only the unprivileged one).
pub fn uses_cgroup_namespace(profile: Profile) -> bool {
    profile == Profile::Unprivileged
}

pub(super) fn namespaces(
    profile: Profile,
    network: &NetworkMode,
) -> Result<Vec<LinuxNamespace>, SpecError> {
    use LinuxNamespaceType::*;
    let mut types = Vec::new();
    if uses_user_namespace(profile) {
        types.push(User);
    }
    types.extend([Pid, Mount, Uts, Ipc]);
    if uses_cgroup_namespace(profile) {
        types.push(Cgroup);
    }
    let mut out = types
        .into_iter()
        .map(|t| {
            built(
                "linux.namespaces",
                LinuxNamespaceBuilder::default().typ(t).build(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    match network {
        NetworkMode::Host => {}
        NetworkMode::Private => out.push(built(
            "linux.namespaces",
            LinuxNamespaceBuilder::default().typ(Network).build(),
        )?),
        NetworkMode::Join { path } => out.push(built(
            "linux.namespaces",
            LinuxNamespaceBuilder::default()
                .typ(Network)
                .path(path.clone())
                .build(),
        )?),
    }
    Ok(out)
}

pub(super) fn id_mappings(map: &IdMap) -> Result<(LinuxIdMapping, LinuxIdMapping), SpecError> {
    let one = |host: u32| {
        built(
            "linux.uidMappings",
            LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host)
                .size(map.size)
                .build(),
        )
    };
    Ok((one(map.host_uid)?, one(map.host_gid)?))
}

/// The profile's capability set, then `add`, then `drop`. Bounding, effective
/// and permitted get the result; inheritable and ambient stay empty.
pub(super) fn capabilities(
    profile: Profile,
    add: &[Capability],
    drop: &[Capability],
) -> Result<LinuxCapabilities, SpecError> {
    let base: &[Capability] = match profile {
        Profile::Unprivileged => &capability::UNPRIVILEGED,
        Profile::Privileged => &capability::ALL,
    };
    let set: Capabilities = base
        .iter()
        .chain(add)
        .filter(|c| !drop.contains(c))
        .copied()
        .collect();
    built(
        "process.capabilities",
        LinuxCapabilitiesBuilder::default()
            .bounding(set.clone())
            .effective(set.clone())
            .permitted(set)
            .inheritable(Capabilities::new())
            .ambient(Capabilities::new())
            .build(),
    )
}

/// `linux.seccomp`: the profile's default for the capability set the
/// container gets, nothing when unconfined, or the config's own profile.
pub(super) fn seccomp(
    profile: Profile,
    option: &SeccompOption,
    add: &[Capability],
    drop: &[Capability],
) -> Result<Option<LinuxSeccomp>, SpecError> {
    match option {
        SeccompOption::Unconfined => Ok(None),
        SeccompOption::Custom(p) => Ok(Some((**p).clone())),
        SeccompOption::Default => {
            let caps = capabilities(profile, add, drop)?;
            let held: Vec<Capability> = caps.bounding().iter().flatten().copied().collect();
            built(
                "linux.seccomp",
                crate::seccomp::default_profile(profile, &held),
            )
            .map(Some)
        }
    }
}

pub(super) fn rlimits(profile: Profile) -> Result<Option<Vec<PosixRlimit>>, SpecError> {
    match profile {
        Profile::Privileged => Ok(None),
        Profile::Unprivileged => Ok(Some(vec![built(
            "process.rlimits",
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(UNPRIVILEGED_NOFILE)
                .hard(UNPRIVILEGED_NOFILE)
                .build(),
        )?])),
    }
}

fn device_rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
) -> Result<LinuxDeviceCgroup, SpecError> {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access("rwm");
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    built("linux.resources.devices", b.build())
}

/// The container's memory limit in bytes: `limits.memory_bytes`, else the
/// profile's default (none for the privileged profile).
pub fn memory_limit(profile: Profile, limits: &Limits) -> Option<u64> {
    match profile {
        Profile::Unprivileged => Some(limits.memory_bytes.unwrap_or(UNPRIVILEGED_MEMORY)),
        Profile::Privileged => limits.memory_bytes,
    }
}

/// Device cgroup rules, then the profile's default limits overridden by `limits`
/// (the privileged profile has no default limits).
pub(super) fn resources(profile: Profile, limits: &Limits) -> Result<LinuxResources, SpecError> {
    let (devices, cpus, memory, pids) = match profile {
        Profile::Unprivileged => {
            let mut devices = vec![device_rule(false, LinuxDeviceType::A, None, None)?];
            for (major, minor, _) in ALLOWED_DEVICES {
                devices.push(device_rule(true, LinuxDeviceType::C, Some(major), minor)?);
            }
            (
                devices,
                Some(limits.cpus.unwrap_or(UNPRIVILEGED_CPUS)),
                memory_limit(profile, limits),
                Some(limits.pids.unwrap_or(UNPRIVILEGED_PIDS)),
            )
        }
        Profile::Privileged => (
            vec![device_rule(true, LinuxDeviceType::A, None, None)?],
            limits.cpus,
            memory_limit(profile, limits),
            limits.pids,
        ),
    };
    let mut b = LinuxResourcesBuilder::default().devices(devices);
    if let Some(cpus) = cpus {
        b = b.cpu(built(
            "linux.resources.cpu",
            LinuxCpuBuilder::default()
                .quota(cpu_quota(cpus))
                .period(CPU_PERIOD)
                .build(),
        )?);
    }
    if let Some(bytes) = memory {
        // Validated to be at most 16 TiB, so it fits.
        let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
        b = b.memory(built(
            "linux.resources.memory",
            LinuxMemoryBuilder::default().limit(limit).build(),
        )?);
    }
    if let Some(limit) = pids {
        b = b.pids(built(
            "linux.resources.pids",
            LinuxPidsBuilder::default().limit(limit).build(),
        )?);
    }
    built("linux.resources", b.build())
}

/// The limits part of [`resources`] (cpu, memory, pids; no device rules):
/// what a live update of `limits` writes.
pub fn limit_resources(profile: Profile, limits: &Limits) -> Result<LinuxResources, SpecError> {
    let mut r = resources(profile, limits)?;
    r.set_devices(None);
    Ok(r)
}

pub(super) fn masked_paths(profile: Profile) -> Option<Vec<String>> {
    match profile {
        Profile::Unprivileged => Some(MASKED_PATHS.iter().map(|s| s.to_string()).collect()),
        Profile::Privileged => None,
    }
}

pub(super) fn readonly_paths(profile: Profile) -> Option<Vec<String>> {
    match profile {
        Profile::Unprivileged => Some(READONLY_PATHS.iter().map(|s| s.to_string()).collect()),
        Profile::Privileged => None,
    }
}
