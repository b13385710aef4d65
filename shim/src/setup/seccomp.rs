//! `linux.seccomp` for the child: compiled in the plan phase (by
//! `common::seccomp`, a pure compiler; see its module doc for why not the
//! `seccompiler` crate) into `sock_filter`s the child hands to the kernel
//! without allocating.
//!
//! When: the filter is the last thing installed before exec, after
//! `no_new_privs`, so the setup's own calls are never filtered. Without
//! `no_new_privs` the kernel wants CAP_SYS_ADMIN to install a filter, so it
//! goes in before the process drops its capabilities and changes user (as runc
//! does); the profile must then allow the calls that follow (setgroups,
//! setres[ug]id, capset, prctl, chdir, getcwd, execve), as the defaults do.
//!
//! A profile that notifies (`SCMP_ACT_NOTIFY`) gets a listener fd from the
//! install, which the child hands to the shim at once (see `agent`).

use crate::setup::plan::PlanError;
use crate::setup::sys;
use nix::errno::Errno;
use oci_spec::runtime::LinuxSeccomp;
use std::os::fd::RawFd;

/// A compiled filter, ready before clone.
#[derive(Debug)]
pub struct Filter {
    pub insns: Vec<libc::sock_filter>,
    pub flags: u32,
    /// Where the listener goes, when a rule notifies.
    pub agent: Option<zctr_shim_core::agent::Agent>,
}

/// Compiles `profile` (None: no filter); errors name the refused field.
pub fn plan(profile: Option<&LinuxSeccomp>) -> Result<Option<Filter>, PlanError> {
    let Some(profile) = profile else {
        return Ok(None);
    };
    let prog = common::seccomp::compile(profile).map_err(|e| PlanError {
        field: "config.json".into(),
        reason: e.to_string(),
    })?;
    Ok(Some(Filter {
        insns: prog
            .insns
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect(),
        flags: prog.flags,
        agent: match (
            prog.flags & common::seccomp::FLAG_NEW_LISTENER,
            profile.listener_path(),
        ) {
            (0, _) | (_, None) => None,
            (_, Some(path)) => Some(zctr_shim_core::agent::Agent {
                path: path.clone(),
                metadata: profile.listener_metadata().clone(),
            }),
        },
    }))
}

/// Installs `filter` in the calling process (the child, after fork: no
/// allocation); returns the listener fd when the filter notifies.
pub fn install(filter: &Filter) -> Result<Option<RawFd>, Errno> {
    let fd = sys::seccomp_set_filter(&filter.insns, filter.flags)?;
    Ok((filter.flags & common::seccomp::FLAG_NEW_LISTENER != 0).then_some(fd))
}
