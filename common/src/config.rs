//! The container's runtime configuration as the API receives it.
//!
//! JSON, snake_case field names, unknown fields rejected. Only `rootfs` is
//! required:
//!
//! ```json
//! {
//!   "rootfs": "/var/lib/zctr/web/rootfs",
//!   "meta": "/var/lib/zctr/web/meta.json",
//!   "volumes": [{"destination": "/data", "source": "/srv/web", "readonly": false, "idmap": false}],
//!   "env": {"MODE": "prod"},
//!   "args": ["/bin/web", "--port", "80"],
//!   "profile": "unprivileged",
//!   "hostname": "web",
//!   "network": {"mode": "join", "path": "/run/netns/web"},
//!   "limits": {"cpus": 0.5, "memory_bytes": 268435456, "pids": 256},
//!   "mounts": [{"destination": "/tmp", "kind": "tmpfs", "options": ["size=64m"]}],
//!   "capabilities": {"add": ["NET_ADMIN"], "drop": ["CAP_MKNOD"]},
//!   "id_map": {"host_uid": 200000, "host_gid": 200000, "size": 65536},
//!   "cwd": "/srv",
//!   "user": "1000:1000",
//!   "seccomp": "unconfined"
//! }
//! ```
//!
//! [`ContainerConfig::validate`] checks every value; a [`ConfigError`] names the
//! field path (e.g. `volumes[2].destination`) and the reason.

use crate::capability;
use crate::rules::{self, Violation};
use crate::seccomp::{SeccompError, SeccompOption};
use oci_spec::runtime::Capability;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Period of the CFS bandwidth control, in microseconds.
pub const CPU_PERIOD: u64 = 100_000;
/// Smallest accepted `limits.cpus` (the kernel's minimum quota is 1 ms per period).
pub const MIN_CPUS: f64 = 0.01;
/// Largest accepted `limits.cpus`.
pub const MAX_CPUS: f64 = 1024.0;
/// Smallest accepted `limits.memory_bytes`: 4 MiB.
pub const MIN_MEMORY: u64 = 4 << 20;
/// Largest accepted `limits.memory_bytes`: 16 TiB.
pub const MAX_MEMORY: u64 = 16 << 40;
/// Largest accepted `limits.pids` (the kernel's `PID_MAX_LIMIT`).
pub const MAX_PIDS: i64 = 4_194_304;
/// Longest accepted hostname (the kernel's `HOST_NAME_MAX`).
pub const MAX_HOSTNAME: usize = 64;
/// Default first host uid/gid of the unprivileged profile's user namespace.
pub const DEFAULT_HOST_ID: u32 = 100_000;
/// Default number of ids mapped by the unprivileged profile.
pub const DEFAULT_ID_MAP_SIZE: u32 = 65_536;

/// A bad configuration value.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// `field` (a path such as `volumes[2].destination`) has a bad value.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: Violation },
    /// The JSON text is not a configuration (syntax, type, unknown or missing field).
    #[error("container config: {0}")]
    Json(#[from] serde_json::Error),
    /// The custom seccomp profile cannot be compiled.
    #[error("seccomp: {0}")]
    Seccomp(#[from] SeccompError),
}

impl ConfigError {
    pub(crate) fn invalid(field: impl Into<String>, reason: Violation) -> Self {
        Self::Invalid {
            field: field.into(),
            reason,
        }
    }

    /// The field path, for [`ConfigError::Invalid`].
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid { field, .. } => Some(field),
            Self::Json(_) => None,
            Self::Seccomp(_) => Some("seccomp"),
        }
    }
}

/// The configuration of one container, as the API receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerConfig {
    /// Absolute host path of the root filesystem.
    pub rootfs: PathBuf,
    /// Absolute host path of the image meta file (see `docs/meta.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<PathBuf>,
    /// Host directories bind-mounted into the container.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Environment; overrides the meta's env per key.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Command and arguments; replaces the meta's args when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub profile: Profile,
    /// RFC 1123 hostname; defaults to the container id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default)]
    pub network: NetworkMode,
    #[serde(default)]
    pub limits: Limits,
    /// Mounts other than volumes (bind or tmpfs).
    #[serde(default)]
    pub mounts: Vec<ExtraMount>,
    /// Adjustments to the profile's capability set.
    #[serde(default)]
    pub capabilities: CapAdjust,
    /// User namespace mapping (unprivileged profile only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_map: Option<IdMap>,
    /// Working directory; overrides the meta's workdir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Numeric `uid[:gid]`; overrides the meta's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `"default"` (the profile's filter), `"unconfined"`, or an OCI
    /// `linux.seccomp` object (see `docs/profiles.md`).
    #[serde(default, skip_serializing_if = "SeccompOption::is_default")]
    pub seccomp: SeccompOption,
}

/// A host directory bind-mounted into the container (the seed's `Volume` map
/// entry destination → source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Absolute, normalized path inside the container.
    pub destination: String,
    /// Absolute host path.
    pub source: PathBuf,
    #[serde(default)]
    pub readonly: bool,
    /// Make the volume an idmapped mount through the container's user
    /// namespace, so that host-root-owned files appear owned by the
    /// container's root (unprivileged profile only; creation fails where the
    /// filesystem cannot be idmapped). Off by default: files the container
    /// writes through an idmapped volume belong to host ids, host root
    /// included, on the host.
    #[serde(default)]
    pub idmap: bool,
}

/// Privilege profile; see `docs/profiles.md`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Unprivileged,
    Privileged,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unprivileged => "unprivileged",
            Self::Privileged => "privileged",
        })
    }
}

/// Network namespace choice. JSON: an object tagged by `mode`:
/// `{"mode": "private"}` (the default), `{"mode": "join", "path": "/run/netns/x"}`,
/// `{"mode": "host"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawNetwork", into = "RawNetwork")]
pub enum NetworkMode {
    /// A new network namespace; the shim brings `lo` up, nothing else.
    #[default]
    Private,
    /// Join the existing network namespace at `path` (e.g. `/run/netns/x`).
    Join { path: PathBuf },
    /// Share the host's network stack: no network namespace.
    Host,
}

/// The JSON shape of [`NetworkMode`]; serde cannot reject unknown fields of
/// unit variants of an internally tagged enum, so the check is done here.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    mode: RawNetworkKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawNetworkKind {
    Private,
    Join,
    Host,
}

impl TryFrom<RawNetwork> for NetworkMode {
    type Error = &'static str;
    fn try_from(r: RawNetwork) -> Result<Self, Self::Error> {
        match (r.mode, r.path) {
            (RawNetworkKind::Private, None) => Ok(Self::Private),
            (RawNetworkKind::Host, None) => Ok(Self::Host),
            (RawNetworkKind::Join, Some(path)) => Ok(Self::Join { path }),
            (RawNetworkKind::Join, None) => Err("network.path: required with mode \"join\""),
            (_, Some(_)) => Err("network.path: only allowed with mode \"join\""),
        }
    }
}

impl From<NetworkMode> for RawNetwork {
    fn from(n: NetworkMode) -> Self {
        match n {
            NetworkMode::Private => Self {
                mode: RawNetworkKind::Private,
                path: None,
            },
            NetworkMode::Host => Self {
                mode: RawNetworkKind::Host,
                path: None,
            },
            NetworkMode::Join { path } => Self {
                mode: RawNetworkKind::Join,
                path: Some(path),
            },
        }
    }
}

/// Resource limits; None = the profile's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPUs, `0.01..=1024`; becomes quota `cpus * 100000` per period 100000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory limit in bytes, 4 MiB ..= 16 TiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Maximum number of tasks, `1..=4194304`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<i64>,
}

/// CFS quota (µs per [`CPU_PERIOD`]) for `cpus` CPUs.
pub fn cpu_quota(cpus: f64) -> i64 {
    (cpus * CPU_PERIOD as f64).round() as i64
}

/// A mount that is not a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraMount {
    /// Absolute, normalized path inside the container.
    pub destination: String,
    /// Absolute host path; required for `bind`, not allowed for `tmpfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<PathBuf>,
    pub kind: MountKind,
    #[serde(default)]
    pub readonly: bool,
    /// Extra mount options, one per entry (e.g. `size=64m`, `mode=1777`).
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Tmpfs,
}

/// Capabilities added to / dropped from the profile's set, by name (`CAP_X` or `X`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapAdjust {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub drop: Vec<String>,
}

impl CapAdjust {
    /// The parsed `(add, drop)` lists.
    pub fn resolve(&self) -> Result<(Vec<Capability>, Vec<Capability>), ConfigError> {
        let parse = |list: &[String], which: &str| -> Result<Vec<Capability>, ConfigError> {
            list.iter()
                .enumerate()
                .map(|(i, n)| {
                    capability::parse(n).ok_or_else(|| {
                        ConfigError::invalid(
                            format!("capabilities.{which}[{i}]"),
                            Violation::UnknownCapability { name: n.clone() },
                        )
                    })
                })
                .collect()
        };
        let add = parse(&self.add, "add")?;
        let drop = parse(&self.drop, "drop")?;
        if let Some((i, c)) = drop.iter().enumerate().find(|(_, c)| add.contains(c)) {
            return Err(ConfigError::invalid(
                format!("capabilities.drop[{i}]"),
                Violation::AddedAndDropped {
                    name: capability::name(*c),
                },
            ));
        }
        Ok((add, drop))
    }
}

/// One contiguous uid and gid mapping: container ids `0..size` map to host ids
/// `host_uid..host_uid+size` and `host_gid..host_gid+size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdMap {
    pub host_uid: u32,
    pub host_gid: u32,
    pub size: u32,
}

impl Default for IdMap {
    /// Container 0 → host 100000, 65536 ids.
    fn default() -> Self {
        Self {
            host_uid: DEFAULT_HOST_ID,
            host_gid: DEFAULT_HOST_ID,
            size: DEFAULT_ID_MAP_SIZE,
        }
    }
}

impl ContainerConfig {
    /// A configuration with only the rootfs set; everything else defaults.
    pub fn new(rootfs: impl Into<PathBuf>) -> Self {
        Self {
            rootfs: rootfs.into(),
            meta: None,
            volumes: Vec::new(),
            env: BTreeMap::new(),
            args: None,
            profile: Profile::default(),
            hostname: None,
            network: NetworkMode::default(),
            limits: Limits::default(),
            mounts: Vec::new(),
            capabilities: CapAdjust::default(),
            id_map: None,
            cwd: None,
            user: None,
            seccomp: SeccompOption::Default,
        }
    }

    /// Parses and validates a JSON configuration.
    pub fn from_json(s: &str) -> Result<Self, ConfigError> {
        let c: Self = serde_json::from_str(s)?;
        c.validate()?;
        Ok(c)
    }

    /// The uid/gid mapping in effect: None for the privileged profile (no user
    /// namespace), else `id_map` or [`IdMap::default`].
    pub fn effective_id_map(&self) -> Option<IdMap> {
        match self.profile {
            Profile::Privileged => None,
            Profile::Unprivileged => Some(self.id_map.unwrap_or_default()),
        }
    }

    /// The `user` override parsed as `(uid, gid)`.
    pub fn user_ids(&self) -> Result<Option<(u32, u32)>, ConfigError> {
        self.user
            .as_deref()
            .map(|u| rules::parse_user(u).map_err(|r| ConfigError::invalid("user", r)))
            .transpose()
    }

    /// Checks every value; the first bad one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at = |field: &str| {
            let field = field.to_string();
            move |r| ConfigError::invalid(field, r)
        };
        rules::check_host_path(&self.rootfs).map_err(at("rootfs"))?;
        if let Some(meta) = &self.meta {
            rules::check_host_path(meta).map_err(at("meta"))?;
        }
        self.validate_mounts()?;
        validate_env("env", &self.env).map_err(|(f, r)| ConfigError::invalid(f, r))?;
        if let Some(args) = &self.args {
            validate_args("args", args).map_err(|(f, r)| ConfigError::invalid(f, r))?;
        }
        if let Some(h) = &self.hostname {
            check_hostname(h).map_err(at("hostname"))?;
        }
        if let NetworkMode::Join { path } = &self.network {
            rules::check_host_path(path).map_err(at("network.path"))?;
        }
        self.validate_limits()?;
        self.capabilities.resolve()?;
        self.validate_id_map()?;
        if let Some(cwd) = &self.cwd {
            rules::check_container_path(cwd).map_err(at("cwd"))?;
        }
        self.user_ids()?;
        if let SeccompOption::Custom(p) = &self.seccomp {
            crate::seccomp::compile(p)?;
        }
        Ok(())
    }

    fn validate_mounts(&self) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        let mut check_dest = |field: String, dest: &str| -> Result<(), ConfigError> {
            let r = rules::check_user_mount_destination(dest).and_then(|()| {
                if !seen.insert(dest.to_string()) {
                    return Err(Violation::Duplicate {
                        what: "mount destination",
                        value: dest.to_string(),
                    });
                }
                Ok(())
            });
            r.map_err(|r| ConfigError::invalid(field, r))
        };
        for (i, v) in self.volumes.iter().enumerate() {
            check_dest(format!("volumes[{i}].destination"), &v.destination)?;
            rules::check_host_path(&v.source)
                .map_err(|r| ConfigError::invalid(format!("volumes[{i}].source"), r))?;
            if v.idmap && self.profile != Profile::Unprivileged {
                return Err(ConfigError::invalid(
                    format!("volumes[{i}].idmap"),
                    Violation::NotAllowed {
                        reason:
                            "an idmapped volume needs the unprivileged profile's user namespace",
                    },
                ));
            }
            let adds_sys_admin = self
                .capabilities
                .add
                .iter()
                .any(|c| capability::parse(c) == Some(Capability::SysAdmin));
            if v.idmap && adds_sys_admin {
                return Err(ConfigError::invalid(
                    format!("volumes[{i}].idmap"),
                    Violation::NotAllowed {
                        reason: "an idmapped volume would not keep the host's mount flags \
                                 against CAP_SYS_ADMIN in the container",
                    },
                ));
            }
        }
        for (i, m) in self.mounts.iter().enumerate() {
            check_dest(format!("mounts[{i}].destination"), &m.destination)?;
            let source_field = format!("mounts[{i}].source");
            match (m.kind, &m.source) {
                (MountKind::Bind, Some(src)) => rules::check_host_path(src)
                    .map_err(|r| ConfigError::invalid(source_field, r))?,
                (MountKind::Bind, None) => {
                    return Err(ConfigError::invalid(
                        source_field,
                        Violation::Missing {
                            reason: "a bind mount needs a host source path",
                        },
                    ))
                }
                (MountKind::Tmpfs, Some(_)) => {
                    return Err(ConfigError::invalid(
                        source_field,
                        Violation::NotAllowed {
                            reason: "a tmpfs mount has no source",
                        },
                    ))
                }
                (MountKind::Tmpfs, None) => {}
            }
            for (j, o) in m.options.iter().enumerate() {
                rules::check_mount_option(o)
                    .map_err(|r| ConfigError::invalid(format!("mounts[{i}].options[{j}]"), r))?;
            }
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if let Some(c) = l.cpus {
            // `!(a <= c)` also rejects NaN.
            if !(MIN_CPUS..=MAX_CPUS).contains(&c) {
                return Err(ConfigError::invalid(
                    "limits.cpus",
                    Violation::OutOfRange {
                        value: c.to_string(),
                        range: "0.01..=1024",
                    },
                ));
            }
        }
        if let Some(m) = l.memory_bytes {
            if !(MIN_MEMORY..=MAX_MEMORY).contains(&m) {
                return Err(ConfigError::invalid(
                    "limits.memory_bytes",
                    Violation::OutOfRange {
                        value: m.to_string(),
                        range: "4194304 (4 MiB) ..= 17592186044416 (16 TiB)",
                    },
                ));
            }
        }
        if let Some(p) = l.pids {
            if !(1..=MAX_PIDS).contains(&p) {
                return Err(ConfigError::invalid(
                    "limits.pids",
                    Violation::OutOfRange {
                        value: p.to_string(),
                        range: "1..=4194304",
                    },
                ));
            }
        }
        Ok(())
    }

    fn validate_id_map(&self) -> Result<(), ConfigError> {
        let Some(m) = self.id_map else {
            return Ok(());
        };
        if self.profile == Profile::Privileged {
            return Err(ConfigError::invalid(
                "id_map",
                Violation::NotAllowed {
                    reason: "the privileged profile has no user namespace",
                },
            ));
        }
        if m.size == 0 {
            return Err(ConfigError::invalid(
                "id_map.size",
                Violation::OutOfRange {
                    value: "0".into(),
                    range: "1..",
                },
            ));
        }
        // Host id u32::MAX is the invalid id (-1), so the last mapped id must be below it.
        for (field, host) in [
            ("id_map.host_uid", m.host_uid),
            ("id_map.host_gid", m.host_gid),
        ] {
            if host == 0 {
                return Err(ConfigError::invalid(
                    field,
                    Violation::NotAllowed {
                        reason: "host id 0 (root) in the unprivileged profile's mapping",
                    },
                ));
            }
            if u64::from(host) + u64::from(m.size) > u64::from(u32::MAX) {
                return Err(ConfigError::invalid(
                    field,
                    Violation::OutOfRange {
                        value: format!("{host} + size {}", m.size),
                        range: "..=4294967295 (host id + size)",
                    },
                ));
            }
        }
        Ok(())
    }
}

/// Env rules shared with the image meta: key non-empty without `=`/NUL, value
/// without NUL. Returns the field path and reason of the first bad entry.
pub(crate) fn validate_env(
    prefix: &str,
    env: &BTreeMap<String, String>,
) -> Result<(), (String, Violation)> {
    for (k, v) in env {
        rules::check_env_key(k)
            .and_then(|()| rules::check_env_value(v))
            .map_err(|r| (rules::env_field(prefix, k), r))?;
    }
    Ok(())
}

/// Args rules shared with the image meta: at least one entry, a non-empty
/// program, no NUL anywhere.
pub(crate) fn validate_args(prefix: &str, args: &[String]) -> Result<(), (String, Violation)> {
    if args.is_empty() {
        return Err((
            prefix.to_string(),
            Violation::Missing {
                reason: "at least the program to run (omit the field to use the default)",
            },
        ));
    }
    if args[0].is_empty() {
        return Err((format!("{prefix}[0]"), Violation::Empty));
    }
    for (i, a) in args.iter().enumerate() {
        if a.contains('\0') {
            return Err((format!("{prefix}[{i}]"), Violation::Nul));
        }
    }
    Ok(())
}

/// RFC 1123 hostname: dot-separated labels of 1..=63 letters, digits and `-`,
/// not starting or ending with `-`; at most 64 characters in all.
fn check_hostname(h: &str) -> Result<(), Violation> {
    const FORMAT: &str = "an RFC 1123 hostname (labels of letters, digits and '-', \
                          1 to 63 characters, not starting or ending with '-', separated by '.')";
    if h.is_empty() {
        return Err(Violation::Empty);
    }
    if h.len() > MAX_HOSTNAME {
        return Err(Violation::TooLong {
            len: h.len(),
            max: MAX_HOSTNAME,
        });
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !h.split('.').all(label_ok) {
        return Err(Violation::Format {
            got: h.into(),
            expected: FORMAT,
        });
    }
    Ok(())
}

impl Volume {
    pub fn new(destination: impl Into<String>, source: impl AsRef<Path>, readonly: bool) -> Self {
        Self {
            destination: destination.into(),
            source: source.as_ref().to_path_buf(),
            readonly,
            idmap: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> ContainerConfig {
        ContainerConfig::new("/var/lib/zctr/c/rootfs")
    }

    /// Asserts that `c` fails validation at `field` and returns the reason.
    fn fails(c: &ContainerConfig, field: &str) -> Violation {
        match c.validate() {
            Err(ConfigError::Invalid { field: f, reason }) => {
                assert_eq!(f, field, "reason: {reason}");
                reason
            }
            other => panic!("expected an error at {field}, got {other:?}"),
        }
    }

    #[test]
    fn minimal_config_is_valid() {
        base().validate().unwrap();
        let c = ContainerConfig::from_json(r#"{"rootfs": "/r"}"#).unwrap();
        assert_eq!(c, ContainerConfig::new("/r"));
    }

    #[test]
    fn full_config_parses_and_is_valid() {
        let v = json!({
            "rootfs": "/var/lib/zctr/web/rootfs",
            "meta": "/var/lib/zctr/web/meta.json",
            "volumes": [{"destination": "/data", "source": "/srv/web", "readonly": true}],
            "env": {"MODE": "prod"},
            "args": ["/bin/web", "--port", "80"],
            "profile": "unprivileged",
            "hostname": "web.example",
            "network": {"mode": "join", "path": "/run/netns/web"},
            "limits": {"cpus": 0.5, "memory_bytes": 268435456u64, "pids": 256},
            "mounts": [{"destination": "/tmp", "kind": "tmpfs", "options": ["size=64m"]},
                       {"destination": "/etc/x", "kind": "bind", "source": "/etc/x", "readonly": true}],
            "capabilities": {"add": ["NET_ADMIN"], "drop": ["CAP_MKNOD"]},
            "id_map": {"host_uid": 200000, "host_gid": 300000, "size": 1000},
            "cwd": "/srv",
            "user": "1000:1000"
        });
        let c = ContainerConfig::from_json(&v.to_string()).unwrap();
        assert_eq!(
            c.network,
            NetworkMode::Join {
                path: "/run/netns/web".into()
            }
        );
        assert_eq!(c.user_ids().unwrap(), Some((1000, 1000)));
        assert_eq!(c.effective_id_map().unwrap().host_gid, 300000);
        // Round trip.
        let again: ContainerConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn serde_rejects_unknown_fields_everywhere() {
        for bad in [
            json!({"rootfs": "/r", "nope": 1}),
            json!({"rootfs": "/r", "volumes": [{"destination": "/d", "source": "/s", "x": 1}]}),
            json!({"rootfs": "/r", "limits": {"cpu": 1}}),
            json!({"rootfs": "/r", "network": {"mode": "host", "ns": "/x"}}),
            json!({"rootfs": "/r", "capabilities": {"keep": []}}),
            json!({"rootfs": "/r", "id_map": {"host_uid": 1, "host_gid": 1, "size": 1, "a": 1}}),
            json!({"rootfs": "/r", "mounts": [{"destination": "/d", "kind": "tmpfs", "z": 1}]}),
        ] {
            let err = ContainerConfig::from_json(&bad.to_string()).unwrap_err();
            assert!(err.to_string().contains("unknown field"), "{bad}: {err}");
        }
    }

    #[test]
    fn serde_enums() {
        let c = ContainerConfig::from_json(
            r#"{"rootfs": "/r", "profile": "privileged", "network": {"mode": "host"}}"#,
        )
        .unwrap();
        assert_eq!(c.profile, Profile::Privileged);
        assert_eq!(c.network, NetworkMode::Host);
        assert!(ContainerConfig::from_json(r#"{"rootfs": "/r", "profile": "root"}"#).is_err());
        assert!(
            ContainerConfig::from_json(r#"{"rootfs":"/r","network":{"mode":"bridge"}}"#).is_err()
        );
        for (bad, why) in [
            (json!({"mode": "join"}), "required with mode"),
            (
                json!({"mode": "host", "path": "/x"}),
                "only allowed with mode",
            ),
            (
                json!({"mode": "private", "path": "/x"}),
                "only allowed with mode",
            ),
        ] {
            let c = json!({"rootfs": "/r", "network": bad}).to_string();
            let err = ContainerConfig::from_json(&c).unwrap_err().to_string();
            assert!(err.contains("network.path") && err.contains(why), "{err}");
        }
        assert_eq!(
            serde_json::to_value(NetworkMode::Join {
                path: "/run/netns/x".into()
            })
            .unwrap(),
            json!({"mode": "join", "path": "/run/netns/x"})
        );
        assert_eq!(
            serde_json::to_value(NetworkMode::Host).unwrap(),
            json!({"mode": "host"})
        );
        assert_eq!(
            serde_json::to_value(NetworkMode::Private).unwrap(),
            json!({"mode": "private"})
        );
        assert!(ContainerConfig::from_json("{}")
            .unwrap_err()
            .to_string()
            .contains("rootfs"));
    }

    #[test]
    fn rootfs_must_be_absolute() {
        let mut c = base();
        c.rootfs = "rootfs".into();
        assert!(matches!(fails(&c, "rootfs"), Violation::NotAbsolute { .. }));
        c.rootfs = "/a/../b".into();
        assert!(matches!(fails(&c, "rootfs"), Violation::DotDot { .. }));
        c.rootfs = "".into();
        assert_eq!(fails(&c, "rootfs"), Violation::Empty);
    }

    #[test]
    fn meta_path_must_be_absolute() {
        let mut c = base();
        c.meta = Some("meta.json".into());
        assert!(matches!(fails(&c, "meta"), Violation::NotAbsolute { .. }));
    }

    #[test]
    fn volume_rules() {
        let mut c = base();
        c.volumes = vec![
            Volume::new("/a", "/srv/a", false),
            Volume::new("/b", "/srv/b", true),
            Volume::new("b", "/srv/c", false),
        ];
        assert!(matches!(
            fails(&c, "volumes[2].destination"),
            Violation::NotAbsolute { .. }
        ));
        c.volumes[2].destination = "/c/../d".into();
        assert!(matches!(
            fails(&c, "volumes[2].destination"),
            Violation::DotDot { .. }
        ));
        c.volumes[2].destination = "/c//d/".into();
        assert_eq!(
            fails(&c, "volumes[2].destination"),
            Violation::NotNormalized {
                path: "/c//d/".into(),
                normalized: "/c/d".into()
            }
        );
        c.volumes[2].destination = "/".into();
        assert_eq!(fails(&c, "volumes[2].destination"), Violation::IsRoot);
        c.volumes[2].destination = "/b".into();
        assert!(matches!(
            fails(&c, "volumes[2].destination"),
            Violation::Duplicate { .. }
        ));
        c.volumes[2].destination = "/proc/sys".into();
        assert!(matches!(
            fails(&c, "volumes[2].destination"),
            Violation::NotAllowed { .. }
        ));
        c.volumes[2].destination = "/dev/shm".into();
        assert!(matches!(
            fails(&c, "volumes[2].destination"),
            Violation::NotAllowed { .. }
        ));
        c.volumes[2].destination = "/c".into();
        c.volumes[2].source = "srv/c".into();
        assert!(matches!(
            fails(&c, "volumes[2].source"),
            Violation::NotAbsolute { .. }
        ));
        c.volumes[2].source = "/srv/c".into();
        c.validate().unwrap();
    }

    #[test]
    fn error_message_names_field_and_reason() {
        let mut c = base();
        c.volumes = vec![Volume::new("data", "/srv", false)];
        let msg = c.validate().unwrap_err().to_string();
        assert_eq!(
            msg,
            "volumes[0].destination: must be an absolute path, got \"data\""
        );
    }

    #[test]
    fn env_rules() {
        let mut c = base();
        c.env.insert("".into(), "x".into());
        assert_eq!(fails(&c, "env[\"\"]"), Violation::Empty);
        c.env.clear();
        c.env.insert("A=B".into(), "x".into());
        assert_eq!(fails(&c, "env[\"A=B\"]"), Violation::ContainsEquals);
        c.env.clear();
        c.env.insert("A\0".into(), "x".into());
        assert_eq!(fails(&c, "env[\"A\\0\"]"), Violation::Nul);
        c.env.clear();
        c.env.insert("A".into(), "x\0".into());
        assert_eq!(fails(&c, "env[\"A\"]"), Violation::Nul);
        c.env.clear();
        c.env.insert("A".into(), "".into());
        c.validate().unwrap();
    }

    #[test]
    fn args_rules() {
        let mut c = base();
        c.args = Some(vec![]);
        assert!(matches!(fails(&c, "args"), Violation::Missing { .. }));
        c.args = Some(vec!["".into()]);
        assert_eq!(fails(&c, "args[0]"), Violation::Empty);
        c.args = Some(vec!["/bin/sh".into(), "a\0".into()]);
        assert_eq!(fails(&c, "args[1]"), Violation::Nul);
        c.args = Some(vec!["/bin/sh".into(), "".into()]);
        c.validate().unwrap();
    }

    #[test]
    fn hostname_rules() {
        let mut c = base();
        for good in ["a", "web-1", "a.b.c", "A0", &"a".repeat(63)] {
            c.hostname = Some(good.into());
            c.validate().unwrap();
        }
        c.hostname = Some("".into());
        assert_eq!(fails(&c, "hostname"), Violation::Empty);
        c.hostname = Some(format!("{}.{}", "a".repeat(40), "b".repeat(30)));
        assert!(matches!(fails(&c, "hostname"), Violation::TooLong { .. }));
        for bad in [
            "-a",
            "a-",
            "a_b",
            "a..b",
            ".a",
            "a.",
            "a b",
            &"a".repeat(64),
        ] {
            c.hostname = Some(bad.into());
            assert!(
                matches!(fails(&c, "hostname"), Violation::Format { .. }),
                "{bad}"
            );
        }
    }

    #[test]
    fn network_join_path_must_be_absolute() {
        let mut c = base();
        c.network = NetworkMode::Join {
            path: "netns/x".into(),
        };
        assert!(matches!(
            fails(&c, "network.path"),
            Violation::NotAbsolute { .. }
        ));
    }

    #[test]
    fn cpu_limits() {
        let mut c = base();
        for good in [0.01, 0.5, 1.0, 1024.0] {
            c.limits.cpus = Some(good);
            c.validate().unwrap();
        }
        for bad in [0.0, -1.0, 0.001, 1024.5, f64::NAN, f64::INFINITY] {
            c.limits.cpus = Some(bad);
            assert!(matches!(
                fails(&c, "limits.cpus"),
                Violation::OutOfRange { .. }
            ));
        }
        assert_eq!(cpu_quota(1.0), 100_000);
        assert_eq!(cpu_quota(0.5), 50_000);
        assert_eq!(cpu_quota(0.01), 1_000);
        assert_eq!(cpu_quota(2.333333), 233_333);
    }

    #[test]
    fn memory_limits() {
        let mut c = base();
        for good in [MIN_MEMORY, 512 << 20, MAX_MEMORY] {
            c.limits.memory_bytes = Some(good);
            c.validate().unwrap();
        }
        for bad in [0, MIN_MEMORY - 1, MAX_MEMORY + 1] {
            c.limits.memory_bytes = Some(bad);
            assert!(matches!(
                fails(&c, "limits.memory_bytes"),
                Violation::OutOfRange { .. }
            ));
        }
    }

    #[test]
    fn pids_limits() {
        let mut c = base();
        for good in [1, 1024, MAX_PIDS] {
            c.limits.pids = Some(good);
            c.validate().unwrap();
        }
        for bad in [0, -1, MAX_PIDS + 1] {
            c.limits.pids = Some(bad);
            assert!(matches!(
                fails(&c, "limits.pids"),
                Violation::OutOfRange { .. }
            ));
        }
    }

    #[test]
    fn extra_mount_rules() {
        let tmpfs = ExtraMount {
            destination: "/tmp".into(),
            source: None,
            kind: MountKind::Tmpfs,
            readonly: false,
            options: vec!["size=64m".into()],
        };
        let bind = ExtraMount {
            destination: "/etc/resolv.conf".into(),
            source: Some("/etc/resolv.conf".into()),
            kind: MountKind::Bind,
            readonly: true,
            options: vec![],
        };
        let mut c = base();
        c.mounts = vec![tmpfs.clone(), bind.clone()];
        c.validate().unwrap();

        c.mounts[0].source = Some("/x".into());
        assert!(matches!(
            fails(&c, "mounts[0].source"),
            Violation::NotAllowed { .. }
        ));
        c.mounts[0] = tmpfs.clone();
        c.mounts[1].source = None;
        assert!(matches!(
            fails(&c, "mounts[1].source"),
            Violation::Missing { .. }
        ));
        c.mounts[1].source = Some("etc".into());
        assert!(matches!(
            fails(&c, "mounts[1].source"),
            Violation::NotAbsolute { .. }
        ));
        c.mounts[1] = bind.clone();
        c.mounts[1].destination = "tmp".into();
        assert!(matches!(
            fails(&c, "mounts[1].destination"),
            Violation::NotAbsolute { .. }
        ));
        c.mounts[1].destination = "/tmp".into();
        assert!(matches!(
            fails(&c, "mounts[1].destination"),
            Violation::Duplicate { .. }
        ));
        c.mounts[1] = bind;
        c.mounts[0].options = vec!["size=1m".into(), "ro,nosuid".into()];
        assert!(matches!(
            fails(&c, "mounts[0].options[1]"),
            Violation::Format { .. }
        ));
        c.mounts[0].options = vec!["".into()];
        assert_eq!(fails(&c, "mounts[0].options[0]"), Violation::Empty);
    }

    #[test]
    fn volume_and_mount_destinations_must_differ() {
        let mut c = base();
        c.volumes = vec![Volume::new("/data", "/srv", false)];
        c.mounts = vec![ExtraMount {
            destination: "/data".into(),
            source: None,
            kind: MountKind::Tmpfs,
            readonly: false,
            options: vec![],
        }];
        assert!(matches!(
            fails(&c, "mounts[0].destination"),
            Violation::Duplicate { .. }
        ));
    }

    #[test]
    fn capability_rules() {
        let mut c = base();
        c.capabilities.add = vec!["CAP_NET_ADMIN".into(), "sys_time".into()];
        c.capabilities.drop = vec!["MKNOD".into()];
        c.validate().unwrap();
        let (add, drop) = c.capabilities.resolve().unwrap();
        assert_eq!(add, vec![Capability::NetAdmin, Capability::SysTime]);
        assert_eq!(drop, vec![Capability::Mknod]);

        c.capabilities.add.push("CAP_FLY".into());
        assert_eq!(
            fails(&c, "capabilities.add[2]"),
            Violation::UnknownCapability {
                name: "CAP_FLY".into()
            }
        );
        c.capabilities.add.pop();
        c.capabilities.drop.push("ALL".into());
        assert!(matches!(
            fails(&c, "capabilities.drop[1]"),
            Violation::UnknownCapability { .. }
        ));
        c.capabilities.drop = vec!["CAP_SYS_TIME".into()];
        assert_eq!(
            fails(&c, "capabilities.drop[0]"),
            Violation::AddedAndDropped {
                name: "CAP_SYS_TIME".into()
            }
        );
    }

    #[test]
    fn id_map_rules() {
        let mut c = base();
        assert_eq!(c.effective_id_map(), Some(IdMap::default()));
        assert_eq!(
            IdMap::default(),
            IdMap {
                host_uid: 100000,
                host_gid: 100000,
                size: 65536
            }
        );
        c.id_map = Some(IdMap {
            host_uid: 0,
            host_gid: 100000,
            size: 10,
        });
        assert!(matches!(
            fails(&c, "id_map.host_uid"),
            Violation::NotAllowed { .. }
        ));
        c.id_map = Some(IdMap {
            host_uid: 100000,
            host_gid: 0,
            size: 10,
        });
        assert!(matches!(
            fails(&c, "id_map.host_gid"),
            Violation::NotAllowed { .. }
        ));
        c.id_map = Some(IdMap {
            host_uid: 100000,
            host_gid: 100000,
            size: 0,
        });
        assert!(matches!(
            fails(&c, "id_map.size"),
            Violation::OutOfRange { .. }
        ));
        c.id_map = Some(IdMap {
            host_uid: u32::MAX - 10,
            host_gid: 100000,
            size: 11,
        });
        assert!(matches!(
            fails(&c, "id_map.host_uid"),
            Violation::OutOfRange { .. }
        ));
        c.id_map = Some(IdMap {
            host_uid: u32::MAX - 10,
            host_gid: 100000,
            size: 10,
        });
        c.validate().unwrap();

        c.profile = Profile::Privileged;
        assert!(matches!(fails(&c, "id_map"), Violation::NotAllowed { .. }));
        c.id_map = None;
        c.validate().unwrap();
        assert_eq!(c.effective_id_map(), None);
    }

    #[test]
    fn cwd_and_user_rules() {
        let mut c = base();
        c.cwd = Some("srv".into());
        assert!(matches!(fails(&c, "cwd"), Violation::NotAbsolute { .. }));
        c.cwd = Some("/srv/".into());
        assert!(matches!(fails(&c, "cwd"), Violation::NotNormalized { .. }));
        c.cwd = Some("/".into());
        c.user = Some("nobody".into());
        assert!(matches!(fails(&c, "user"), Violation::Format { .. }));
        c.user = Some("65534".into());
        c.validate().unwrap();
        assert_eq!(c.user_ids().unwrap(), Some((65534, 65534)));
    }

    #[test]
    fn a_notifying_profile_with_its_agent_socket_is_valid() {
        let rule = json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]);
        let mut c = base();
        c.seccomp = serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock", "listenerMetadata": "m", "syscalls": rule}))
        .unwrap();
        c.validate().unwrap();
        c.seccomp =
            serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rule}))
                .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("needs listenerPath"), "{e}");
    }
}
