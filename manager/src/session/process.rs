//! The `process` an exec runs: the container's own `config.json` process
//! (env, capabilities, rlimits, noNewPrivileges, user, ...) with the
//! request's overrides, written to a private file in the container's state
//! directory for `zctr-shim exec` (docs/protocol.md, "Sessions").

use super::users::{self, UserDb, UserError};
use oci_spec::runtime::{BoxBuilder, Process, Spec};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Body of `POST /v1/containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// The command and its arguments (the first is looked up in the
    /// container's `PATH` by `zctr-shim exec`).
    pub cmd: Vec<String>,
    /// `K=V` entries, added to (or replacing) the container's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// `uid[:gid]` or `name[:group]` inside the container.
    #[serde(default)]
    pub user: Option<String>,
    /// Absolute working directory inside the container.
    #[serde(default)]
    pub workdir: Option<String>,
    /// A terminal (one output stream; `Resize` applies).
    #[serde(default)]
    pub tty: bool,
    /// Keep the process's input open for the client's `Input` frames.
    #[serde(default)]
    pub stdin: bool,
    /// Nobody attaches: answer `{session, pid}` at once; output goes to the
    /// container's log.
    #[serde(default)]
    pub detach: bool,
    /// The terminal's initial `[rows, cols]` (only with `tty`).
    #[serde(default)]
    pub size: Option<(u16, u16)>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("exec request: {0}")]
    Invalid(String),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("reading the container's {}: {source}", path.display())]
    Spec {
        path: PathBuf,
        source: oci_spec::OciSpecError,
    },
    #[error("the container's {} has no process", path.display())]
    NoProcess { path: PathBuf },
    #[error("writing the exec process file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn invalid(m: impl Into<String>) -> ProcessError {
    ProcessError::Invalid(m.into())
}

impl ExecRequest {
    /// Refuses what cannot be applied (never ignored).
    pub fn validate(&self) -> Result<(), ProcessError> {
        if self.cmd.is_empty() || self.cmd[0].is_empty() {
            return Err(invalid("cmd: a command is required"));
        }
        let nul = |s: &String| s.contains('\0');
        if self.cmd.iter().any(nul) || self.env.iter().any(nul) {
            return Err(invalid("cmd and env may not contain NUL bytes"));
        }
        for e in &self.env {
            match e.split_once('=') {
                Some((k, _)) if !k.is_empty() => {}
                _ => return Err(invalid(format!("env: {e:?} is not K=V"))),
            }
        }
        if let Some(w) = &self.workdir {
            if !w.starts_with('/') || w.contains('\0') {
                return Err(invalid(format!("workdir: {w:?} is not an absolute path")));
            }
        }
        match self.size {
            Some(_) if !self.tty => return Err(invalid("size: only with tty")),
            Some((r, c)) if r == 0 || c == 0 => {
                return Err(invalid("size: rows and cols must be positive"))
            }
            _ => {}
        }
        if self.detach && self.stdin {
            return Err(invalid(
                "stdin with detach: nobody would be there to write to it",
            ));
        }
        Ok(())
    }
}

/// `base` with `over` applied: a key of `over` replaces the same key.
fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut out: Vec<String> = base
        .iter()
        .filter(|b| !over.iter().any(|o| key(o) == key(b)))
        .cloned()
        .collect();
    out.extend(over.iter().cloned());
    out
}

/// The container's process with the request's overrides.
pub fn build(req: &ExecRequest, config: &Path, db: &dyn UserDb) -> Result<Process, ProcessError> {
    req.validate()?;
    let spec = Spec::load(config).map_err(|source| ProcessError::Spec {
        path: config.to_path_buf(),
        source,
    })?;
    let mut p = spec
        .process()
        .clone()
        .ok_or_else(|| ProcessError::NoProcess {
            path: config.to_path_buf(),
        })?;
    p.set_args(Some(req.cmd.clone()));
    let env = merge_env(p.env().as_deref().unwrap_or(&[]), &req.env);
    p.set_env(Some(env));
    if let Some(w) = &req.workdir {
        p.set_cwd(PathBuf::from(w));
    }
    if let Some(u) = &req.user {
        let (uid, gid) = users::resolve(u, db)?;
        let mut user = p.user().clone();
        user.set_uid(uid);
        user.set_gid(gid);
        // The supplementary groups were the container user's.
        user.set_additional_gids(None);
        p.set_user(user);
    }
    p.set_terminal(Some(req.tty));
    let size = match req.size {
        Some((rows, cols)) if req.tty => Some(
            BoxBuilder::default()
                .height(u32::from(rows))
                .width(u32::from(cols))
                .build()
                .map_err(|e| invalid(format!("size: {e}")))?,
        ),
        _ => None,
    };
    p.set_console_size(size);
    Ok(p)
}

/// A process file in a state directory, removed when dropped (once the
/// monitor answered: `zctr-shim exec` read it before `ExecStarted`).
#[derive(Debug)]
pub struct ProcessFile {
    pub path: PathBuf,
}

impl Drop for ProcessFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes `p` to a new private file (`0600`, never an existing one) in `dir`.
pub fn write(dir: &Path, p: &Process) -> Result<ProcessFile, ProcessError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("exec-{}-{n}.json", std::process::id()));
    let err = |source| ProcessError::Write {
        path: path.clone(),
        source,
    };
    let bytes = serde_json::to_vec(p).map_err(|e| err(e.into()))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(err)?;
    let file = ProcessFile { path: path.clone() };
    f.write_all(&bytes).map_err(err)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safe_open::SafeOpenError;

    struct NoDb;
    impl UserDb for NoDb {
        fn passwd(&self) -> Result<String, SafeOpenError> {
            Ok("app:x:1000:1001::/:/bin/sh\n".into())
        }
        fn group(&self) -> Result<String, SafeOpenError> {
            Ok(String::new())
        }
    }

    fn req(cmd: &[&str]) -> ExecRequest {
        ExecRequest {
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn requests_that_cannot_be_applied_are_refused() {
        assert!(req(&[]).validate().is_err());
        assert!(req(&["sh"]).validate().is_ok());
        let mut r = req(&["sh"]);
        r.env = vec!["NOEQUALS".into()];
        assert!(r.validate().is_err());
        let mut r = req(&["sh"]);
        r.workdir = Some("rel".into());
        assert!(r.validate().is_err());
        let mut r = req(&["sh"]);
        r.size = Some((24, 80));
        assert!(r.validate().is_err(), "size without tty");
        r.tty = true;
        assert!(r.validate().is_ok());
        r.size = Some((0, 80));
        assert!(r.validate().is_err());
        let mut r = req(&["sh"]);
        r.detach = true;
        r.stdin = true;
        assert!(r.validate().is_err());
        let e = serde_json::from_str::<ExecRequest>(r#"{"cmd":["sh"],"bogus":1}"#).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let r: ExecRequest =
            serde_json::from_str(r#"{"cmd":["sh"],"tty":true,"size":[40,120]}"#).unwrap();
        assert_eq!(r.size, Some((40, 120)));
    }

    #[test]
    fn the_containers_process_gets_the_overrides() {
        let dir = crate::testutil::TempDir::new("exec-process");
        let config = dir.path().join("config.json");
        let mut spec = Spec::default();
        let mut p = Process::default();
        p.set_env(Some(vec!["PATH=/bin".into(), "A=1".into()]));
        p.set_no_new_privileges(Some(true));
        spec.set_process(Some(p));
        spec.save(&config).unwrap();
        let mut r = req(&["id", "-u"]);
        r.env = vec!["A=2".into(), "B=3".into()];
        r.user = Some("app".into());
        r.workdir = Some("/tmp".into());
        r.tty = true;
        r.size = Some((24, 80));
        let p = build(&r, &config, &NoDb).unwrap();
        assert_eq!(p.args().as_deref().unwrap(), ["id", "-u"]);
        assert_eq!(p.env().as_deref().unwrap(), ["PATH=/bin", "A=2", "B=3"]);
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1001));
        assert_eq!(p.no_new_privileges(), Some(true));
        assert_eq!(p.terminal(), Some(true));
        let size = p.console_size().unwrap();
        assert_eq!((size.height(), size.width()), (24, 80));
        let f = write(dir.path(), &p).unwrap();
        let back: Process = serde_json::from_slice(&std::fs::read(&f.path).unwrap()).unwrap();
        assert_eq!(back.args(), p.args());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&f.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = f.path.clone();
        drop(f);
        assert!(!path.exists());
    }
}
