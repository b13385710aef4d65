//! Merging the config and the image meta into the process: args, env, cwd, user.

use super::{built, SpecError, DEFAULT_PATH};
use crate::config::{ContainerConfig, IdMap};
use crate::meta::ImageMeta;
use crate::rules::Violation;
use oci_spec::runtime::{
    LinuxCapabilities, PosixRlimit, Process, ProcessBuilder, User, UserBuilder,
};
use std::collections::BTreeMap;

/// `config.args` if given, else `meta.args`; neither → [`SpecError::NoArgs`].
pub fn merge_args(config: &ContainerConfig, meta: &ImageMeta) -> Result<Vec<String>, SpecError> {
    match &config.args {
        Some(a) if !a.is_empty() => Ok(a.clone()),
        _ if !meta.args.is_empty() => Ok(meta.args.clone()),
        _ => Err(SpecError::NoArgs),
    }
}

/// Meta env, overridden per key by the config env, plus `PATH` when neither sets
/// it; rendered `K=V`, sorted by key.
pub fn merge_env(config: &ContainerConfig, meta: &ImageMeta) -> Vec<String> {
    let mut env: BTreeMap<&str, &str> = BTreeMap::new();
    env.insert("PATH", DEFAULT_PATH);
    for (k, v) in meta.env.iter().chain(&config.env) {
        env.insert(k, v);
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `config.cwd`, else `meta.workdir`, else `/`.
pub fn merge_cwd(config: &ContainerConfig, meta: &ImageMeta) -> String {
    config
        .cwd
        .clone()
        .or_else(|| meta.workdir.clone())
        .unwrap_or_else(|| "/".into())
}

/// `config.user`, else `meta.user`, else `0:0`; with a user namespace both ids
/// must be mapped.
pub fn merge_user(
    config: &ContainerConfig,
    meta: &ImageMeta,
    id_map: Option<&IdMap>,
) -> Result<(u32, u32), SpecError> {
    let (field, ids) = match (config.user_ids()?, meta.user_ids()?) {
        (Some(ids), _) => ("user", ids),
        (None, Some(ids)) => ("meta.user", ids),
        (None, None) => ("user", (0, 0)),
    };
    if let Some(m) = id_map {
        for id in [ids.0, ids.1] {
            if id >= m.size {
                return Err(SpecError::Invalid {
                    field: field.into(),
                    reason: Violation::NotMapped { id, size: m.size },
                });
            }
        }
    }
    Ok(ids)
}

pub(super) struct ProcessParts {
    pub args: Option<Vec<String>>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: (u32, u32),
    pub capabilities: LinuxCapabilities,
    pub rlimits: Option<Vec<PosixRlimit>>,
    pub no_new_privileges: bool,
}

pub(super) fn build(p: ProcessParts) -> Result<Process, SpecError> {
    let user: User = built(
        "process.user",
        UserBuilder::default().uid(p.user.0).gid(p.user.1).build(),
    )?;
    let mut process = built(
        "process",
        ProcessBuilder::default()
            .terminal(false)
            .user(user)
            .env(p.env)
            .cwd(p.cwd)
            .capabilities(p.capabilities)
            .no_new_privileges(p.no_new_privileges)
            .build(),
    )?;
    // The builder fills unset fields from `Process::default()`; these must
    // say exactly what the profile chose.
    process.set_args(p.args);
    process.set_rlimits(p.rlimits);
    process.set_oom_score_adj(None);
    process.set_console_size(None);
    process.set_apparmor_profile(None);
    process.set_selinux_label(None);
    process.set_io_priority(None);
    process.set_scheduler(None);
    process.set_exec_cpu_affinity(None);
    process.set_command_line(None);
    Ok(process)
}
