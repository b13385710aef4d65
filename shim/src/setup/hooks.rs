//! Running the runtime-namespace hooks (`prestart`, `createRuntime`,
//! `poststart`, `poststop`) from the runtime's own process: each gets the
//! container's state JSON on stdin, exactly its `env`, its `args` (argv[0]
//! included), and is killed when its `timeout` passes. Hooks of a kind run
//! in order; the first failure stops the list. The container-namespace hooks
//! (`createContainer`, `startContainer`) are run by the container child
//! itself (see `child::hooks`), from the same [`HookStep`]s.

pub use crate::setup::plan::hooks::{HookKind, HookStep};
use crate::setup::sys;
use oci_spec::runtime::{ContainerState, Hook, State, StateBuilder};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A hook that could not be run or failed: which one, and why.
#[derive(Debug, thiserror::Error)]
#[error("hook {kind}[{index}] {path}: {reason}")]
pub struct HookError {
    /// `createRuntime`, ...
    pub kind: &'static str,
    pub index: usize,
    pub path: String,
    pub reason: String,
    /// The errno when the hook could not be started, else 0.
    pub errno: i32,
}

/// How often a running hook is looked at while its timeout runs.
const POLL: Duration = Duration::from_millis(5);

/// Runs `hooks` of `kind` in order with `state_json` on their stdin; the
/// first that cannot start, exits non-zero, dies of a signal or outlives its
/// timeout (then it is killed) fails the whole call. Paths and timeouts are
/// checked as in `config.json` (an error names the hook).
pub fn run(kind: HookKind, hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    let steps = crate::setup::plan::hooks::steps(kind, hooks).map_err(|e| HookError {
        kind: kind.name(),
        index: 0,
        path: String::new(),
        reason: e.to_string(),
        errno: libc::EINVAL,
    })?;
    run_steps(kind, &steps, state_json)
}

/// [`run`] for hooks already checked by the plan.
pub fn run_steps(kind: HookKind, steps: &[HookStep], state_json: &[u8]) -> Result<(), HookError> {
    for (index, h) in steps.iter().enumerate() {
        let fail = |reason: String, errno: i32| HookError {
            kind: kind.name(),
            index,
            path: h.path.to_string_lossy().into_owned(),
            reason,
            errno,
        };
        run_one(h, state_json).map_err(|(reason, errno)| fail(reason, errno))?;
    }
    Ok(())
}

/// `prestart` then `createRuntime`, with the state "creating" and the
/// container's pid: called by `launch` once the parent's side of setup is
/// done, before the child goes on to its mounts. A failure fails `create`.
pub fn run_create_runtime(
    plan: &crate::setup::plan::Plan,
    pid: i32,
) -> Result<(), zctr_shim_core::SetupError> {
    let kinds = [HookKind::Prestart, HookKind::CreateRuntime];
    if kinds.iter().all(|&k| plan.hooks.get(k).is_empty()) {
        return Ok(());
    }
    let state = plan.container.state(ContainerState::Creating, Some(pid));
    for kind in kinds {
        run_steps(kind, plan.hooks.get(kind), &state).map_err(|e| {
            zctr_shim_core::SetupError::new(
                &format!("hook {}[{}]", e.kind, e.index),
                e.errno,
                format!("{}: {}", e.path, e.reason),
            )
        })?;
    }
    Ok(())
}

/// Stdin for a hook: a memfd holding the state (a hook that does not read
/// its stdin cannot block the runtime, however long the state).
fn state_file(state_json: &[u8]) -> std::io::Result<std::fs::File> {
    let fd = sys::memfd(c"zctr-hook-state").map_err(std::io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    f.write_all(state_json)?;
    sys::rewind(std::os::fd::AsRawFd::as_raw_fd(&f)).map_err(std::io::Error::from)?;
    Ok(f)
}

fn run_one(h: &HookStep, state_json: &[u8]) -> Result<(), (String, i32)> {
    let io =
        |what: &str, e: std::io::Error| (format!("{what}: {e}"), e.raw_os_error().unwrap_or(0));
    let stdin = state_file(state_json).map_err(|e| io("state on stdin", e))?;
    // The hook's output goes to the runtime's stderr (its diagnostics), never
    // into the runtime's own stdout.
    let stdout = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| io("stdout", e))?;
    let mut cmd = Command::new(OsStr::from_bytes(h.path.to_bytes()));
    cmd.arg0(OsStr::from_bytes(h.argv[0].to_bytes()))
        .args(h.argv[1..].iter().map(|a| OsStr::from_bytes(a.to_bytes())))
        .env_clear()
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::inherit());
    for e in &h.envp {
        let e = e.to_bytes();
        let eq = e.iter().position(|&b| b == b'=').unwrap_or(e.len());
        cmd.env(
            OsStr::from_bytes(&e[..eq]),
            OsStr::from_bytes(e.get(eq + 1..).unwrap_or_default()),
        );
    }
    let mut child = cmd.spawn().map_err(|e| io("cannot run", e))?;
    let deadline = h.timeout.map(|t| (t, Instant::now() + t));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| io("wait", e))? {
            return match (status.code(), status.signal()) {
                (Some(0), _) => Ok(()),
                (Some(c), _) => Err((format!("exited with status {c}"), 0)),
                (_, Some(s)) => Err((format!("killed by signal {s}"), 0)),
                _ => Err((format!("ended: {status}"), 0)),
            };
        }
        if let Some((t, at)) = deadline {
            if Instant::now() >= at {
                let _ = child.kill();
                let _ = child.wait();
                return Err((
                    format!("timed out after {} s (killed)", t.as_secs()),
                    libc::ETIMEDOUT,
                ));
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The state JSON the runtime-spec gives hooks on stdin ("state" in
/// runtime.md): ociVersion, id, status, pid, bundle, annotations.
pub fn state_json(
    id: &str,
    status: ContainerState,
    pid: Option<i32>,
    bundle: &Path,
    annotations: Option<&HashMap<String, String>>,
) -> Vec<u8> {
    let mut b = StateBuilder::default()
        .version(oci_spec::runtime::VERSION.to_string())
        .id(id)
        .status(status)
        .bundle(bundle);
    if let Some(pid) = pid {
        b = b.pid(pid);
    }
    if let Some(a) = annotations {
        b = b.annotations(a.clone());
    }
    let state: State = b.build().expect("every field of the state is set");
    serde_json::to_vec(&state).expect("a state serialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_state_names_the_container() {
        let s = state_json(
            "c1",
            ContainerState::Creating,
            Some(42),
            Path::new("/b"),
            None,
        );
        let v: serde_json::Value = serde_json::from_slice(&s).unwrap();
        assert_eq!(v["id"], "c1");
        assert_eq!(v["status"], "creating");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["bundle"], "/b");
        assert!(v["ociVersion"].as_str().unwrap().starts_with('1'));
    }

    #[test]
    fn a_hook_gets_the_state_its_args_and_env() {
        let dir = std::env::temp_dir().join(format!("zctr-hook-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {0}; echo \"$0 $1 $X\" >> {0}","a0","a1"],"env":["X=y"]}}"#,
            out.display()
        ));
        run(HookKind::Poststart, &[h], b"{\"id\":\"c\"}").unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, "{\"id\":\"c\"}a0 a1 y\n");
    }

    #[test]
    fn failures_and_timeouts_name_the_hook() {
        let ok = hook(r#"{"path":"/bin/true"}"#);
        let bad = hook(r#"{"path":"/bin/sh","args":["sh","-c","exit 3"]}"#);
        let e = run(HookKind::CreateRuntime, &[ok.clone(), bad], b"{}").unwrap_err();
        assert_eq!((e.kind, e.index), ("createRuntime", 1));
        assert_eq!(
            e.to_string(),
            "hook createRuntime[1] /bin/sh: exited with status 3"
        );
        let slow = hook(r#"{"path":"/bin/sleep","args":["sleep","10"],"timeout":1}"#);
        let t = Instant::now();
        let e = run(HookKind::Poststop, &[slow], b"{}").unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(e.errno, libc::ETIMEDOUT, "{e}");
        let e = run(
            HookKind::Poststop,
            &[hook(r#"{"path":"/nonexistent-zctr"}"#)],
            b"{}",
        )
        .unwrap_err();
        assert_eq!(e.errno, libc::ENOENT, "{e}");
        let e = run(HookKind::Poststop, &[hook(r#"{"path":"rel"}"#)], b"{}").unwrap_err();
        assert!(e.reason.contains("hooks.poststop[0].path"), "{e}");
    }
}
