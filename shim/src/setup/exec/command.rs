//! `zctr-shim exec --state-dir DIR [--bundle DIR] [--process FILE] [--cwd D]
//! [--env K=V]... [--tty] [--preserve-fds N] [--report-fd N] [-- CMD ARG...]`: run a
//! process in a container that `zctr-shim create` made, by hand. The init comes from
//! `STATE-DIR/status.json`, the config from `BUNDLE/config.json` (default
//! `STATE-DIR/bundle`, the manager's layout). The process is the config's
//! `process` with CMD as its args (or `--process FILE`, a runtime-spec
//! `process` object), `--cwd` and `--env` on top. Waits for it and exits
//! with its code (128+N when killed by signal N).
//!
//! With `--report-fd N` (the monitor's `Exec`, docs/shim.md "Sessions") it
//! does not wait: the process gets this command's own stdio (with `--tty`,
//! fd 0 is the pty slave the monitor opened in the container's devpts and
//! becomes its controlling terminal), `ok PID` or `err ERRNO MESSAGE` goes
//! to fd N ([`zctr_shim_core::exec_report`]) and it exits 0 or 1. The
//! process, its child, then passes to the monitor (the subreaper).

use super::{ExecError, ExecRequest, Target};
use crate::log;
use crate::setup::readfile;
use common::layout;
use common::state::{ShimStateName, ShimStatus};
use oci_spec::runtime::{Process, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The largest config.json, status.json and process file read.
const CONFIG_MAX: u64 = 4 * 1024 * 1024;
const STATUS_MAX: u64 = 64 * 1024;

/// The command line of `zctr-shim exec`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ExecArgs {
    pub state_dir: PathBuf,
    pub bundle: Option<PathBuf>,
    pub process: Option<PathBuf>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub tty: bool,
    /// Fds 3..3+N of `zctr-shim exec` stay open in the process.
    pub preserve_fds: u32,
    /// Monitor child mode: report on this fd and exit, do not wait.
    pub report_fd: Option<i32>,
    pub args: Vec<String>,
}

/// Parses the words after `exec` (logging flags go to `log`).
pub fn parse(
    it: &mut dyn Iterator<Item = String>,
    log: &mut log::Options,
) -> Result<ExecArgs, String> {
    let mut a = ExecArgs::default();
    let mut state_dir = None;
    let value = |it: &mut dyn Iterator<Item = String>, flag: &str| {
        it.next().ok_or_else(|| format!("{flag} needs a value"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--state-dir" => state_dir = Some(PathBuf::from(value(it, "--state-dir")?)),
            "--bundle" | "-b" => a.bundle = Some(PathBuf::from(value(it, "--bundle")?)),
            "--process" | "-p" => a.process = Some(PathBuf::from(value(it, "--process")?)),
            "--cwd" => a.cwd = Some(value(it, "--cwd")?),
            "--env" | "-e" => {
                let v = value(it, "--env")?;
                if !v.contains('=') {
                    return Err(format!("--env: {v:?} is not KEY=VALUE"));
                }
                a.env.push(v);
            }
            "--tty" | "-t" => a.tty = true,
            "--preserve-fds" => {
                let v = value(it, "--preserve-fds")?;
                a.preserve_fds = v
                    .parse()
                    .map_err(|_| format!("--preserve-fds: {v:?} is not a number"))?;
            }
            "--report-fd" => {
                let v = value(it, "--report-fd")?;
                a.report_fd = Some(
                    v.parse()
                        .ok()
                        .filter(|&fd: &i32| fd > 2)
                        .ok_or_else(|| format!("--report-fd: {v:?} is not an fd above 2"))?,
                );
            }
            "--debug" => log.debug = true,
            "--log-level" => {
                let v = value(it, "--log-level")?;
                log.level = Some(log::parse_level(&v).map_err(|e| format!("--log-level: {e}"))?);
            }
            "--log-format" => {
                let v = value(it, "--log-format")?;
                log.format = Some(log::parse_format(&v).map_err(|e| format!("--log-format: {e}"))?);
            }
            "--" => {
                a.args.extend(&mut *it);
            }
            a if a.starts_with('-') => return Err(format!("unknown option {a:?}")),
            _ => {
                a.args.push(arg);
                a.args.extend(&mut *it);
            }
        }
    }
    a.state_dir = state_dir.ok_or("exec needs --state-dir")?;
    if a.args.is_empty() && a.process.is_none() {
        return Err("exec needs a command (after --) or --process FILE".into());
    }
    if !a.args.is_empty() && a.process.is_some() {
        return Err("exec takes either a command or --process FILE, not both".into());
    }
    Ok(a)
}

/// Reads `path` (a file a client named) with the shim's rules for those.
fn read_named(path: &Path, cap: u64) -> Result<Vec<u8>, ExecError> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(d), Some(n)) => (
            if d.as_os_str().is_empty() {
                Path::new(".")
            } else {
                d
            },
            n.to_string_lossy().into_owned(),
        ),
        _ => {
            return Err(ExecError::new(
                "read",
                libc::EINVAL,
                format!("{}: not a file name", path.display()),
            ))
        }
    };
    readfile::read_in(dir, &name, cap).map_err(|e| ExecError::new("read", e.errno, e))
}

/// A JSON error about `path`.
fn json_err(path: &Path) -> impl Fn(serde_json::Error) -> ExecError + '_ {
    move |e| ExecError::new("read", libc::EINVAL, format!("{}: {e}", path.display()))
}

/// The process to run: the config's (or `--process`), with the flags on top.
pub fn merge(spec: &Spec, a: &ExecArgs) -> Result<Process, ExecError> {
    let mut p = match &a.process {
        Some(path) => serde_json::from_slice::<Process>(&read_named(path, CONFIG_MAX)?)
            .map_err(json_err(path))?,
        None => {
            let mut p = spec.process().clone().ok_or_else(|| {
                ExecError::new("config", libc::EINVAL, "config.json has no process")
            })?;
            p.set_args(Some(a.args.clone()));
            p.set_terminal(Some(a.tty));
            p.set_console_size(None);
            p
        }
    };
    if a.tty {
        p.set_terminal(Some(true));
    }
    if let Some(cwd) = &a.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &a.env {
            let key = &kv[..=kv.find('=').expect("checked by parse")];
            env.retain(|e| !e.starts_with(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    Ok(p)
}

/// The container of `state_dir`: its init from status.json, refused when
/// it is stopped.
fn target(a: &ExecArgs) -> Result<Target, ExecError> {
    let status_path = a.state_dir.join(layout::STATUS_FILE);
    let text = readfile::read_in(&a.state_dir, layout::STATUS_FILE, STATUS_MAX)
        .map_err(|e| ExecError::new("status", e.errno, e))?;
    let status: ShimStatus = serde_json::from_slice(&text).map_err(json_err(&status_path))?;
    let init = match (status.state, status.init) {
        (ShimStateName::Stopped, _) | (_, None) => {
            return Err(ExecError::new(
                "container state",
                libc::ESRCH,
                format!("container {} is stopped", status.id),
            ))
        }
        (_, Some(init)) => init,
    };
    let bundle = a
        .bundle
        .clone()
        .unwrap_or_else(|| layout::bundle_dir(&a.state_dir));
    let config = readfile::read_in(&bundle, layout::CONFIG_FILE, CONFIG_MAX)
        .map_err(|e| ExecError::new("config", e.errno, e))?;
    let config_path = layout::config_file(&bundle);
    let spec: Spec = serde_json::from_slice(&config).map_err(json_err(&config_path))?;
    let mut t = Target::for_init(init.pid, spec)?;
    t.init_start_time = Some(init.start_time);
    Ok(t)
}

/// Runs `zctr-shim exec`; returns the exit code.
pub fn run(a: &ExecArgs) -> i32 {
    if let Some(fd) = a.report_fd {
        return run_for_monitor(a, fd);
    }
    match run_inner(a) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(step = e.step.as_str(), errno = e.errno, "{e}");
            match (e.step.as_str(), e.errno) {
                ("find executable" | "exec", libc::ENOENT) => 127,
                ("find executable" | "exec", _) => 126,
                _ => 1,
            }
        }
    }
}

fn run_inner(a: &ExecArgs) -> Result<i32, ExecError> {
    let target = target(a)?;
    let process = merge(&target.spec, a)?;
    let pty = if process.terminal().unwrap_or(false) {
        Some(super::tty::Pty::open()?)
    } else {
        None
    };
    let req = ExecRequest {
        process,
        stdio: [0, 1, 2],
        console: pty.as_ref().map(|p| p.slave.as_raw_fd()),
        preserve_fds: a.preserve_fds,
    };
    let pid = super::spawn(&target, &req)?;
    tracing::debug!(pid, "process exec'd");
    if let Some(mut pty) = pty {
        drop(std::mem::replace(&mut pty.slave, dev_null()?));
        pty.relay();
    }
    super::wait(pid)
}

/// The monitor's `Exec`: starts the process on this command's stdio (fd 0
/// its terminal with `--tty`), reports on `fd` and returns without waiting.
fn run_for_monitor(a: &ExecArgs, fd: i32) -> i32 {
    use zctr_shim_core::exec_report;
    let started = target(a).and_then(|target| {
        let process = merge(&target.spec, a)?;
        let req = ExecRequest {
            process,
            stdio: [0, 1, 2],
            console: a.tty.then_some(0),
            preserve_fds: a.preserve_fds,
        };
        super::spawn(&target, &req)
    });
    let (report, code) = match started {
        Ok(pid) => (exec_report::ok(pid), 0),
        Err(e) => (exec_report::err(e.errno, &e.to_string()), 1),
    };
    // Nobody to tell when the monitor is gone: the exit code says it all.
    let _ = crate::setup::sys::write_all(fd, report.as_bytes());
    code
}

fn dev_null() -> Result<OwnedFd, ExecError> {
    std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| ExecError::new("tty", e.raw_os_error().unwrap_or(0), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<ExecArgs, String> {
        let mut it = s.split_whitespace().map(String::from);
        parse(&mut it, &mut log::Options::default())
    }

    #[test]
    fn the_command_line() {
        let a = p("--state-dir /s --env A=1 -e B=2 --cwd /w -t -- sh -c x").unwrap();
        assert_eq!(a.state_dir, PathBuf::from("/s"));
        assert_eq!(a.env, ["A=1", "B=2"]);
        assert_eq!(a.cwd.as_deref(), Some("/w"));
        assert!(a.tty);
        assert_eq!(a.args, ["sh", "-c", "x"]);
        // Options after the command belong to it.
        let a = p("--state-dir /s ls -l").unwrap();
        assert_eq!(a.args, ["ls", "-l"]);
        for (args, needle) in [
            ("--state-dir /s", "needs a command"),
            ("-- true", "--state-dir"),
            ("--state-dir /s --env X -- true", "KEY=VALUE"),
            ("--state-dir /s --process /p -- true", "not both"),
            ("--state-dir /s --frob -- true", "--frob"),
            ("--state-dir /s --report-fd 1 -- true", "--report-fd"),
        ] {
            let e = p(args).unwrap_err();
            assert!(e.contains(needle), "{args}: {e}");
        }
    }

    #[test]
    fn flags_go_on_top_of_the_configs_process() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},
                "args":["init"],"env":["PATH=/bin","A=old"],"terminal":true}}"#,
        )
        .unwrap();
        let a = p("--state-dir /s --env A=new --cwd /tmp -- sh").unwrap();
        let m = merge(&spec, &a).unwrap();
        assert_eq!(m.args().as_deref(), Some(&["sh".to_string()][..]));
        assert_eq!(
            m.env().as_deref(),
            Some(&["PATH=/bin".to_string(), "A=new".to_string()][..])
        );
        assert_eq!(m.cwd(), Path::new("/tmp"));
        assert_eq!(m.terminal(), Some(false));
    }
}
