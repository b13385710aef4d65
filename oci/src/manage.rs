//! The commands on an existing container: start, state, kill, delete,
//! list, ps, pause, resume; and `run`'s wait.

use crate::cgroup;
use crate::cli::Global;
use crate::error::{Context, Error, Result};
use crate::state::{self, Dir, Saved, Status};
use oci_spec::runtime::ContainerState;
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};
use zctr_cgroups::CgroupPath;
use zctr_shim::setup::hooks::HookKind;
use zctr_shim::setup::sys;

fn open(g: &Global, id: &str) -> Result<(Dir, Saved)> {
    let d = Dir::of(&g.root, id)?;
    if !d.exists() {
        return Err(state::not_exist(id));
    }
    let s = d.load_existing()?;
    Ok((d, s))
}

fn cg_path(s: &Saved) -> Result<CgroupPath> {
    CgroupPath::new(&s.cgroup).map_err(|e| Error::at("state.json cgroup", e))
}

/// Lets the init exec: one byte into the FIFO it waits on, then the FIFO
/// goes (the container is `running` from then on).
pub fn start(g: &Global, id: &str) -> Result<()> {
    let (d, s) = open(g, id)?;
    match d.status(&s) {
        Status::Created => {}
        Status::Stopped => return Err(Error::new("cannot start a container that has stopped")),
        st => {
            return Err(Error::new(format!(
                "cannot start an already running container (status {})",
                st.as_str()
            )))
        }
    }
    open_gate(&d, &s)
}

/// Writes the start byte into the FIFO, removes it, runs poststart.
fn open_gate(d: &Dir, s: &Saved) -> Result<()> {
    let id = &s.id;
    let fifo = d.fifo();
    let f = fs::OpenOptions::new()
        .write(true)
        .custom_flags_nonblock()
        .open(&fifo);
    let mut f = match f {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(Error::new(format!(
                "container {id} is not created: its init is gone"
            )))
        }
        Err(e) => return Err(Error::at(format!("open {}", fifo.display()), e)),
    };
    f.write_all(&[0])
        .ctx(|| format!("write {}", fifo.display()))?;
    drop(f);
    let _ = fs::remove_file(&fifo);
    run_hooks(s, HookKind::Poststart, ContainerState::Running);
    Ok(())
}

/// Runs the config's `poststart` or `poststop` hooks; a failure is a
/// warning, as the runtime spec says for both.
fn run_hooks(s: &Saved, kind: HookKind, status: ContainerState) {
    // Most configs have none: do not parse the whole config for nothing.
    if s.config
        .get("hooks")
        .is_none_or(|h| h.get(kind.name()).is_none())
    {
        return;
    }
    let Ok(spec) = serde_json::from_value::<oci_spec::runtime::Spec>(s.config.clone()) else {
        return;
    };
    let Some(hooks) = spec.hooks() else { return };
    let list = kind.of(hooks);
    if list.is_empty() {
        return;
    }
    let pid = (status != ContainerState::Stopped).then_some(s.pid);
    let annotations = spec.annotations().clone();
    let state =
        zctr_shim::setup::hooks::state_json(&s.id, status, pid, &s.bundle, annotations.as_ref());
    if let Err(e) = zctr_shim::setup::hooks::run(kind, list, &state) {
        crate::log::warn(&e.to_string());
    }
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

pub fn state(g: &Global, id: &str) -> Result<()> {
    let d = Dir::of(&g.root, id)?;
    if !d.exists() {
        return Err(state::not_exist(id));
    }
    let Some(s) = d.load()? else {
        // `create` has made the directory but not written state.json yet.
        let v = serde_json::json!({
            "ociVersion": state::OCI_VERSION,
            "id": id,
            "pid": 0,
            "status": Status::Creating.as_str(),
            "bundle": "",
            "rootfs": "",
            "created": "",
            "owner": "",
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    };
    let st = d.status(&s);
    println!(
        "{}",
        serde_json::to_string_pretty(&state::oci_state(&s, st)).unwrap_or_default()
    );
    Ok(())
}

/// Signals the init through a pidfd checked against the saved start time.
fn signal_init(s: &Saved, sig: i32) -> Result<()> {
    let pidfd = crate::sys::pidfd_open(s.pid).map_err(|_| Error::new("container not running"))?;
    if !crate::proc::alive(s.pid, s.start_time) {
        return Err(Error::new("container not running"));
    }
    crate::sys::pidfd_send_signal(&pidfd, sig)
        .map_err(|e| Error::new(format!("kill {}: {}", s.pid, e.desc())))
}

pub fn kill(g: &Global, id: &str, sig: i32, all: bool) -> Result<()> {
    let (d, s) = open(g, id)?;
    if all {
        let cg = cgroup::detect()?;
        let path = cg_path(&s)?;
        for pid in cg.pids(&path)? {
            let _ = sys::kill(pid, sig);
        }
        if sig == libc::SIGKILL && d.status(&s) == Status::Paused {
            let _ = cg.thaw(&path);
        }
        return Ok(());
    }
    if d.status(&s) == Status::Stopped {
        return Err(Error::new("container not running"));
    }
    signal_init(&s, sig)
}

/// Waits until the init has exited (we are not its parent: a pidfd turns
/// readable when it does), at most `limit`.
fn wait_gone(s: &Saved, limit: Duration) -> bool {
    let Ok(pidfd) = crate::sys::pidfd_open(s.pid) else {
        return true;
    };
    if !crate::proc::alive(s.pid, s.start_time) {
        return true;
    }
    let mut p = [libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match sys::poll(&mut p, left.as_millis() as i32) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return !crate::proc::alive(s.pid, s.start_time),
        }
    }
}

/// Whether the config gives the container a new pid namespace (not one
/// joined by path).
fn own_pid_namespace(s: &Saved) -> bool {
    s.config["linux"]["namespaces"]
        .as_array()
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n["type"] == "pid" && n.get("path").is_none_or(|p| p.is_null()))
        })
}

/// Kills everything in the container and removes its cgroup and state dir.
fn destroy(d: &Dir, s: &Saved) -> Result<()> {
    let cg = cgroup::detect()?;
    let path = cg_path(s)?;
    if crate::proc::alive(s.pid, s.start_time) {
        let _ = signal_init(s, libc::SIGKILL);
        // A frozen init acts on SIGKILL once thawed.
        if cgroup::frozen(&s.cgroup) {
            let _ = cg.thaw(&path);
        }
    }
    if !wait_gone(s, Duration::from_secs(10)) {
        return Err(Error::new(format!(
            "container init {} did not exit after SIGKILL",
            s.pid
        )));
    }
    // With a pid namespace of its own, the init's end killed every other
    // process of the container: nothing to look for.
    if (!own_pid_namespace(s) || crate::proc::alive(s.pid, s.start_time))
        && cg.pids(&path).is_ok_and(|p| !p.is_empty())
    {
        cg.kill_all(&path)?;
    }
    cgroup::remove(cg.as_ref(), &path)?;
    run_hooks(s, HookKind::Poststop, ContainerState::Stopped);
    d.remove()
}

pub fn delete(g: &Global, id: &str, force: bool) -> Result<()> {
    let d = Dir::of(&g.root, id)?;
    if !d.exists() {
        return Err(state::not_exist(id));
    }
    let Some(s) = d.load()? else {
        // A create that died before writing state.json: nothing runs.
        return d.remove();
    };
    match d.status(&s) {
        Status::Stopped | Status::Created => destroy(&d, &s),
        st if force => {
            let _ = st;
            destroy(&d, &s)
        }
        st => Err(Error::new(format!(
            "cannot delete container {id} that is not stopped: {}",
            st.as_str()
        ))),
    }
}

pub fn pause(g: &Global, id: &str) -> Result<()> {
    let (d, s) = open(g, id)?;
    match d.status(&s) {
        Status::Running | Status::Created => {
            cgroup::detect()?.freeze(&cg_path(&s)?)?;
            Ok(())
        }
        st => Err(Error::new(format!(
            "container {id} is not running: {}",
            st.as_str()
        ))),
    }
}

pub fn resume(g: &Global, id: &str) -> Result<()> {
    let (d, s) = open(g, id)?;
    match d.status(&s) {
        Status::Paused => {
            cgroup::detect()?.thaw(&cg_path(&s)?)?;
            Ok(())
        }
        st => Err(Error::new(format!(
            "container {id} is not paused: {}",
            st.as_str()
        ))),
    }
}

/// Every container under the root, sorted by id (directories without a
/// readable state are listed as `creating`/skipped).
fn all(root: &Path) -> Vec<(Dir, Option<Saved>)> {
    let mut ids: Vec<String> = fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids.into_iter()
        .filter_map(|id| Dir::of(root, &id).ok())
        .map(|d| {
            let s = d.load().ok().flatten();
            (d, s)
        })
        .collect()
}

pub fn list(g: &Global, json: bool, quiet: bool) -> Result<()> {
    let entries = all(&g.root);
    if quiet {
        for (d, _) in &entries {
            println!("{}", d.id);
        }
        return Ok(());
    }
    if json {
        let v: Vec<_> = entries
            .iter()
            .filter_map(|(d, s)| s.as_ref().map(|s| state::oci_state(s, d.status(s))))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    let mut rows = vec![[
        "ID".to_string(),
        "PID".into(),
        "STATUS".into(),
        "BUNDLE".into(),
        "CREATED".into(),
        "OWNER".into(),
    ]];
    for (d, s) in &entries {
        match s {
            Some(s) => {
                let st = d.status(s);
                let pid = if st == Status::Stopped { 0 } else { s.pid };
                rows.push([
                    d.id.clone(),
                    pid.to_string(),
                    st.as_str().into(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]);
            }
            None => rows.push([
                d.id.clone(),
                "0".into(),
                Status::Creating.as_str().into(),
                String::new(),
                String::new(),
                String::new(),
            ]),
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(())
}

pub fn ps(g: &Global, id: &str, json: bool, ps_args: &[String]) -> Result<()> {
    let (_, s) = open(g, id)?;
    let pids = cgroup::detect()?.pids(&cg_path(&s)?)?;
    if json {
        println!("{}", serde_json::to_string(&pids).unwrap_or_default());
        return Ok(());
    }
    // Like runc: run ps(1) and keep the header and the container's lines.
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .ctx(|| "ps".into())?;
    if !out.status.success() {
        return Err(Error::new(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::new("ps: no PID column in its output"))?;
    println!("{header}");
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{l}");
        }
    }
    Ok(())
}

/// `run` in the foreground: start, forward signals to the init, wait for it
/// (we are its parent), delete the container, return its exit code
/// (128+N when killed by signal N).
pub fn run_foreground(created: crate::create::Created) -> Result<i32> {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(created.saved.pid);
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    let _ = set.thread_block();
    if let Err(e) = open_gate(&created.dir, &created.saved) {
        let _ = destroy(&created.dir, &created.saved);
        return Err(e);
    }
    let code = loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::at("wait for the container init", e.desc())),
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(s) => {
                let _ = sys::kill(pid.as_raw(), s as i32);
            }
            Err(_) => {}
        }
    };
    destroy(&created.dir, &created.saved)?;
    Ok(code)
}
