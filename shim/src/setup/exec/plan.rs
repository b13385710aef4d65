//! The new process's share of the container's config, computed before fork
//! (the helper and the process allocate nothing): the request's `process`
//! through the init's own plan sections (`plan::process`, `caps`, `rlimits`),
//! the container's `linux.seccomp` through `setup::seccomp`. Fields zctr
//! cannot apply to an exec'd process are refused by name.

use crate::setup::plan::{caps, process, rlimits, CapPlan, HostFacts, PlanError};
use crate::setup::seccomp::{self, Filter};
use oci_spec::runtime::{Process, Spec};
use std::ffi::CString;

/// Everything the exec'd process gets, as C strings and masks.
#[derive(Debug)]
pub struct ExecPlan {
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// As in the init's plan: argv[0] itself when it holds a '/', else
    /// argv[0] joined to each entry of the request's PATH.
    pub exec_candidates: Vec<CString>,
    /// `process.cwd`, absolute and normalised.
    pub cwd: CString,
    /// The same without its leading '/' ("." for the root), resolved
    /// inside the container's root.
    pub cwd_rel: CString,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<libc::gid_t>,
    pub umask: Option<u32>,
    pub caps: CapPlan,
    pub last_cap: u32,
    pub no_new_privs: bool,
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
    pub seccomp: Option<Filter>,
    /// `process.oomScoreAdj` as the decimal text written to
    /// `/proc/self/oom_score_adj`.
    pub oom_score_adj: Option<CString>,
    pub terminal: bool,
    /// `process.consoleSize` (rows, columns).
    pub console_size: Option<(u16, u16)>,
}

fn refuse(field: &str, reason: &str) -> PlanError {
    PlanError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Refuses the process fields zctr does not apply (to the init either).
fn refuse_unsupported(p: &Process) -> Result<(), PlanError> {
    let set = |o: &Option<String>| o.as_deref().is_some_and(|s| !s.is_empty());
    if set(p.apparmor_profile()) {
        return Err(refuse(
            "process.apparmorProfile",
            "not supported by zctr exec (no AppArmor support)",
        ));
    }
    if set(p.selinux_label()) {
        return Err(refuse(
            "process.selinuxLabel",
            "not supported by zctr exec (no SELinux support)",
        ));
    }
    if p.io_priority().is_some() {
        return Err(refuse("process.ioPriority", "not supported by zctr exec"));
    }
    if p.scheduler().is_some() {
        return Err(refuse("process.scheduler", "not supported by zctr exec"));
    }
    if p.exec_cpu_affinity().is_some() {
        return Err(refuse(
            "process.execCPUAffinity",
            "not supported by zctr exec",
        ));
    }
    if p.command_line().is_some() {
        return Err(refuse("process.commandLine", "Windows only"));
    }
    Ok(())
}

/// The plan for running `process` in the container configured by `spec`;
/// `own_userns`: the container has a user namespace of its own.
pub fn build(
    spec: &Spec,
    process: &Process,
    own_userns: bool,
    host: &HostFacts,
) -> Result<ExecPlan, PlanError> {
    refuse_unsupported(process)?;
    let exec = process::plan(process)?;
    let caps = caps::plan(process.capabilities().as_ref(), own_userns, host)?;
    let rlimits = rlimits::plan(process.rlimits().iter().flatten())?;
    let linux_seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let seccomp = seccomp::plan(linux_seccomp)?;
    if seccomp
        .as_ref()
        .is_some_and(|f| f.flags & common::seccomp::FLAG_NEW_LISTENER != 0)
    {
        return Err(refuse(
            "linux.seccomp",
            "a profile with SCMP_ACT_NOTIFY cannot be applied to an exec'd process \
             (zctr hands the listener to the agent only for the init)",
        ));
    }
    let user = process.user();
    let cwd_rel = match exec.cwd.trim_start_matches('/') {
        "" => ".".to_string(),
        rel => rel.to_string(),
    };
    let cstr =
        |field: &str, s: &str| CString::new(s).map_err(|_| refuse(field, "contains a NUL byte"));
    Ok(ExecPlan {
        argv: exec.argv,
        envp: exec.envp,
        exec_candidates: exec.exec_candidates,
        cwd: cstr("process.cwd", &exec.cwd)?,
        cwd_rel: cstr("process.cwd", &cwd_rel)?,
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        caps,
        last_cap: host.last_cap,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        rlimits,
        seccomp,
        oom_score_adj: process
            .oom_score_adj()
            .map(|n| CString::new(n.to_string()).expect("digits")),
        terminal: process.terminal().unwrap_or(false),
        console_size: process.console_size().map(|b| {
            (
                b.height().min(u16::MAX as u64) as u16,
                b.width().min(u16::MAX as u64) as u16,
            )
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::plan::testing::{base, host, spec};

    fn process(json: &str) -> Process {
        let cwd = if json.contains(r#""cwd""#) {
            ""
        } else {
            r#""cwd":"/","#
        };
        let user = if json.contains(r#""user""#) {
            ""
        } else {
            r#""user":{"uid":0,"gid":0},"#
        };
        serde_json::from_str(&format!("{{{cwd}{user}{json}}}")).unwrap()
    }

    #[test]
    fn a_request_becomes_c_strings_and_masks() {
        let s = spec(&base("", r#""args":["/x"]"#));
        let p = process(
            r#""args":["sh","-c","exit 7"],"env":["PATH=/bin"],"cwd":"/w//d",
               "user":{"uid":5,"gid":6,"additionalGids":[7],"umask":18},
               "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"]},
               "noNewPrivileges":true,"oomScoreAdj":100,"terminal":true,
               "consoleSize":{"height":24,"width":80}"#,
        );
        let e = build(&s, &p, false, &host()).unwrap();
        assert_eq!(e.exec_candidates, [c"/bin/sh".to_owned()]);
        assert_eq!(e.cwd_rel, c"w/d".to_owned());
        assert_eq!((e.uid, e.gid, e.additional_gids.clone()), (5, 6, vec![7]));
        assert_eq!(e.umask, Some(0o22));
        assert_eq!(e.caps.bounding, 1 << 5);
        assert!(e.no_new_privs && e.terminal);
        assert_eq!(e.oom_score_adj, Some(c"100".to_owned()));
        assert_eq!(e.console_size, Some((24, 80)));
        let root = build(&s, &process(r#""args":["/x"]"#), false, &host()).unwrap();
        assert_eq!(root.cwd_rel, c".".to_owned());
        assert!(root.seccomp.is_none());
    }

    #[test]
    fn fields_zctr_cannot_apply_are_refused_by_name() {
        let s = spec(&base("", r#""args":["/x"]"#));
        for (json, field) in [
            (r#""apparmorProfile":"p""#, "process.apparmorProfile"),
            (r#""selinuxLabel":"l""#, "process.selinuxLabel"),
            (
                r#""ioPriority":{"class":"IOPRIO_CLASS_RT","priority":1}"#,
                "process.ioPriority",
            ),
            (r#""args":[]"#, "process.args"),
            (r#""env":["NOEQ"]"#, "process.env"),
        ] {
            let json = if json.contains("\"args\"") {
                json.to_string()
            } else {
                format!(r#""args":["/x"],{json}"#)
            };
            let e = build(&s, &process(&json), false, &host()).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
    }

    #[test]
    fn a_notifying_seccomp_profile_is_refused() {
        let s = spec(&base(
            r#""seccomp":{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/a.sock",
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]},"#,
            r#""args":["/x"]"#,
        ));
        let e = build(&s, &process(r#""args":["/x"]"#), false, &host()).unwrap_err();
        assert_eq!(e.field, "linux.seccomp");
        let s = spec(&base(
            r#""seccomp":{"defaultAction":"SCMP_ACT_ALLOW",
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]},"#,
            r#""args":["/x"]"#,
        ));
        let e = build(&s, &process(r#""args":["/x"]"#), false, &host()).unwrap();
        assert!(e.seccomp.is_some());
    }
}
