//! What `zctr-shim create|run` itself cannot do with a plan that a front end
//! could (zctr-oci has a console socket and runs at `delete`):
//! `process.terminal` (for `run`: `create` relays the container's own pty
//! as session 0) and `hooks.poststop` are refused, `hooks.poststart`
//! is kept in the state directory for `zctr-shim start` (refused by `run`,
//! which starts the container itself).

use crate::setup::hooks::{self, HookKind};
use crate::setup::plan::Plan;
use oci_spec::runtime::{ContainerState, Hook, Hooks};
use std::path::Path;
use zctr_shim_core::SetupError;

/// Where `create` keeps the poststart hooks for `start`.
pub const POSTSTART_FILE: &str = "poststart.json";
/// The largest poststart.json `start` reads.
const POSTSTART_MAX: u64 = 1024 * 1024;

fn refuse(field: &str, reason: &str) -> SetupError {
    SetupError::new("config", libc::EINVAL, format!("{field}: {reason}"))
}

/// Refuses what zctr-shim cannot apply; for `create` (not `run`, which
/// starts the container itself), writes poststart.json for `start`.
pub fn check(
    plan: &Plan,
    hooks: Option<&Hooks>,
    state_dir: Option<&Path>,
    run: bool,
) -> Result<(), SetupError> {
    if plan.attrs.terminal && run {
        return Err(refuse(
            "process.terminal",
            "zctr-shim run gives the container the caller's stdio, no terminal of its own: \
             set it to false, or use create (session 0 relays a pty) or zctr-oci",
        ));
    }
    if !plan.hooks.poststop.is_empty() {
        return Err(refuse(
            "hooks.poststop",
            "zctr-shim's monitor runs no programs when the container stops \
             (zctr-oci runs them at delete)",
        ));
    }
    let poststart = hooks.map_or(&[][..], |h| HookKind::Poststart.of(h));
    if poststart.is_empty() {
        return Ok(());
    }
    let Some(dir) = state_dir.filter(|_| !run) else {
        return Err(refuse(
            "hooks.poststart",
            "zctr-shim run starts the container itself and cannot run them: use create + start",
        ));
    };
    let state: serde_json::Value =
        serde_json::from_slice(&plan.container.state(ContainerState::Created, None))
            .map_err(|e| refuse("hooks.poststart", &e.to_string()))?;
    // The state's pid and status are filled in by `start`.
    let record = serde_json::json!({ "state": state, "hooks": poststart });
    let text =
        serde_json::to_vec(&record).map_err(|e| refuse("hooks.poststart", &e.to_string()))?;
    std::fs::write(dir.join(POSTSTART_FILE), text).map_err(|e| SetupError::io("poststart.json", &e))
}

/// Runs the poststart hooks `create` kept, after `start` succeeded; a
/// failure is a warning only (runtime-spec: "the runtime MUST log a
/// warning, but the remaining hooks and lifecycle continue").
pub fn run_poststart(dir: &Path, pid: Option<i32>) {
    let text = match crate::setup::readfile::read_in(dir, POSTSTART_FILE, POSTSTART_MAX) {
        Ok(t) => t,
        Err(e) if e.errno == libc::ENOENT => return,
        Err(e) => {
            tracing::warn!(state_dir = %dir.display(), "poststart hooks not run: {e}");
            return;
        }
    };
    let parsed = serde_json::from_slice::<serde_json::Value>(&text).and_then(|mut v| {
        let hooks: Vec<Hook> = serde_json::from_value(v["hooks"].take())?;
        Ok((v["state"].take(), hooks))
    });
    let (mut state, hooks) = match parsed {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(state_dir = %dir.display(), "poststart hooks not run: {POSTSTART_FILE}: {e}");
            return;
        }
    };
    state["status"] = "running".into();
    if let Some(pid) = pid {
        state["pid"] = pid.into();
    }
    let state = serde_json::to_vec(&state).unwrap_or_default();
    for (i, h) in hooks.iter().enumerate() {
        // One at a time, so that a failing one does not stop the rest.
        if let Err(e) = hooks::run(HookKind::Poststart, std::slice::from_ref(h), &state) {
            tracing::warn!(state_dir = %dir.display(), "hook poststart[{i}]: {}: {}", e.path, e.reason);
        }
    }
}
