//! The shim's modes, wired together: parse → plan → create → monitor.

use crate::cli::{Command, CreateArgs, USAGE};
use crate::client;
use crate::log;
use crate::setup::launch::{self, Stdio};
use crate::setup::plan::{self, HostFacts};
use crate::setup::sys;
use common::layout::{self, LOG_FILE, LOG_FILE_OLD, SHIM_LOG, SOCKET_FILE};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use zctr_shim_core::handoff::{self, Outputs, Prepared};
use zctr_shim_core::logfile::LogFile;
use zctr_shim_core::{signals, SetupError};

/// The largest config.json the shim reads (a generated one is a few KiB).
const CONFIG_MAX: u64 = 4 * 1024 * 1024;

/// Runs one command line; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let cmd = match crate::cli::parse_with_log(args) {
        Ok((c, opts)) => {
            log::init(&opts);
            c
        }
        Err(e) => {
            log::init(&log::Options::default());
            tracing::error!("{e}");
            return 2;
        }
    };
    match cmd {
        Command::Help => {
            print!("{USAGE}");
            0
        }
        Command::Version => {
            // The same build id as the daemon's (`zctr version` compares them).
            let build = option_env!("ZCTR_BUILD").unwrap_or("dev");
            println!("zctr-shim {} (build {build})", env!("CARGO_PKG_VERSION"));
            0
        }
        Command::Create(a) => create_or_run(a, false),
        Command::Run(a) => create_or_run(a, true),
        Command::Start { state_dir } => client::start(&state_dir),
        Command::Kill { state_dir, signal } => client::kill(&state_dir, signal),
        Command::State { state_dir } => client::state(&state_dir),
        Command::Exec(a) => crate::setup::exec::command::run(&a),
    }
}

fn default_id(bundle: &Path) -> String {
    bundle
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "container".into())
}

/// `create` returns once the container is created (or failed), like `runc
/// create`; the shim itself goes on in a forked child. The caller learns the
/// outcome from the exit code and, in detail, from the control fd.
fn background(id: &str) -> Result<Option<std::os::fd::OwnedFd>, i32> {
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(id, step = "pipe", errno = e as i32, "pipe: {}", e.desc());
            return Err(1);
        }
    };
    // SAFETY: the shim is single-threaded (it never starts a thread) and has
    // set nothing up yet; the child goes on with the ordinary code below.
    match unsafe { sys::fork() } {
        Err(e) => {
            tracing::error!(id, step = "fork", errno = e as i32, "fork: {}", e.desc());
            Err(1)
        }
        Ok(0) => {
            drop(r);
            Ok(Some(w))
        }
        Ok(_) => {
            drop(w);
            let mut msg = Vec::new();
            let _ = std::io::Read::read_to_end(&mut fs::File::from(r), &mut msg);
            match msg.strip_prefix(b"ok") {
                Some(_) => Err(0),
                None => {
                    let text = String::from_utf8_lossy(&msg);
                    if text.is_empty() {
                        tracing::error!(id, "the shim died during setup");
                    } else {
                        tracing::error!(id, "setup failed: {text}");
                    }
                    Err(1)
                }
            }
        }
    }
}

fn create_or_run(a: CreateArgs, foreground: bool) -> i32 {
    let mut ready = if foreground {
        None
    } else {
        match background(a.id.as_deref().unwrap_or_default()) {
            Ok(w) => w,
            Err(code) => return code,
        }
    };
    // The ready pipe closes (EOF for the waiting parent) when this process ends.
    create_or_run_here(a, foreground, &mut ready)
}

fn create_or_run_here(
    a: CreateArgs,
    foreground: bool,
    ready: &mut Option<std::os::fd::OwnedFd>,
) -> i32 {
    // SAFETY: `--control-fd` names an fd the caller passed to this process;
    // nothing in it has wrapped that number before.
    let control = a.control_fd.map(|fd| unsafe { sys::adopt_stream(fd) });
    let mut control = match control.transpose() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                errno = e as i32,
                "--control-fd {}: {}",
                a.control_fd.unwrap_or(-1),
                e.desc()
            );
            return 2;
        }
    };
    match prepare_and_monitor(&a, foreground, &mut control, ready) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(
                id = %a.id.clone().unwrap_or_else(|| default_id(&a.bundle)),
                step = e.step.as_str(),
                errno = e.errno,
                "setup failed: {e}"
            );
            e.deliver(
                ready.as_ref().map(|w| w.as_raw_fd()),
                control.as_ref().map(|c| c.as_raw_fd()),
            );
            1
        }
    }
}

fn prepare_and_monitor(
    a: &CreateArgs,
    foreground: bool,
    control: &mut Option<UnixStream>,
    ready: &mut Option<std::os::fd::OwnedFd>,
) -> Result<i32, SetupError> {
    let id = a.id.clone().unwrap_or_else(|| default_id(&a.bundle));
    if let Err(e) = common::id::ContainerId::try_from(id.clone()) {
        return Err(SetupError::new("id", libc::EINVAL, e.to_string()));
    }
    if let Some(dir) = &a.state_dir {
        fs::create_dir_all(dir).map_err(|e| {
            SetupError::new(
                "state dir",
                e.raw_os_error().unwrap_or(0),
                format!("{}: {e}", dir.display()),
            )
        })?;
    }
    if !foreground {
        // Its own session and process group: whatever kills the caller's group
        // does not reach the shim.
        let _ = sys::setsid();
        detach_stdio(a.state_dir.as_deref().expect("create has a state dir"))?;
    }
    sys::set_child_subreaper().map_err(|e| SetupError::new("subreaper", e as i32, e.desc()))?;
    let config_path = layout::config_file(&a.bundle);
    let text = crate::setup::readfile::read_in(&a.bundle, layout::CONFIG_FILE, CONFIG_MAX)
        .map_err(|e| SetupError::new("config", e.errno, e.to_string()))?;
    let spec: oci_spec::runtime::Spec = serde_json::from_slice(&text).map_err(|e| {
        SetupError::new(
            "config",
            libc::EINVAL,
            format!("{}: {e}", config_path.display()),
        )
    })?;
    let mut spec = spec;
    if !a.cgroup_managed {
        default_cgroups_path(&mut spec, &id);
    }
    let host = HostFacts::probe()
        .map_err(|e| SetupError::new("host", e.raw_os_error().unwrap_or(0), e.to_string()))?;
    let mut plan =
        plan::build(&spec, &a.bundle, &host, a.rootfs_overlay.as_deref()).map_err(|e| {
            SetupError::new(
                "config",
                libc::EINVAL,
                format!("{}: {e}", config_path.display()),
            )
        })?;
    plan.rootfs_overlay_size = a.rootfs_overlay_size;
    plan.container.id = id.clone();
    crate::setup::shim_mode::check(
        &plan,
        spec.hooks().as_ref(),
        a.state_dir.as_deref(),
        foreground,
    )?;
    let signals =
        signals::signal_fd().map_err(|e| SetupError::new("signals", e as i32, e.desc()))?;

    let mut log = None;
    let mut stdin_w = None;
    let stdio = if foreground {
        Stdio { fds: [0, 1, 2] }
    } else {
        let dir = a.state_dir.as_deref().expect("create has a state dir");
        let devnull =
            fs::File::open("/dev/null").map_err(|e| SetupError::new("stdio", 0, e.to_string()))?;
        // With a terminal the init's stdio is its pty; --stdin then reaches
        // it through the master, see below.
        let stdin = if a.stdin && !plan.attrs.terminal {
            let (r, w) = pipe()?;
            stdin_w = Some(w);
            r
        } else {
            OwnedFd::from(devnull)
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let file =
            LogFile::open(dir.join(LOG_FILE), dir.join(LOG_FILE_OLD), a.log_max).map_err(|e| {
                SetupError::new("log file", e.raw_os_error().unwrap_or(0), e.to_string())
            })?;
        let fds = [stdin.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
        log = Some(((out_r, err_r, file), (stdin, out_w, err_w)));
        Stdio { fds }
    };
    // --debug, or a debug level from --log-level / ZCTR_SHIM_LOG: the child's
    // steps and the monitor's debug lines too.
    let debug = a.debug || tracing::enabled!(tracing::Level::DEBUG);
    tracing::debug!(id = %id, step = "create", "creating the container");
    let opts = launch::Options {
        tty: plan.attrs.terminal,
        ..Default::default()
    };
    let (mut created, console) =
        launch::create_with(&plan, &host.hierarchies, &stdio, debug, &opts)?;
    let stdin_w = match (&console, a.stdin) {
        (Some(master), true) => Some(master.try_clone().map_err(|e| {
            let _ = sys::kill(created.pid, libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(created.pid), None);
            created.cgroup.cleanup();
            SetupError::io("terminal", &e)
        })?),
        _ => stdin_w,
    };
    tracing::debug!(id = %id, pid = created.pid, "container process created");
    if !a.cgroup_managed {
        if let Err(e) = crate::setup::limits::apply(&spec, &plan.cgroups_path) {
            let _ = sys::kill(created.pid, libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(created.pid), None);
            created.cgroup.cleanup();
            return Err(e);
        }
    }
    if let Some(agent) = plan.seccomp.as_ref().and_then(|f| f.agent.as_ref()) {
        created.agent =
            Some(agent.handoff(&id, created.pid, &a.bundle, spec.annotations().as_ref()));
    }
    // The child holds the write ends now; keep only the read ends.
    let log = log.map(|(keep, child_side)| {
        drop(child_side);
        keep
    });
    let listener = match &a.state_dir {
        Some(dir) => Some(listen(&dir.join(SOCKET_FILE)).map_err(|e| {
            let _ = sys::kill(created.pid, libc::SIGKILL);
            SetupError::new(
                "control socket",
                e.raw_os_error().unwrap_or(0),
                e.to_string(),
            )
        })?),
        None => None,
    };
    let prepared = Prepared {
        id,
        created,
        out: Outputs {
            state_dir: a.state_dir.clone(),
            listener,
            control: control.take(),
            log,
            console,
            stdin: stdin_w,
            bundle: Some(a.bundle.canonicalize().unwrap_or_else(|_| a.bundle.clone())),
        },
        ready: ready.take(),
        start: foreground,
        debug,
    };
    // The process that stays for the container's life need not map the setup
    // code: become the small monitor executable, or else serve from here.
    let e = handoff::exec_monitor(&prepared);
    tracing::warn!(
        id = %prepared.id,
        "monitoring in-process, {} unusable: {e}",
        handoff::MONITOR_BIN
    );
    zctr_shim_monitor::serve(prepared, signals)
}

/// Resources but no `linux.cgroupsPath` (a `runc spec` config): the
/// container's cgroup is `zctr-shim-<id>` below the shim's own, as runc
/// picks one of its own; the shim makes it and removes it at the end.
fn default_cgroups_path(spec: &mut oci_spec::runtime::Spec, id: &str) {
    let Some(mut linux) = spec.linux().clone() else {
        return;
    };
    let unset = linux
        .cgroups_path()
        .as_ref()
        .is_none_or(|p| p.as_os_str().is_empty());
    if linux.resources().is_none() || !unset {
        return;
    }
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let base = zctr_cgroups::own_base(&own);
    let path = if base.is_empty() {
        format!("/zctr-shim-{id}")
    } else {
        format!("/{base}/zctr-shim-{id}")
    };
    linux.set_cgroups_path(Some(path.into()));
    spec.set_linux(Some(linux));
}

fn pipe() -> Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd), SetupError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SetupError::new("stdio", e as i32, e.desc()))
}

/// Points the shim's own stdin/stdout at /dev/null and stderr at
/// `<state-dir>/shim.log`, so the caller's pipes are not held open.
fn detach_stdio(dir: &Path) -> Result<(), SetupError> {
    let fail = |e: std::io::Error| {
        SetupError::new("shim stdio", e.raw_os_error().unwrap_or(0), e.to_string())
    };
    let null = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(fail)?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(SHIM_LOG))
        .map_err(fail)?;
    for (src, dst) in [
        (null.as_raw_fd(), 0),
        (null.as_raw_fd(), 1),
        (log.as_raw_fd(), 2),
    ] {
        sys::dup2(src, dst).map_err(|e| SetupError::new("shim stdio", e as i32, e.desc()))?;
    }
    Ok(())
}

fn listen(path: &Path) -> std::io::Result<UnixListener> {
    let _ = fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}
