//! The container child: walks the [`Plan`] step by step and execs.
//!
//! Runs between clone and exec, so it allocates nothing: every string comes
//! from the plan, paths for `/proc/self/fd/N` are formatted on the stack, and a
//! failure is one fixed-size report on the channel followed by `_exit`.

mod attrs;
pub mod hooks;
pub mod init;
mod paths;

use crate::setup::launch::{Gate, Options};
use crate::setup::plan::hooks::HookKind;
use crate::setup::plan::{ExecArrays, MountKind, MountStep, Plan};
use crate::setup::sys;
use nix::errno::Errno;
use paths::{fd_path, in_buf, open_in_root, resolve_create, Create, PATH_MAX, RESOLVE};
use std::ffi::CStr;
use std::os::fd::RawFd;
use zctr_shim_core::channel::ChildEnd;

/// A failed step: its name, errno and the path or value concerned.
#[derive(Debug)]
pub struct Fail<'a> {
    pub step: &'static str,
    pub errno: Errno,
    pub detail: &'a [u8],
}

type Step<'a> = Result<(), Fail<'a>>;

trait Context<'a, T> {
    fn at(self, step: &'static str, detail: &'a [u8]) -> Result<T, Fail<'a>>;
}

impl<'a, T> Context<'a, T> for Result<T, Errno> {
    fn at(self, step: &'static str, detail: &'a [u8]) -> Result<T, Fail<'a>> {
        self.map_err(|errno| Fail {
            step,
            errno,
            detail,
        })
    }
}

/// What the child gets besides the plan, all prepared before clone.
pub struct ChildCtx<'a> {
    pub plan: &'a Plan,
    pub exec: &'a ExecArrays,
    pub channel: &'a ChildEnd,
    /// Namespaces to join in the child (fd, CLONE_NEW*), user first.
    pub join: &'a [(RawFd, libc::c_int)],
    /// A detached idmapped clone of the rootfs to attach instead of a plain bind.
    pub rootfs_tree: Option<RawFd>,
    /// Per plan mount, a detached (idmapped) clone of its source to attach
    /// instead of binding the source, or -1. Empty when there is none.
    pub mount_trees: &'a [RawFd],
    /// The container's stdin, stdout, stderr.
    pub stdio: [RawFd; 3],
    /// The container-namespace hooks (state memfds, exec arrays).
    pub hooks: &'a hooks::ContainerHooks,
    pub debug: bool,
    /// Start gate, preserved fds, terminal.
    pub opts: Options,
    /// Set once past the start gate (with a FIFO gate, failures then go to
    /// stderr: the creating process is gone).
    pub started: std::cell::Cell<bool>,
    /// With `opts.init`: the shim's argument area, which the init
    /// overwrites (`init::args_area`).
    pub args_area: Option<(usize, usize)>,
}

fn debug(ctx: &ChildCtx, step: &str) {
    if ctx.debug {
        let _ = sys::write_all(2, b"zctr-shim: child: ");
        let _ = sys::write_all(2, step.as_bytes());
        let _ = sys::write_all(2, b"\n");
    }
}

/// Runs the child to exec. Never returns: exec or `_exit`.
pub fn run(ctx: &ChildCtx) -> ! {
    match setup(ctx) {
        Ok(()) => {}
        Err(f) => {
            report(ctx, f.step, f.errno, f.detail);
            sys::exit_now(1);
        }
    }
    if ctx.opts.init {
        // The parent stays as the container's init; the child goes on.
        if let Err(f) = init::split(ctx) {
            report(ctx, f.step, f.errno, f.detail);
            sys::exit_now(1);
        }
    }
    let errno = exec(ctx);
    report(ctx, "exec", errno, ctx.plan.argv[0].to_bytes());
    sys::exit_now(if errno == Errno::ENOENT { 127 } else { 126 });
}

/// A failure goes to whoever listens: the shim on the channel, or (past a
/// FIFO gate, when the creating process is gone) the container's stderr.
fn report(ctx: &ChildCtx, step: &str, errno: Errno, detail: &[u8]) {
    if ctx.started.get() && matches!(ctx.opts.gate, Gate::Fifo(_)) {
        for part in [
            b"zctr-oci: container init: ".as_slice(),
            step.as_bytes(),
            if detail.is_empty() { b"" } else { b" " },
            detail,
            b": ",
            errno.desc().as_bytes(),
            b"\n",
        ] {
            let _ = sys::write_all(2, part);
        }
    } else {
        ctx.channel.failed(step, errno, detail);
    }
}

/// A new pty on the container's own `/dev/ptmx`: the slave becomes stdio
/// and the controlling terminal (this process leads its session since
/// `setsid`), owned by the process's user; the master goes to the parent.
fn open_terminal<'a>(ctx: &ChildCtx<'a>) -> Step<'a> {
    let master = sys::openat(
        libc::AT_FDCWD,
        c"/dev/ptmx",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        0,
    )
    .at("open the terminal", b"/dev/ptmx")?;
    let r = terminal_on(ctx, master);
    // SAFETY: `master` was opened by this process above and is not used after this.
    unsafe { sys::close(master) };
    r
}

fn terminal_on<'a>(ctx: &ChildCtx<'a>, master: RawFd) -> Step<'a> {
    let slave = sys::open_pty_peer(master).at("open the terminal's slave", b"/dev/ptmx")?;
    if let Some((rows, cols)) = ctx.plan.attrs.console_size {
        sys::set_window_size(master, rows, cols).at("process.consoleSize", b"")?;
    }
    let mut r =
        sys::fchownat_empty(slave, ctx.plan.uid, ctx.plan.gid).at("chown the terminal", b"");
    for i in 0..3 {
        if r.is_ok() {
            r = sys::dup2(slave, i).at("terminal as stdio", b"");
        }
    }
    if slave > 2 {
        // SAFETY: `slave` was opened by this process above and is not used after this.
        unsafe { sys::close(slave) };
    }
    r?;
    sys::set_controlling_tty(0).at("set the controlling terminal", b"")?;
    ctx.channel
        .send_console(master)
        .at("send the terminal to the runtime", b"")
}

/// Closes every fd from `first` on except those in `keep` (-1: none).
fn close_all_but(first: u32, mut keep: [RawFd; 3]) -> Result<(), Errno> {
    keep.sort_unstable();
    let mut from = first;
    for k in keep {
        if k < 0 || (k as u32) < from {
            continue;
        }
        let k = k as u32;
        if k > from {
            sys::close_range(from, k - 1)?;
        }
        from = k + 1;
    }
    sys::close_range(from, u32::MAX)
}

/// Waits for `zctr-oci start`: one byte on the FIFO. The read end is
/// non-blocking: with no writer yet poll waits; a writer that went away
/// without writing (EOF) is a failure.
fn wait_fifo(fd: RawFd) -> Result<(), Errno> {
    let mut b = [0u8; 1];
    loop {
        let mut p = [libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        match sys::poll(&mut p, -1) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        match sys::read(fd, &mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(Errno::EPIPE),
            Err(Errno::EAGAIN) => {}
            Err(e) => return Err(e),
        }
    }
}

fn setup<'a>(ctx: &ChildCtx<'a>) -> Step<'a> {
    let plan = ctx.plan;
    debug(ctx, "reset signals");
    sys::reset_signals().at("reset signals", b"")?;
    debug(ctx, "wait for the shim");
    let overlay = ctx.channel.wait_go().at("wait for the shim", b"")?;
    if overlay.is_some() != plan.rootfs_overlay.is_some() {
        return Err(Fail {
            step: "rootfs overlay",
            errno: Errno::EPROTO,
            detail: b"the shim's GO did not carry the overlay as planned",
        });
    }
    for &(fd, nstype) in ctx.join {
        debug(ctx, "join namespace");
        sys::setns(fd, nstype).at("join namespace", b"")?;
        // SAFETY: `fd` was opened by this process above and is not used after this.
        unsafe { sys::close(fd) };
    }
    attrs::time_namespace(ctx)?;
    if plan.userns {
        debug(ctx, "become root in the user namespace");
        sys::setresgid(0).at("setresgid in user namespace", b"")?;
        sys::setresuid(0).at("setresuid in user namespace", b"")?;
    }
    if plan.unshare_cgroupns {
        // Now that the shim has put this process into its cgroups, so that they
        // become the namespace's root.
        debug(ctx, "cgroup namespace");
        sys::unshare(libc::CLONE_NEWCGROUP).at("unshare cgroup namespace", b"")?;
    }
    sys::setsid().at("setsid", b"")?;
    if let Some(h) = &plan.hostname {
        debug(ctx, "hostname");
        sys::sethostname(h).at("sethostname", h.to_bytes())?;
    }
    attrs::early(ctx)?;
    debug(ctx, "root propagation");
    sys::mount(None, c"/", None, plan.root_propagation, None).at("set / propagation", b"")?;
    let root = mount_rootfs(ctx, overlay)?;
    for (i, m) in plan.mounts.iter().enumerate() {
        debug(ctx, "mount");
        let tree = ctx.mount_trees.get(i).copied().filter(|&fd| fd >= 0);
        mount_one(root, m, tree)?;
    }
    if plan.populate_dev {
        debug(ctx, "devices");
        populate_dev(ctx, root)?;
    }
    hooks::run(ctx, HookKind::CreateContainer);
    debug(ctx, "pivot_root");
    pivot(root, plan.rootfs.to_bytes())?;
    // SAFETY: `root` was opened by this process above and is not used after this.
    unsafe { sys::close(root) };
    let root = sys::openat(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0)
        .at("open new root", b"/")?;
    for p in &plan.masked {
        debug(ctx, "mask path");
        mask(root, p)?;
    }
    for (path, value) in &plan.sysctls {
        debug(ctx, "sysctl");
        let fd = sys::openat(libc::AT_FDCWD, path, libc::O_WRONLY | libc::O_TRUNC, 0)
            .at("sysctl", path.to_bytes())?;
        let r = sys::write_all(fd, value.to_bytes());
        // SAFETY: `fd` was opened by this process above and is not used after this.
        unsafe { sys::close(fd) };
        r.at("sysctl", path.to_bytes())?;
    }
    for p in &plan.readonly_paths {
        debug(ctx, "read-only path");
        readonly_path(root, p)?;
    }
    if plan.readonly_root {
        debug(ctx, "read-only root");
        remount_readonly(root, b"").at("read-only root", b"/")?;
    }
    // Last of the mount steps: an unbindable tree could not be bound from
    // (masked paths bind /dev/null).
    if plan.root_propagation_after != 0 {
        debug(ctx, "rootfs propagation");
        sys::mount(None, c"/", None, plan.root_propagation_after, None)
            .at("set rootfs propagation", b"/")?;
    }
    // SAFETY: `root` was opened by this process above and is not used after this.
    unsafe { sys::close(root) };
    debug(ctx, "find executable");
    find_executable(plan)?;
    if plan.loopback_up {
        debug(ctx, "loopback up");
        sys::loopback_up().at("bring loopback up", b"lo")?;
    }
    for &(res, soft, hard) in &plan.rlimits {
        sys::setrlimit(res, soft, hard).at("setrlimit", b"")?;
    }
    debug(ctx, "stdio and fds");
    for (i, &fd) in ctx.stdio.iter().enumerate() {
        if fd != i as RawFd {
            sys::dup2(fd, i as RawFd).at("stdio", b"")?;
        }
    }
    if ctx.opts.tty {
        debug(ctx, "terminal");
        open_terminal(ctx)?;
    }
    let fifo = match ctx.opts.gate {
        Gate::Fifo(fd) => fd,
        Gate::Channel => -1,
    };
    close_all_but(
        3 + ctx.opts.preserve_fds,
        [ctx.channel.fd(), fifo, ctx.hooks.keep_fd()],
    )
    .at("close fds", b"")?;
    attrs::before_ready(ctx)?;
    ctx.channel.ready();
    debug(ctx, "wait for start");
    match ctx.opts.gate {
        Gate::Channel => ctx.channel.wait_start().at("wait for start", b"")?,
        Gate::Fifo(fd) => wait_fifo(fd).at("wait for start", b"exec fifo")?,
    }
    ctx.started.set(true);
    hooks::run(ctx, HookKind::StartContainer);
    if !plan.no_new_privs {
        install_seccomp(ctx)?; // needs CAP_SYS_ADMIN without no_new_privs: before dropping it
    }
    attrs::labels(ctx)?;
    debug(ctx, "user and capabilities");
    set_user_and_caps(ctx)?;
    chdir_in_root(&plan.cwd).at("chdir to process.cwd", plan.cwd.to_bytes())?;
    let mut cwd = [0u8; PATH_MAX];
    match sys::getcwd(&mut cwd) {
        Ok(n) if n > 0 && cwd[0] == b'/' => {}
        _ => {
            return Err(Fail {
                step: "process.cwd is outside the container's root",
                errno: Errno::EPERM,
                detail: plan.cwd.to_bytes(),
            })
        }
    }
    attrs::before_exec(ctx)?;
    if plan.no_new_privs {
        sys::set_no_new_privs().at("no_new_privs", b"")?;
        install_seccomp(ctx)?;
    }
    Ok(())
}

/// Installs the plan's seccomp filter, if any (see `seccomp` for when).
/// A notifying filter's listener goes to the shim at once (the compiler
/// refuses to notify the `sendmsg` that carries it), and the child waits
/// until the shim has handed it to the seccomp agent: no container code runs
/// unless the agent has it. Calls after the install that the profile
/// notifies (close, read, exec, ...) wait for the agent's answer.
fn install_seccomp<'a>(ctx: &ChildCtx<'a>) -> Step<'a> {
    if let Some(f) = &ctx.plan.seccomp {
        debug(ctx, "seccomp");
        let listener = crate::setup::seccomp::install(f).at("install seccomp filter", b"")?;
        if let Some(fd) = listener {
            let sent = ctx.channel.send_listener(fd);
            // SAFETY: `fd` is the listener the kernel just returned to this
            // process; nothing else owns it, and it is not used after this.
            unsafe { sys::close(fd) };
            sent.at("send the seccomp listener to the shim", b"")?;
            ctx.channel
                .wait_agent()
                .at("wait for the seccomp agent hand-off", b"")?;
        }
    }
    Ok(())
}

/// chdir to `cwd` resolved inside the container's root, refusing magic links
/// (`/proc/self/fd/N`, `/proc/PID/cwd`, ...) that could lead out of it.
fn chdir_in_root(cwd: &CStr) -> Result<(), Errno> {
    let root = sys::openat(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0)?;
    let rel = &cwd.to_bytes()[1..];
    let fd = if rel.is_empty() {
        Ok(root)
    } else {
        let mut buf = [0u8; PATH_MAX];
        let r = in_buf(rel, &mut buf).and_then(|rel| {
            sys::openat2(
                root,
                rel,
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
                RESOLVE,
            )
        });
        // SAFETY: `root` was opened by this process above and is not used after this.
        unsafe { sys::close(root) };
        r
    }?;
    let r = sys::fchdir(fd);
    // SAFETY: `fd` was opened by this process above and is not used after this.
    unsafe { sys::close(fd) };
    r
}

/// Binds (or attaches the idmapped clone of, or the overlay on) the rootfs
/// onto itself, so it is a mount point pivot_root can use, and opens it.
fn mount_rootfs<'a>(ctx: &ChildCtx<'a>, overlay: Option<RawFd>) -> Result<RawFd, Fail<'a>> {
    let rootfs = &ctx.plan.rootfs;
    let detail = rootfs.to_bytes();
    match (overlay, ctx.rootfs_tree) {
        (Some(tree), _) => {
            debug(ctx, "attach rootfs overlay");
            sys::move_mount_to(tree, rootfs).at("attach rootfs overlay", detail)?;
            // SAFETY: `tree` is this process's copy of a detached mount, not used after this.
            unsafe { sys::close(tree) };
        }
        (None, Some(tree)) => {
            debug(ctx, "attach idmapped rootfs");
            sys::move_mount_to(tree, rootfs).at("attach idmapped rootfs", detail)?;
            // SAFETY: `tree` is this process's copy of a detached mount, not used after this.
            unsafe { sys::close(tree) };
        }
        (None, None) => {
            debug(ctx, "bind rootfs");
            sys::mount(
                Some(rootfs),
                rootfs,
                None,
                libc::MS_BIND | libc::MS_REC,
                None,
            )
            .at("bind rootfs", detail)?;
        }
    }
    sys::openat(libc::AT_FDCWD, rootfs, libc::O_PATH | libc::O_DIRECTORY, 0)
        .at("open rootfs", detail)
}

/// Mounts `m` on its destination resolved inside `root`; a bind whose source
/// was cloned (idmapped) before clone attaches `tree` instead.
fn mount_one<'a>(root: RawFd, m: &'a MountStep, tree: Option<RawFd>) -> Step<'a> {
    let detail = m.display.to_bytes();
    let create = match m.kind {
        MountKind::Bind { dir: false, .. } => Create::File,
        _ => Create::Dir,
    };
    let fd =
        resolve_create(root, m.dest.to_bytes(), create).at("resolve mount destination", detail)?;
    let mut buf = [0u8; 32];
    let target = fd_path(fd, &mut buf);
    let r = match (&m.kind, tree) {
        (MountKind::Bind { .. }, Some(tree)) => {
            let r = sys::move_mount_onto(tree, fd);
            // SAFETY: `tree` is this process's copy of a detached mount, not used after this.
            unsafe { sys::close(tree) };
            r
        }
        (MountKind::Bind { .. }, None) => sys::mount(
            m.source.as_deref(),
            target,
            None,
            libc::MS_BIND | (m.flags & libc::MS_REC),
            None,
        ),
        (MountKind::Fs, _) => sys::mount(
            m.source.as_deref(),
            target,
            m.fstype.as_deref(),
            m.flags,
            m.data.as_deref(),
        ),
    };
    // SAFETY: `fd` was opened by this process above and is not used after this.
    unsafe { sys::close(fd) };
    r.at("mount", detail)?;
    if m.needs_remount() {
        let fd = open_in_root(root, m.dest.to_bytes()).at("reopen bind mount", detail)?;
        let r = sys::locked_mount_flags(fd).and_then(|locked| {
            let target = fd_path(fd, &mut buf);
            let flags = (m.flags | locked | libc::MS_REMOUNT | libc::MS_BIND) & !libc::MS_REC;
            sys::mount(None, target, None, flags, None)
        });
        // SAFETY: `fd` was opened by this process above and is not used after this.
        unsafe { sys::close(fd) };
        r.at("remount bind with options", detail)?;
    }
    if m.propagation != 0 {
        let fd = open_in_root(root, m.dest.to_bytes()).at("reopen mount", detail)?;
        let r = sys::mount(None, fd_path(fd, &mut buf), None, m.propagation, None);
        // SAFETY: `fd` was opened by this process above and is not used after this.
        unsafe { sys::close(fd) };
        r.at("set mount propagation", detail)?;
    }
    Ok(())
}

fn populate_dev<'a>(ctx: &ChildCtx<'a>, root: RawFd) -> Step<'a> {
    let plan = ctx.plan;
    // The nodes get exactly linux.devices[].fileMode (no umask bits lost).
    let old_umask = sys::umask_swap(0);
    let r = make_nodes(plan, root);
    sys::umask(old_umask);
    r?;
    make_dev_links(plan, root)
}

fn make_nodes(plan: &Plan, root: RawFd) -> Step<'_> {
    for d in &plan.devices {
        let rel = d.dest.to_bytes();
        if plan.userns {
            // No mknod in a user namespace: bind the host's node.
            let fd = resolve_create(root, rel, Create::File).at("create device node", rel)?;
            let mut buf = [0u8; 32];
            let r = sys::mount(
                Some(&d.host),
                fd_path(fd, &mut buf),
                None,
                libc::MS_BIND,
                None,
            );
            // SAFETY: `fd` was opened by this process above and is not used after this.
            unsafe { sys::close(fd) };
            r.at("bind device node", rel)?;
        } else {
            let slash = rel.iter().rposition(|&b| b == b'/').unwrap_or(0);
            let parent =
                resolve_create(root, &rel[..slash], Create::Dir).at("create device node", rel)?;
            let mut buf = [0u8; PATH_MAX];
            let r = in_buf(&rel[slash + 1..], &mut buf).and_then(|name| {
                match sys::mknodat(parent, name, d.kind | d.mode, d.major, d.minor) {
                    Err(Errno::EEXIST) => Ok(()),
                    r => r,
                }
            });
            // SAFETY: `parent` was opened by this process above and is not used after this.
            unsafe { sys::close(parent) };
            r.at("mknod", rel)?;
            let fd = open_in_root(root, rel).at("open device node", rel)?;
            let r = sys::fchownat_empty(fd, d.uid, d.gid);
            // SAFETY: `fd` was opened by this process above and is not used after this.
            unsafe { sys::close(fd) };
            r.at("chown device node", rel)?;
        }
    }
    Ok(())
}

fn make_dev_links(plan: &Plan, root: RawFd) -> Step<'_> {
    let dev = open_in_root(root, b"dev").at("open /dev", b"/dev")?;
    let mut links: [(&CStr, &CStr); 5] = [
        (c"/proc/self/fd", c"fd"),
        (c"/proc/self/fd/0", c"stdin"),
        (c"/proc/self/fd/1", c"stdout"),
        (c"/proc/self/fd/2", c"stderr"),
        (c"pts/ptmx", c"ptmx"),
    ];
    let n = if plan.has_devpts {
        links.len()
    } else {
        links.len() - 1
    };
    for (target, name) in &mut links[..n] {
        match sys::symlinkat(target, dev, name) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => {
                // SAFETY: `dev` was opened by this process above and is not used after this.
                unsafe { sys::close(dev) };
                return Err(Fail {
                    step: "create /dev symlink",
                    errno: e,
                    detail: name.to_bytes(),
                });
            }
        }
    }
    // SAFETY: `dev` was opened by this process above and is not used after this.
    unsafe { sys::close(dev) };
    Ok(())
}

fn pivot(root: RawFd, detail: &[u8]) -> Step<'_> {
    sys::fchdir(root).at("chdir to rootfs", detail)?;
    sys::pivot_root(c".", c".").at("pivot_root", detail)?;
    sys::umount2(c".", libc::MNT_DETACH).at("detach old root", b"")?;
    sys::chdir(c"/").at("chdir to new root", b"/")?;
    Ok(())
}

fn mask<'a>(root: RawFd, path: &'a CStr) -> Step<'a> {
    let detail = path.to_bytes();
    let fd = match open_in_root(root, &detail[1..]) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.at("open masked path", detail)?,
    };
    let mut buf = [0u8; 32];
    let target = fd_path(fd, &mut buf);
    let r = sys::is_dir(fd).and_then(|dir| {
        if dir {
            sys::mount(
                Some(c"tmpfs"),
                target,
                Some(c"tmpfs"),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some(c"size=0,mode=0"),
            )
        } else {
            sys::mount(Some(c"/dev/null"), target, None, libc::MS_BIND, None)
        }
    });
    // SAFETY: `fd` was opened by this process above and is not used after this.
    unsafe { sys::close(fd) };
    r.at("mask path", detail)
}

fn remount_readonly(root: RawFd, rel: &[u8]) -> Result<(), Errno> {
    let fd = open_in_root(root, rel)?;
    let mut buf = [0u8; 32];
    let r = sys::locked_mount_flags(fd).and_then(|locked| {
        sys::mount(
            None,
            fd_path(fd, &mut buf),
            None,
            locked | libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
            None,
        )
    });
    // SAFETY: `fd` was opened by this process above and is not used after this.
    unsafe { sys::close(fd) };
    r
}

fn readonly_path<'a>(root: RawFd, path: &'a CStr) -> Step<'a> {
    let detail = path.to_bytes();
    let rel = &detail[1..];
    let fd = match open_in_root(root, rel) {
        Err(Errno::ENOENT) => return Ok(()),
        r => r.at("open read-only path", detail)?,
    };
    let mut buf = [0u8; 32];
    let target = fd_path(fd, &mut buf);
    let r = sys::mount(
        Some(target),
        target,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    );
    // SAFETY: `fd` was opened by this process above and is not used after this.
    unsafe { sys::close(fd) };
    r.at("bind read-only path", detail)?;
    remount_readonly(root, rel).at("remount read-only path", detail)
}

fn set_user_and_caps<'a>(ctx: &ChildCtx<'a>) -> Step<'a> {
    let plan = ctx.plan;
    for cap in 0..=plan.last_cap.min(63) {
        if plan.caps.bounding & (1 << cap) == 0 {
            match sys::capbset_drop(cap) {
                Ok(()) | Err(Errno::EINVAL) => {}
                Err(e) => {
                    return Err(Fail {
                        step: "drop bounding capability",
                        errno: e,
                        detail: b"",
                    })
                }
            }
        }
    }
    sys::setgroups(&plan.additional_gids).at("setgroups", b"")?;
    sys::setresgid(plan.gid).at("setgid", b"")?;
    sys::set_keepcaps(true).at("keep capabilities", b"")?;
    sys::setresuid(plan.uid).at("setuid", b"")?;
    sys::set_keepcaps(false).at("keep capabilities", b"")?;
    sys::capset(
        plan.caps.effective,
        plan.caps.permitted,
        plan.caps.inheritable,
    )
    .at("set capabilities", b"")?;
    sys::ambient_clear_all().at("clear ambient capabilities", b"")?;
    // As runc: an ambient capability is raised where the kernel allows it
    // (it must be permitted and inheritable), and one it refuses is left out
    // without failing the container (a debug line says so).
    let ambient = plan.caps.ambient & plan.caps.permitted & plan.caps.inheritable;
    if ambient != plan.caps.ambient {
        debug(
            ctx,
            "ambient capabilities not in permitted and inheritable left out",
        );
    }
    for cap in 0..64 {
        if ambient & (1 << cap) != 0 && sys::ambient_raise(cap).is_err() {
            debug(
                ctx,
                "an ambient capability was refused by the kernel: left out",
            );
        }
    }
    Ok(())
}

/// Tries each candidate path; returns the most telling errno when none runs.
/// Fails `create` (as runc does) when no candidate for `process.args[0]` is
/// an executable file in the container's filesystem as it will be at exec.
/// Each candidate is looked at with O_PATH (nothing is opened for reading, a
/// FIFO cannot block) resolved inside the new root, magic links refused.
/// Relative candidates depend on `process.cwd` and are left to exec.
fn find_executable(plan: &Plan) -> Step<'_> {
    let mut result = Errno::ENOENT;
    let root = sys::openat(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0)
        .at("open new root", b"/")?;
    for path in &plan.exec_candidates {
        let rel = match path.to_bytes() {
            [b'/', rel @ ..] => rel,
            _ => {
                // SAFETY: `root` was opened by this process above and is not used after this.
                unsafe { sys::close(root) };
                return Ok(());
            }
        };
        let mut buf = [0u8; PATH_MAX];
        let fd =
            in_buf(rel, &mut buf).and_then(|rel| sys::openat2(root, rel, libc::O_PATH, 0, RESOLVE));
        let Ok(fd) = fd else { continue };
        let mode = sys::fstat_owner_mode(fd).map(|(_, _, mode)| mode);
        // SAFETY: `fd` was opened by this process above and is not used after this.
        unsafe { sys::close(fd) };
        match mode {
            Ok(mode) if mode & libc::S_IFMT == libc::S_IFREG && mode & 0o111 != 0 => {
                // SAFETY: `root` was opened by this process above and is not used after this.
                unsafe { sys::close(root) };
                return Ok(());
            }
            Ok(_) => result = Errno::EACCES,
            Err(_) => {}
        }
    }
    // SAFETY: `root` was opened by this process above and is not used after this.
    unsafe { sys::close(root) };
    let arg0 = plan.argv.first().map_or(&b""[..], |a| a.to_bytes());
    Err(Fail {
        step: "find executable",
        errno: result,
        detail: arg0,
    })
}

fn exec(ctx: &ChildCtx) -> Errno {
    let mut result = Errno::ENOENT;
    for path in &ctx.plan.exec_candidates {
        // SAFETY: `exec` came from `Plan::exec_arrays`: both arrays end in a
        // null pointer and point into the plan's C strings, alive until exec.
        match unsafe { sys::execve(path, &ctx.exec.argv, &ctx.exec.envp) } {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => result = Errno::EACCES,
            e => return e,
        }
    }
    result
}
