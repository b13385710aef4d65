//! OCI runtime spec (`config.json`) generation: a pure function of the
//! container id, its [`ContainerConfig`], its [`ImageMeta`] and the cgroups path.
//!
//! Merge rules (each tested below):
//! - args: `config.args` if given, else `meta.args`; neither → [`SpecError::NoArgs`].
//! - env: meta env, then config env per key, plus `PATH` ([`DEFAULT_PATH`]) when
//!   neither sets it; rendered `K=V` sorted by key.
//! - cwd: `config.cwd` > `meta.workdir` > `/`. user: `config.user` > `meta.user` > `0:0`.
//! - root: `config.rootfs`, read-write. hostname: `config.hostname` or the id.
//! - mounts: the profile's base mounts, then volumes (bind, `rbind,rprivate[,ro]`),
//!   extra mounts, and an empty tmpfs for every meta mount point no volume or
//!   mount fills, sorted parents first.
//! - `linux.cgroupsPath` = `cgroups_path`.
//! - `linux.seccomp`: the profile's default filter for the container's
//!   capability set, none for `"unconfined"`, or the config's own profile.
//!
//! The profiles themselves are in [`profile`] and `docs/profiles.md`.

pub mod mounts;
pub mod process;
pub mod profile;

use crate::config::{ConfigError, ContainerConfig, IdMap, Limits, NetworkMode, Profile};
use crate::id::ContainerId;
use crate::meta::{ImageMeta, MetaError};
use crate::rules::Violation;
use crate::seccomp::SeccompOption;
use oci_spec::runtime::{Capability, LinuxBuilder, Mount, RootBuilder, Spec, SpecBuilder, VERSION};
use oci_spec::OciSpecError;
use serde_json::Value;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// `PATH` given to the process when neither the meta nor the config sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why no spec could be generated.
#[derive(Debug, Error)]
pub enum SpecError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("args: neither the config nor the image meta gives a command")]
    NoArgs,
    /// A value that is valid alone but not in combination (e.g. a user id the
    /// user namespace does not map), or a bad `cgroups_path`.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: Violation },
    /// The `oci-spec` builder refused a value (not expected for validated input).
    #[error("{field}: the OCI builder refused the value: {source}")]
    Build {
        field: &'static str,
        source: OciSpecError,
    },
}

pub(crate) fn built<T>(field: &'static str, r: Result<T, OciSpecError>) -> Result<T, SpecError> {
    r.map_err(|source| SpecError::Build { field, source })
}

/// Everything [`assemble`] needs, already merged and validated.
struct Parts<'a> {
    profile: Profile,
    network: &'a NetworkMode,
    id_map: Option<IdMap>,
    limits: &'a Limits,
    cap_add: &'a [Capability],
    cap_drop: &'a [Capability],
    args: Option<Vec<String>>,
    env: Vec<String>,
    cwd: String,
    user: (u32, u32),
    root: Option<&'a Path>,
    hostname: Option<String>,
    cgroups_path: Option<&'a str>,
    user_mounts: Vec<Mount>,
    seccomp: &'a SeccompOption,
}

fn assemble(p: Parts<'_>) -> Result<Spec, SpecError> {
    let unprivileged = p.profile == Profile::Unprivileged;
    let process = process::build(process::ProcessParts {
        args: p.args,
        env: p.env,
        cwd: p.cwd,
        user: p.user,
        capabilities: profile::capabilities(p.profile, p.cap_add, p.cap_drop)?,
        rlimits: profile::rlimits(p.profile)?,
        no_new_privileges: unprivileged,
    })?;

    let mut linux = built(
        "linux",
        LinuxBuilder::default()
            .namespaces(profile::namespaces(p.profile, p.network)?)
            .resources(profile::resources(p.profile, p.limits)?)
            .build(),
    )?;
    let (uid_map, gid_map) = match &p.id_map {
        Some(m) => {
            let (u, g) = profile::id_mappings(m)?;
            (Some(vec![u]), Some(vec![g]))
        }
        None => (None, None),
    };
    linux.set_uid_mappings(uid_map);
    linux.set_gid_mappings(gid_map);
    linux.set_cgroups_path(p.cgroups_path.map(PathBuf::from));
    linux.set_masked_paths(profile::masked_paths(p.profile));
    linux.set_readonly_paths(profile::readonly_paths(p.profile));
    linux.set_seccomp(profile::seccomp(
        p.profile, p.seccomp, p.cap_add, p.cap_drop,
    )?);

    let mut mounts = mounts::base_mounts(p.profile, p.network, p.id_map.as_ref())?;
    mounts.extend(p.user_mounts);

    let mut spec = built(
        "spec",
        SpecBuilder::default()
            .version(VERSION)
            .process(process)
            .mounts(mounts)
            .linux(linux)
            .build(),
    )?;
    let root = match p.root {
        Some(path) => Some(built(
            "root",
            RootBuilder::default().path(path).readonly(false).build(),
        )?),
        None => None,
    };
    spec.set_root(root);
    spec.set_hostname(p.hostname);
    spec.set_annotations(None);
    Ok(spec)
}

/// The profile's base `config.json`: what every container of that profile and
/// network mode gets before its own config and meta are applied (no root, no
/// args, no hostname, no cgroups path; default id map and limits).
pub fn base_spec(profile: Profile, network: &NetworkMode) -> Result<Spec, SpecError> {
    let id_map = profile::uses_user_namespace(profile).then(IdMap::default);
    let limits = Limits::default();
    let mounts = Vec::new();
    assemble(Parts {
        profile,
        network,
        id_map,
        limits: &limits,
        cap_add: &[],
        cap_drop: &[],
        args: None,
        env: vec![format!("PATH={DEFAULT_PATH}")],
        cwd: "/".into(),
        user: (0, 0),
        root: None,
        hostname: None,
        cgroups_path: None,
        user_mounts: mounts,
        seccomp: &SeccompOption::Default,
    })
}

fn check_cgroups_path(p: &str) -> Result<(), SpecError> {
    let reason = if p.is_empty() || p == "/" {
        Some(Violation::Empty)
    } else if p.contains('\0') {
        Some(Violation::Nul)
    } else if p.split('/').any(|c| c == "..") {
        Some(Violation::DotDot { path: p.into() })
    } else {
        None
    };
    match reason {
        Some(reason) => Err(SpecError::Invalid {
            field: "cgroups_path".into(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Generates the container's OCI spec. Validates `config` and `meta` first.
pub fn generate(
    id: &ContainerId,
    config: &ContainerConfig,
    meta: &ImageMeta,
    cgroups_path: &str,
) -> Result<Spec, SpecError> {
    config.validate()?;
    meta.validate()?;
    check_cgroups_path(cgroups_path)?;
    let args = process::merge_args(config, meta)?;
    let id_map = config.effective_id_map();
    let user = process::merge_user(config, meta, id_map.as_ref())?;
    let (cap_add, cap_drop) = config.capabilities.resolve()?;
    let mut spec = assemble(Parts {
        profile: config.profile,
        network: &config.network,
        id_map,
        limits: &config.limits,
        cap_add: &cap_add,
        cap_drop: &cap_drop,
        args: Some(args),
        env: process::merge_env(config, meta),
        cwd: process::merge_cwd(config, meta),
        user,
        root: Some(&config.rootfs),
        hostname: Some(
            config
                .hostname
                .clone()
                .unwrap_or_else(|| id.as_str().to_string()),
        ),
        cgroups_path: Some(cgroups_path),
        user_mounts: mounts::user_mounts(config, meta, user)?,
        seccomp: &config.seccomp,
    })?;
    if config.tty {
        if let Some(mut p) = spec.process().clone() {
            p.set_terminal(Some(true));
            let size = config
                .console_size
                .map(|[rows, cols]| {
                    built(
                        "process.consoleSize",
                        oci_spec::runtime::BoxBuilder::default()
                            .height(u32::from(rows))
                            .width(u32::from(cols))
                            .build(),
                    )
                })
                .transpose()?;
            p.set_console_size(size);
            spec.set_process(Some(p));
        }
    }
    Ok(spec)
}

/// Pretty JSON of `spec`, stable across runs: object keys sorted, capability
/// lists sorted (oci-spec keeps them in hash sets).
pub fn to_json(spec: &Spec) -> String {
    // A Spec has only string-keyed maps and no floats, so it always serializes.
    let value = serde_json::to_value(spec).expect("an OCI spec serializes to JSON");
    let mut value = canonical(value);
    if let Some(Value::Object(caps)) = value.pointer_mut("/process/capabilities") {
        for set in caps.values_mut() {
            if let Value::Array(list) = set {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    serde_json::to_string_pretty(&value).expect("a JSON value serializes")
}

/// `v` with every object's keys in sorted order (whatever map serde_json uses).
fn canonical(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests;
