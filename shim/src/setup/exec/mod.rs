//! Running a new process inside a running container (`zctr-oci exec`,
//! `zctr-shim exec`, later `zctr exec`): the library both front ends call.
//!
//! ```text
//! let target = Target::for_init(init_pid, spec)?;        // or fill it in
//! let req = ExecRequest { process, stdio: [0, 1, 2], console: None, preserve_fds: 0 };
//! let pid = exec::spawn(&target, &req)?;                 // the caller's child, exec'd
//! let code = exec::wait(pid)?;                           // 128+N when killed by signal N
//! ```
//!
//! - [`Target`]: the container's init (host pid, optionally its start time
//!   so a reused pid is refused), its config (`linux.seccomp` is applied to
//!   the new process too) and the `cgroup.procs` files to join
//!   ([`Target::for_init`] reads them from `/proc/<pid>/cgroup`).
//! - [`ExecRequest`]: the `process` to run, already merged by the caller
//!   (the config's defaults plus its overrides: args, env, cwd, user,
//!   capabilities, noNewPrivileges, rlimits, umask, oomScoreAdj), its stdio,
//!   or a pty slave as its controlling terminal, and how many fds from 3 up
//!   stay open in it.
//! - [`spawn`] returns the new process's host pid once it has exec'd, or an
//!   [`ExecError`] naming the step and errno (`exec: find executable /x: No
//!   such file or directory`); nothing is left behind then. The process is
//!   the caller's **child**: the caller reaps it ([`wait`], or its own
//!   SIGCHLD handling), also when it detaches.
//!
//! How (see docs/shim.md, "exec"): the caller forks a helper; the helper
//! becomes non-dumpable, writes itself into the container's cgroups, joins
//! every namespace of the init that differs from the caller's (all but
//! user first, as host root; the pid and time namespaces apply to its
//! children), chroots to `/proc/<init>/root`, joins the user namespace last,
//! and clones the new process with `CLONE_PARENT`: born in the container's
//! pid namespace, but the caller's child. The helper reports its pid and
//! exits (the caller reaps it). The new process sets its rlimits, stdio (or
//! `setsid` + `TIOCSCTTY` on the console), keeps fds `3..3+preserve_fds`
//! and closes every other, sets umask, the bounding set, groups, gid, uid,
//! capabilities, ambient set, resolves `process.cwd` inside its root
//! (openat2 `RESOLVE_IN_ROOT`, no magic links), no_new_privs, the seccomp
//! filter (before the user change when no_new_privs is off, as for the
//! init) and execs the first executable candidate of the request's PATH.
//! The caller's own thread never changes namespace, so a multi-threaded
//! caller can use this too; the helper and the process allocate nothing.
//!
//! Refused: a paused container (its freezer), a stopped one (init gone or
//! a zombie), `process.terminal` without a console, a seccomp profile that
//! notifies (the agent gets the init's listener only), AppArmor and SELinux
//! labels, ioPriority, scheduler, execCPUAffinity.

#[allow(unsafe_code)]
mod child;
pub mod command;
pub mod plan;
mod target;
mod tty;

pub use target::cgroup_procs_of;

use crate::setup::plan::HostFacts;
use crate::setup::sys;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use zctr_shim_core::channel::{ChildEnd, Event, ShimEnd};

/// The running container to exec into.
#[derive(Debug, Clone)]
pub struct Target {
    /// The container's init, as a host pid.
    pub init_pid: i32,
    /// Its start time (field 22 of `/proc/PID/stat`), when known: a pid
    /// that now belongs to another process is refused.
    pub init_start_time: Option<u64>,
    /// The container's config.
    pub spec: Spec,
    /// `cgroup.procs` files the new process joins (may be empty).
    pub cgroup_procs: Vec<PathBuf>,
}

impl Target {
    /// The container whose init is `init_pid`, in the cgroups that process
    /// is in now.
    pub fn for_init(init_pid: i32, spec: Spec) -> Result<Target, ExecError> {
        target::check_alive(init_pid, None)?;
        let cgroup_procs = cgroup_procs_of(init_pid).map_err(|e| {
            ExecError::new(
                "cgroup",
                e.raw_os_error().unwrap_or(0),
                format!("/proc/{init_pid}/cgroup: {e}"),
            )
        })?;
        Ok(Target {
            init_pid,
            init_start_time: None,
            spec,
            cgroup_procs,
        })
    }
}

/// What to run, and with which fds.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The process, merged by the caller (config defaults + overrides).
    pub process: Process,
    /// stdin, stdout, stderr (ignored with a console).
    pub stdio: [RawFd; 3],
    /// A pty slave fd: the process's controlling terminal and stdio.
    pub console: Option<RawFd>,
    /// Fds `3..3+preserve_fds` of the caller stay open in the process.
    pub preserve_fds: u32,
}

/// A failed exec: the step, its errno, and a message that starts with the
/// step (`find executable /x: No such file or directory`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("exec: {message}")]
pub struct ExecError {
    pub step: String,
    pub errno: i32,
    pub message: String,
}

impl ExecError {
    pub fn new(step: &str, errno: i32, what: impl std::fmt::Display) -> Self {
        ExecError {
            step: step.into(),
            errno,
            message: format!("{step}: {what}"),
        }
    }

    fn errno(step: &str, what: &str, e: nix::errno::Errno) -> Self {
        ExecError::new(step, e as i32, format!("{what}: {}", e.desc()))
    }
}

/// The largest `preserve_fds` accepted.
const MAX_PRESERVE: u32 = 1 << 20;

/// An fd numbered `floor` or above (the same one when it already is).
fn above(fd: OwnedFd, floor: u32) -> Result<OwnedFd, ExecError> {
    if fd.as_raw_fd() as u32 >= floor {
        return Ok(fd);
    }
    sys::dup_above(fd.as_raw_fd(), floor as RawFd)
        .map_err(|e| ExecError::errno("fds", "move an fd above the preserved ones", e))
}

/// Runs `req.process` in `target`; returns its host pid once it has exec'd.
/// See the module doc.
pub fn spawn(target: &Target, req: &ExecRequest) -> Result<i32, ExecError> {
    target::check_alive(target.init_pid, target.init_start_time)?;
    target::check_not_frozen(&target.cgroup_procs)?;
    if req.preserve_fds > MAX_PRESERVE {
        return Err(ExecError::new(
            "preserve fds",
            libc::EINVAL,
            format!("{} is more than {MAX_PRESERVE}", req.preserve_fds),
        ));
    }
    let floor = 3 + req.preserve_fds;
    if let Some(fd) = (3..floor).find(|&fd| !sys::fd_is_open(fd as RawFd)) {
        return Err(ExecError::new(
            "preserve fds",
            libc::EBADF,
            format!("fd {fd} is not open"),
        ));
    }
    let host = HostFacts::probe()
        .map_err(|e| ExecError::new("host", e.raw_os_error().unwrap_or(0), e.to_string()))?;
    let ns = target::namespaces(target.init_pid)?;
    let plan = plan::build(&target.spec, &req.process, ns.user.is_some(), &host)
        .map_err(|e| ExecError::new("config", libc::EINVAL, e))?;
    if plan.terminal && req.console.is_none() {
        return Err(ExecError::new(
            "config",
            libc::EINVAL,
            "process.terminal: true, but no console was given",
        ));
    }
    let root = above(target::open_root(target.init_pid)?, floor)?;
    let procs = target::open_procs(&target.cgroup_procs)?
        .into_iter()
        .map(|fd| above(fd, floor))
        .collect::<Result<Vec<_>, _>>()?;
    // The namespaces and root opened above are the init's, not those of a
    // process that got its pid since the first check.
    target::check_alive(target.init_pid, target.init_start_time)?;
    let join = ns
        .join
        .into_iter()
        .map(|(fd, t)| above(fd, floor).map(|fd| (fd, t)))
        .collect::<Result<Vec<_>, _>>()?;
    let userns = ns.user.map(|fd| above(fd, floor)).transpose()?;
    let dup = |fd: RawFd, what: &str| {
        sys::dup_above(fd, floor as RawFd)
            .map_err(|e| ExecError::errno("stdio", &format!("{what} (fd {fd})"), e))
    };
    let stdio = [
        dup(req.stdio[0], "stdin")?,
        dup(req.stdio[1], "stdout")?,
        dup(req.stdio[2], "stderr")?,
    ];
    let console = req.console.map(|fd| dup(fd, "console")).transpose()?;
    if let (Some(tty), Some((rows, cols))) = (&console, plan.console_size) {
        sys::set_window_size(tty.as_raw_fd(), rows, cols)
            .map_err(|e| ExecError::errno("console", "set process.consoleSize", e))?;
    }
    let (shim_sock, child_sock) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ExecError::errno("handshake", "socketpair", e))?;
    let shim_end = ShimEnd::from_fd(above(shim_sock, floor)?);
    let child_end = ChildEnd::from_fd(above(child_sock, floor)?);
    let (pid_r, pid_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ExecError::errno("handshake", "pipe", e))?;
    let pid_w = above(pid_w, floor)?;

    let mut argv: Vec<_> = plan.argv.iter().map(|s| s.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<_> = plan.envp.iter().map(|s| s.as_ptr()).collect();
    envp.push(std::ptr::null());
    let procs_raw = target::raw(&procs);
    let join_raw: Vec<_> = join.iter().map(|(fd, t)| (fd.as_raw_fd(), *t)).collect();
    let ctx = child::Ctx {
        plan: &plan,
        argv: &argv,
        envp: &envp,
        channel: &child_end,
        pid_pipe: pid_w.as_raw_fd(),
        cgroup_procs: &procs_raw,
        join: &join_raw,
        userns: userns.as_ref().map(AsRawFd::as_raw_fd),
        root: root.as_raw_fd(),
        stdio: [
            stdio[0].as_raw_fd(),
            stdio[1].as_raw_fd(),
            stdio[2].as_raw_fd(),
        ],
        console: console.as_ref().map(AsRawFd::as_raw_fd),
        floor,
    };
    let helper = child::fork_helper(&ctx).map_err(|e| ExecError::errno("fork", "the helper", e))?;
    drop(child_end);
    drop(pid_w);
    drop((root, procs, join, userns, stdio, console));
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match sys::read(pid_r.as_raw_fd(), &mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let _ = waitpid(Pid::from_raw(helper), None);
    let pid = (got == 4).then(|| i32::from_ne_bytes(buf));
    let failed = |f: zctr_shim_core::channel::ChildFailure| ExecError {
        step: f.step.clone(),
        errno: f.errno,
        message: f.to_string(),
    };
    let event = shim_end.recv();
    match (pid, event) {
        (Some(pid), Ok(Event::Closed)) => Ok(pid),
        (pid, event) => {
            if let Some(pid) = pid {
                let _ = sys::kill(pid, libc::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
            }
            Err(match event {
                Ok(Event::Failed(f)) => failed(f),
                Ok(Event::Closed) => ExecError::new(
                    "helper",
                    libc::ECHILD,
                    "the helper died before it cloned the process",
                ),
                Ok(_) => ExecError::new("handshake", libc::EPROTO, "unexpected report"),
                Err(e) => ExecError::errno("handshake", "read report", e),
            })
        }
    }
}

/// Waits for `pid` (a child of the caller) to end; returns its exit code,
/// 128+N when signal N killed it.
pub fn wait(pid: i32) -> Result<i32, ExecError> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ExecError::errno("wait", &format!("pid {pid}"), e)),
        }
    }
}
