//! Creating the container: everything the shim does from a plan up to the
//! child's "ready" (the point just before exec). On any failure the child is
//! killed and reaped and the cgroup directories the shim made are removed.

use super::child::{self, ChildCtx};
use super::idmap::Trees;
use super::overlay::Layers;
use super::plan::{JoinNs, Plan};
use super::sys;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use zctr_shim_core::cgroup::{ContainerCgroup, Hierarchy};
use zctr_shim_core::channel::{self, Event, ShimEnd};
use zctr_shim_core::handoff::Created;
use zctr_shim_core::SetupError;

/// Where the container's stdio goes.
pub struct Stdio {
    pub fds: [RawFd; 3],
}

/// What lets a created child go on to exec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Gate {
    /// `START` on the handshake channel (the shim and its monitor).
    #[default]
    Channel,
    /// One byte on a FIFO whose read end (non-blocking) is this fd, inherited
    /// by the child; its writer is a later `zctr-oci start` (the creating
    /// process has gone by then). Errors after the gate go to the child's
    /// stderr, as nobody reads the channel any more.
    Fifo(RawFd),
}

/// The rest of what the child needs besides the plan and stdio.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub gate: Gate,
    /// Fds 3..3+N stay open in the container (runc's `--preserve-fds`).
    pub preserve_fds: u32,
    /// `process.terminal`: the child opens a new pty on the container's
    /// `/dev/ptmx` (its own devpts), makes the slave its stdio and
    /// controlling terminal (sized by `process.consoleSize`, owned by the
    /// process's user) and sends the master up; [`create_with`] returns it.
    pub tty: bool,
    /// `--init`: the container's PID 1 is a tiny init that forks the
    /// process just before exec, forwards signals to it and reaps zombies
    /// (`child::init`). Needs a new PID namespace.
    pub init: bool,
}

fn open_fd(path: &std::path::Path, flags: i32) -> Result<OwnedFd, std::io::Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    Ok(OwnedFd::from(f))
}

pub fn create(
    plan: &Plan,
    hierarchies: &[Hierarchy],
    stdio: &Stdio,
    debug: bool,
) -> Result<Created, SetupError> {
    create_with(plan, hierarchies, stdio, debug, &Options::default()).map(|(c, _)| c)
}

/// [`create`] with a start gate, preserved fds and a terminal (`zctr-oci`):
/// also returns the pty master with `opts.tty`.
pub fn create_with(
    plan: &Plan,
    hierarchies: &[Hierarchy],
    stdio: &Stdio,
    debug: bool,
    opts: &Options,
) -> Result<(Created, Option<OwnedFd>), SetupError> {
    if opts.init && plan.clone_flags & libc::CLONE_NEWPID as u64 == 0 {
        return Err(SetupError::new(
            "init",
            libc::EINVAL,
            "--init needs a new PID namespace (a \"pid\" entry without a path in \
             linux.namespaces): in the host's or a joined one the init would not be PID 1",
        ));
    }
    let mut cgroup = if plan.cgroups_path.is_empty() {
        ContainerCgroup::default()
    } else {
        ContainerCgroup::prepare(hierarchies, &plan.cgroups_path)
            .map_err(|e| SetupError::io("cgroup", &e))?
    };
    match spawn(plan, &cgroup, stdio, debug, opts) {
        Ok((pid, channel, console)) => {
            let oom_base = cgroup.oom_kills();
            Ok((
                Created {
                    pid,
                    channel,
                    cgroup,
                    oom_base,
                    agent: None,
                },
                console,
            ))
        }
        Err(e) => {
            cgroup.cleanup();
            Err(e)
        }
    }
}

/// Opens a namespace file named by the config: non-blocking, so that a FIFO
/// there fails (setns refuses what is not a namespace) instead of hanging.
fn open_ns(j: &JoinNs) -> Result<OwnedFd, SetupError> {
    open_fd(&j.path, libc::O_CLOEXEC | libc::O_NONBLOCK).map_err(|e| {
        SetupError::new(
            "join namespace",
            e.raw_os_error().unwrap_or(0),
            format!("{}: {e}", j.path.display()),
        )
    })
}

fn spawn(
    plan: &Plan,
    cgroup: &ContainerCgroup,
    stdio: &Stdio,
    debug: bool,
    opts: &Options,
) -> Result<(i32, ShimEnd, Option<OwnedFd>), SetupError> {
    // Namespaces joined by the shim itself, before the new user namespace exists.
    for j in &plan.join_before {
        let fd = open_ns(j)?;
        sys::setns(fd.as_raw_fd(), j.nstype)
            .map_err(|e| SetupError::errno("join namespace", &j.path.display().to_string(), e))?;
    }
    let join_fds = plan
        .join_in_child
        .iter()
        .map(open_ns)
        .collect::<Result<Vec<_>, _>>()?;
    let join: Vec<(RawFd, libc::c_int)> = join_fds
        .iter()
        .zip(&plan.join_in_child)
        .map(|(fd, j)| (fd.as_raw_fd(), j.nstype))
        .collect();
    let mut trees = Trees::open(plan)?;
    let layers = plan
        .rootfs_overlay
        .as_deref()
        .map(|dir| Layers::prepare(dir, plan.rootfs_overlay_size))
        .transpose()?;
    let cgroup_fd = match cgroup.unified_dir() {
        Some(dir) => Some(
            open_fd(dir, libc::O_DIRECTORY | libc::O_CLOEXEC)
                .map_err(|e| SetupError::io("open cgroup", &e))?,
        ),
        None => None,
    };
    let (shim_end, child_end) =
        channel::pair().map_err(|e| SetupError::errno("socketpair", "handshake channel", e))?;
    let exec = plan.exec_arrays();
    let hooks = child::hooks::ContainerHooks::prepare(plan)?;
    let ctx = ChildCtx {
        plan,
        exec: &exec,
        channel: &child_end,
        join: &join,
        rootfs_tree: trees.rootfs(plan),
        mount_trees: trees.mount_fds(),
        stdio: stdio.fds,
        hooks: &hooks,
        debug,
        opts: *opts,
        started: std::cell::Cell::new(false),
        args_area: opts.init.then(child::init::args_area).flatten(),
    };
    // SAFETY: the shim is single-threaded (it never starts a thread); the
    // child runs `child::run`, which ends in exec or `_exit` and never returns.
    let cloned =
        unsafe { sys::clone_process(plan.clone_flags, cgroup_fd.as_ref().map(|f| f.as_raw_fd())) };
    let (pid, born_in_cgroup) =
        cloned.map_err(|e| SetupError::errno("clone", "creating the container process", e))?;
    if pid == 0 {
        child::run(&ctx);
    }
    drop(child_end);
    drop(join_fds);
    let kill = |e: SetupError| {
        let _ = sys::kill(pid, libc::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        e
    };
    finish_parent_side(plan, cgroup, pid, born_in_cgroup, &trees).map_err(kill)?;
    hooks.write_state(plan, pid).map_err(kill)?;
    crate::setup::hooks::run_create_runtime(plan, pid).map_err(kill)?;
    // Made after clone (the lower layer's idmap needs the child's user
    // namespace), so it travels to the child with GO.
    let overlay = match (&layers, trees.take_rootfs()) {
        (Some(l), Some(lower)) => Some(l.mount(lower).map_err(kill)?),
        _ => None,
    };
    drop(trees);
    shim_end
        .send_go(overlay.as_ref().map(|o| o.as_raw_fd()))
        .map_err(|e| SetupError::errno("handshake", "send go", e))
        .map_err(kill)?;
    drop(overlay);
    let mut console = None;
    let mut event = shim_end.recv();
    if opts.tty {
        if let Ok(Event::Console(fd)) = event {
            console = Some(fd);
            event = shim_end.recv();
        }
    }
    match event {
        Ok(Event::Ready) if opts.tty && console.is_none() => Err(kill(SetupError::new(
            "handshake",
            libc::EPROTO,
            "the container process did not send its terminal",
        ))),
        Ok(Event::Ready) => Ok((pid, shim_end, console)),
        Ok(Event::Console(_)) => Err(kill(SetupError::new(
            "handshake",
            libc::EPROTO,
            "the container process sent an unexpected terminal",
        ))),
        Ok(Event::Failed(f)) => Err(kill(f.into())),
        Ok(Event::Closed) => Err(kill(SetupError::new(
            "handshake",
            libc::ECHILD,
            "the container process died during setup",
        ))),
        Ok(Event::Listener(_)) => Err(kill(SetupError::new(
            "handshake",
            libc::EPROTO,
            "the container process sent a seccomp listener before start",
        ))),
        Err(e) => Err(kill(SetupError::errno("handshake", "read report", e))),
    }
}

/// The parent's share of setup while the child waits: id maps, cgroup,
/// oom_score_adj, idmapped rootfs and volumes.
fn finish_parent_side(
    plan: &Plan,
    cgroup: &ContainerCgroup,
    pid: i32,
    born_in_cgroup: bool,
    trees: &Trees,
) -> Result<(), SetupError> {
    let proc = format!("/proc/{pid}");
    if plan.userns {
        fs::write(format!("{proc}/uid_map"), &plan.uid_map)
            .map_err(|e| SetupError::io("write uid_map", &e))?;
        fs::write(format!("{proc}/gid_map"), &plan.gid_map)
            .map_err(|e| SetupError::io("write gid_map", &e))?;
    }
    cgroup
        .join(pid, born_in_cgroup)
        .map_err(|e| SetupError::io("join cgroup", &e))?;
    if let Some(adj) = plan.oom_score_adj {
        fs::write(format!("{proc}/oom_score_adj"), adj.to_string())
            .map_err(|e| SetupError::io("oom_score_adj", &e))?;
    }
    if trees.needs_userns(plan) {
        let userns = open_fd(
            std::path::Path::new(&format!("{proc}/ns/user")),
            libc::O_CLOEXEC,
        )
        .map_err(|e| SetupError::io("open user namespace", &e))?;
        trees.apply(plan, userns.as_fd())?;
    }
    Ok(())
}
