//! `exec`: a new process in a running container, through the shim's
//! `setup::exec` library. The process is the config's `process` (or
//! `--process FILE`) with the flags on top; it is zctr-oci's child: without
//! `--detach` zctr-oci waits and exits with its code, with it zctr-oci
//! returns and the process goes to the caller's subreaper, like the init.

use crate::cli::{ExecArgs, Global};
use crate::error::{Context, Error, Result};
use crate::state::{self, Dir, Status};
use oci_spec::runtime::{Capability, Process, Spec};
use std::collections::HashSet;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::str::FromStr;
use zctr_shim::setup::exec::{self, ExecRequest, Target};

/// The largest `--process` file read.
const PROCESS_MAX: u64 = 4 * 1024 * 1024;

fn read_process(path: &std::path::Path) -> Result<Process> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::new(format!("--process {}", path.display())))?
        .to_string_lossy();
    let bytes = zctr_shim::setup::readfile::read_in(dir, &name, PROCESS_MAX)
        .map_err(|e| Error::at(format!("--process {}", path.display()), e))?;
    serde_json::from_slice(&bytes).ctx(|| format!("--process {}", path.display()))
}

fn id_of(what: &str, v: &str) -> Result<u32> {
    v.parse()
        .map_err(|_| Error::new(format!("{what}: {v:?} is not a numeric id")))
}

/// The process to run: the config's (or --process), the flags on top.
pub fn merge(spec: &Spec, a: &ExecArgs) -> Result<Process> {
    let mut p = match &a.process {
        Some(path) => read_process(path)?,
        None => {
            let mut p = spec
                .process()
                .clone()
                .ok_or_else(|| Error::new("config.json has no process"))?;
            p.set_args(Some(a.args.clone()));
            p.set_terminal(Some(false));
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
            let key = match kv.find('=') {
                Some(i) => &kv[..=i],
                None => return Err(Error::new(format!("--env {kv:?} is not KEY=VALUE"))),
            };
            env.retain(|e| !e.starts_with(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(u) = &a.user {
        let mut user = p.user().clone();
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        user.set_uid(id_of("--user", uid)?);
        if let Some(g) = gid {
            user.set_gid(id_of("--user", g)?);
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        let gids = a
            .additional_gids
            .iter()
            .map(|g| id_of("--additional-gids", g))
            .collect::<Result<Vec<_>>>()?;
        user.set_additional_gids(Some(gids));
        p.set_user(user);
    }
    if !a.caps.is_empty() {
        let mut add = HashSet::new();
        for c in &a.caps {
            let name = c.to_ascii_uppercase();
            let name = if name.starts_with("CAP_") {
                name
            } else {
                format!("CAP_{name}")
            };
            add.insert(
                Capability::from_str(&name)
                    .map_err(|_| Error::new(format!("--cap {c:?}: unknown capability")))?,
            );
        }
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let with = |set: &Option<HashSet<Capability>>| {
            let mut s = set.clone().unwrap_or_default();
            s.extend(add.iter().copied());
            Some(s)
        };
        caps.set_bounding(with(caps.bounding()));
        caps.set_effective(with(caps.effective()));
        caps.set_permitted(with(caps.permitted()));
        caps.set_inheritable(with(caps.inheritable()));
        caps.set_ambient(with(caps.ambient()));
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

pub fn exec(g: &Global, a: &ExecArgs) -> Result<i32> {
    if a.process.is_some() && !a.args.is_empty() {
        return Err(Error::new(
            "exec takes either a command or --process FILE, not both",
        ));
    }
    let d = Dir::of(&g.root, &a.id)?;
    if !d.exists() {
        return Err(state::not_exist(&a.id));
    }
    let s = d.load_existing()?;
    match d.status(&s) {
        Status::Running | Status::Created => {}
        Status::Paused => return Err(Error::new("cannot exec in a paused container")),
        st => {
            return Err(Error::new(format!(
                "cannot exec in a {} container",
                st.as_str()
            )))
        }
    }
    let spec: Spec = serde_json::from_value(s.config.clone()).ctx(|| "state.json config".into())?;
    let process = merge(&spec, a)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && a.console_socket.is_none() {
        return Err(Error::new(
            "exec: a terminal (--tty or process.terminal) needs --console-socket",
        ));
    }
    if !terminal && a.console_socket.is_some() {
        return Err(Error::new(
            "exec: --console-socket without a terminal (--tty or process.terminal)",
        ));
    }
    let pty = if terminal {
        Some(crate::console::open(None)?)
    } else {
        None
    };
    let cgroup_procs = exec::cgroup_procs_of(s.pid)
        .map_err(|e| Error::at(format!("/proc/{}/cgroup", s.pid), e))?;
    let target = Target {
        init_pid: s.pid,
        init_start_time: Some(s.start_time),
        spec,
        cgroup_procs,
    };
    let req = ExecRequest {
        process,
        stdio: [0, 1, 2],
        console: pty.as_ref().map(|p| p.slave.as_raw_fd()),
        preserve_fds: a.preserve_fds,
    };
    let pid = exec::spawn(&target, &req).map_err(|e| Error::new(e.to_string()))?;
    if let (Some(p), Some(sock)) = (&pty, &a.console_socket) {
        if let Err(e) = crate::console::send(sock, &p.master, &p.name) {
            let _ = zctr_shim::setup::sys::kill(pid, libc::SIGKILL);
            let _ = exec::wait(pid);
            return Err(e);
        }
    }
    drop(pty);
    if let Some(f) = &a.pid_file {
        crate::create::write_pid_file(f, pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    exec::wait(pid).map_err(|e| Error::new(e.to_string()))
}
