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
//!   "seccomp": "unconfined",
//!   "init": true,
//!   "tty": true,
//!   "console_size": [24, 80],
//!   "stdin": true
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
    /// Whether the manager starts it again after it stopped (`restart.rs`).
    #[serde(default, skip_serializing_if = "RestartPolicy::is_no")]
    pub restart: RestartPolicy,
    /// A tiny init as the container's PID 1 (`zctr-shim create --init`):
    /// it forwards signals to the process, reaps orphaned zombies and exits
    /// with the process's code (docs/shim.md, "--init").
    #[serde(default, skip_serializing_if = "is_false")]
    pub init: bool,
    /// Its process gets a terminal (`process.terminal`): a pty of the
    /// container's own devpts, relayed as session 0 (`attach`) and logged.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// The terminal's initial `[rows, cols]` (`process.consoleSize`); only
    /// with `tty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u16; 2]>,
    /// Its stdin stays open for `attach` clients (else `/dev/null`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
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
            restart: RestartPolicy::No,
            init: false,
            tty: false,
            console_size: None,
            stdin: false,
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

mod restart;
mod validate;

pub use restart::{backoff, RestartPolicy, RESET_AFTER};

pub(crate) use validate::{validate_args, validate_env};

#[cfg(test)]
mod tests;
