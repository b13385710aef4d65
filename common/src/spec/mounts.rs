//! The mount list: the profile's base filesystems, then volumes, extra mounts
//! and tmpfs for meta-declared mount points nobody filled.

use super::{built, SpecError};
use crate::config::{ContainerConfig, IdMap, MountKind, NetworkMode, Profile};
use crate::meta::ImageMeta;
use crate::rules::Violation;
use crate::spec::profile::{uses_cgroup_namespace, uses_user_namespace};
use oci_spec::runtime::{Mount, MountBuilder};
use std::path::Path;

/// gid of the `tty` group, owner of new ptys (`gid=5` devpts option).
pub const TTY_GID: u32 = 5;

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, SpecError> {
    built(
        "mounts",
        MountBuilder::default()
            .destination(dest)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .build(),
    )
}

/// The profile's base mounts, in mount order.
///
/// `id_map` is the user namespace mapping (None: no user namespace); it decides
/// whether the devpts `gid=5` option can be used (gid 5 must be mapped).
pub(super) fn base_mounts(
    profile: Profile,
    network: &NetworkMode,
    id_map: Option<&IdMap>,
) -> Result<Vec<Mount>, SpecError> {
    let userns = uses_user_namespace(profile);
    let mut out = vec![mount(
        "/proc",
        "proc",
        "proc",
        &["nosuid", "noexec", "nodev"],
    )?];

    out.push(match profile {
        Profile::Unprivileged => mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        Profile::Privileged => mount("/dev", "bind", "/dev", &["rbind", "rprivate"])?,
    });

    let mut pts = vec![
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
    ];
    let tty_gid_mapped = match (userns, id_map) {
        (false, _) => true,
        (true, Some(m)) => TTY_GID < m.size,
        (true, None) => false,
    };
    if tty_gid_mapped {
        pts.push("gid=5");
    }
    out.push(mount("/dev/pts", "devpts", "devpts", &pts)?);
    out.push(mount(
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    )?);
    out.push(mount(
        "/dev/mqueue",
        "mqueue",
        "mqueue",
        &["nosuid", "noexec", "nodev"],
    )?);

    // sysfs can only be mounted by a user namespace that owns the network
    // namespace; with Host or Join networking it does not, so bind the host's.
    let own_netns = matches!(network, NetworkMode::Private);
    out.push(match (profile, userns && !own_netns) {
        (_, true) => mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        )?,
        (Profile::Unprivileged, false) => mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        (Profile::Privileged, false) => {
            mount("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev"])?
        }
    });
    if uses_cgroup_namespace(profile) {
        out.push(mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?);
    }
    Ok(out)
}

/// Volumes, extra mounts and tmpfs for unfilled meta mount points, parents
/// before children (sorted by depth, then path). Destinations were validated
/// (absolute, normalized, unique, not reserved) by the config and meta.
///
/// `owner` is the container process's (uid, gid): a tmpfs for a meta mount
/// point is owned by it, so the program can write there.
pub(super) fn user_mounts(
    config: &ContainerConfig,
    meta: &ImageMeta,
    owner: (u32, u32),
) -> Result<Vec<Mount>, SpecError> {
    let mut out: Vec<Mount> = Vec::new();
    let bind = |dest: &str, src: &Path, readonly: bool, extra: &[String]| {
        let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
        if readonly {
            opts.push("ro".into());
        }
        opts.extend(extra.iter().cloned());
        built(
            "mounts",
            MountBuilder::default()
                .destination(dest)
                .typ("bind")
                .source(src)
                .options(opts)
                .build(),
        )
    };
    let tmpfs = |dest: &str, readonly: bool, extra: Vec<String>| {
        let mut opts = vec!["nosuid".to_string(), "nodev".to_string()];
        if readonly {
            opts.push("ro".into());
        }
        opts.extend(extra);
        built(
            "mounts",
            MountBuilder::default()
                .destination(dest)
                .typ("tmpfs")
                .source("tmpfs")
                .options(opts)
                .build(),
        )
    };

    for v in &config.volumes {
        let idmap = if v.idmap {
            &["idmap".to_string()][..]
        } else {
            &[]
        };
        out.push(bind(&v.destination, &v.source, v.readonly, idmap)?);
    }
    for (i, m) in config.mounts.iter().enumerate() {
        out.push(match (m.kind, &m.source) {
            (MountKind::Bind, Some(src)) => bind(&m.destination, src, m.readonly, &m.options)?,
            (MountKind::Bind, None) => {
                return Err(SpecError::Invalid {
                    field: format!("mounts[{i}].source"),
                    reason: Violation::Missing {
                        reason: "a bind mount needs a host source path",
                    },
                })
            }
            (MountKind::Tmpfs, _) => tmpfs(&m.destination, m.readonly, m.options.clone())?,
        });
    }
    let filled = |d: &str| {
        config.volumes.iter().any(|v| v.destination == d)
            || config.mounts.iter().any(|m| m.destination == d)
    };
    for d in meta.mounts.iter().filter(|d| !filled(d)) {
        let mut opts = vec!["mode=755".to_string()];
        if owner != (0, 0) {
            opts.push(format!("uid={}", owner.0));
            opts.push(format!("gid={}", owner.1));
        }
        out.push(tmpfs(d, false, opts)?);
    }
    out.sort_by(|a, b| {
        let key = |m: &Mount| {
            (
                m.destination().components().count(),
                m.destination().clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(out)
}
