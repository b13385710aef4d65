//! `hooks`: the six kinds of the runtime-spec, each hook's path (absolute),
//! argv, envp and timeout, checked and turned into C strings before fork (the
//! container-namespace hooks are run by the child, which allocates nothing).

use super::{cstr, err, PlanError};
use oci_spec::runtime::{ContainerState, Hook, Hooks};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::PathBuf;
use std::time::Duration;

/// When a hook runs, and in which namespaces (see docs/shim.md "Hooks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Deprecated; run with `createRuntime`, before it, in the runtime namespace.
    Prestart,
    CreateRuntime,
    /// In the container's mount namespace, after its mounts, before pivot_root.
    CreateContainer,
    /// Inside the container after `start`, just before exec.
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    /// The name the spec gives the list (`hooks.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// This kind's list in `hooks`, if any.
    pub fn of(self, hooks: &Hooks) -> &[Hook] {
        #[allow(deprecated)]
        let list = match self {
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

/// One hook, ready to exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookStep {
    pub path: CString,
    /// `args`, or the path alone when there are none.
    pub argv: Vec<CString>,
    /// Exactly `env` (nothing is inherited).
    pub envp: Vec<CString>,
    pub timeout: Option<Duration>,
}

/// The hooks of a plan, by kind.
#[derive(Debug, Default)]
pub struct HookPlan {
    pub prestart: Vec<HookStep>,
    pub create_runtime: Vec<HookStep>,
    pub create_container: Vec<HookStep>,
    pub start_container: Vec<HookStep>,
    pub poststart: Vec<HookStep>,
    pub poststop: Vec<HookStep>,
}

impl HookPlan {
    pub fn get(&self, kind: HookKind) -> &[HookStep] {
        match kind {
            HookKind::Prestart => &self.prestart,
            HookKind::CreateRuntime => &self.create_runtime,
            HookKind::CreateContainer => &self.create_container,
            HookKind::StartContainer => &self.start_container,
            HookKind::Poststart => &self.poststart,
            HookKind::Poststop => &self.poststop,
        }
    }
}

/// What the state JSON of the hooks says about the container besides its
/// status and pid. `build` fills the bundle (absolute) and annotations; the
/// caller sets the id.
#[derive(Debug, Default, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub bundle: PathBuf,
    pub annotations: Option<HashMap<String, String>>,
}

impl ContainerInfo {
    /// The state JSON hooks get on stdin.
    pub fn state(&self, status: ContainerState, pid: Option<i32>) -> Vec<u8> {
        crate::setup::hooks::state_json(
            &self.id,
            status,
            pid,
            &self.bundle,
            self.annotations.as_ref(),
        )
    }
}

/// Checks hook `i` of `kind` and makes its C strings.
pub fn step(kind: HookKind, i: usize, h: &Hook) -> Result<HookStep, PlanError> {
    let field = format!("hooks.{}[{i}]", kind.name());
    let path = h.path().to_string_lossy();
    if !path.starts_with('/') {
        return Err(err(
            format!("{field}.path"),
            format!("{path:?} is not an absolute path"),
        ));
    }
    let path = cstr(&format!("{field}.path"), &path)?;
    let argv = match h.args().as_deref() {
        None | Some([]) => vec![path.clone()],
        Some(args) => args
            .iter()
            .map(|a| cstr(&format!("{field}.args"), a))
            .collect::<Result<_, _>>()?,
    };
    let mut envp = Vec::new();
    for e in h.env().iter().flatten() {
        if !e.contains('=') {
            return Err(err(
                format!("{field}.env"),
                format!("{e:?} is not KEY=VALUE"),
            ));
        }
        envp.push(cstr(&format!("{field}.env"), e)?);
    }
    let timeout = match h.timeout() {
        None => None,
        Some(t) if t > 0 => Some(Duration::from_secs(t as u64)),
        Some(t) => {
            return Err(err(
                format!("{field}.timeout"),
                format!("{t} is not a number of seconds greater than zero"),
            ))
        }
    };
    Ok(HookStep {
        path,
        argv,
        envp,
        timeout,
    })
}

/// Checks and converts a list of hooks of one kind.
pub fn steps(kind: HookKind, hooks: &[Hook]) -> Result<Vec<HookStep>, PlanError> {
    hooks
        .iter()
        .enumerate()
        .map(|(i, h)| step(kind, i, h))
        .collect()
}

pub fn plan(hooks: Option<&Hooks>) -> Result<HookPlan, PlanError> {
    let Some(h) = hooks else {
        return Ok(HookPlan::default());
    };
    let list = |kind: HookKind| steps(kind, kind.of(h));
    Ok(HookPlan {
        prestart: list(HookKind::Prestart)?,
        create_runtime: list(HookKind::CreateRuntime)?,
        create_container: list(HookKind::CreateContainer)?,
        start_container: list(HookKind::StartContainer)?,
        poststart: list(HookKind::Poststart)?,
        poststop: list(HookKind::Poststop)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks(json: &str) -> Result<HookPlan, PlanError> {
        let h: Hooks = serde_json::from_str(json).unwrap();
        plan(Some(&h))
    }

    #[test]
    fn hooks_become_argv_envp_and_timeouts() {
        let p = hooks(
            r#"{"prestart":[{"path":"/bin/a"}],
                "createContainer":[{"path":"/bin/b","args":["b","-x"],"env":["A=1"],"timeout":3}]}"#,
        )
        .unwrap();
        assert_eq!(p.prestart[0].argv, [c"/bin/a".to_owned()]);
        assert!(p.prestart[0].envp.is_empty());
        let b = &p.get(HookKind::CreateContainer)[0];
        assert_eq!(b.argv, [c"b".to_owned(), c"-x".to_owned()]);
        assert_eq!(b.envp, [c"A=1".to_owned()]);
        assert_eq!(b.timeout, Some(Duration::from_secs(3)));
        assert!(p.poststop.is_empty());
    }

    #[test]
    fn bad_hooks_name_the_field() {
        let cases = [
            (
                r#"{"poststart":[{"path":"rel"}]}"#,
                "hooks.poststart[0].path",
            ),
            (
                r#"{"createRuntime":[{"path":"/a"},{"path":"/b","timeout":0}]}"#,
                "hooks.createRuntime[1].timeout",
            ),
            (
                r#"{"startContainer":[{"path":"/a","timeout":-1}]}"#,
                "hooks.startContainer[0].timeout",
            ),
            (
                r#"{"poststop":[{"path":"/a","env":["NOEQ"]}]}"#,
                "hooks.poststop[0].env",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(hooks(json).unwrap_err().field, field, "{json}");
        }
    }
}
