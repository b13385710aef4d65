//! The two processes between fork and exec: the helper, forked by the
//! caller, that joins the container (cgroup, namespaces, root) and clones
//! the new process as the caller's child (`CLONE_PARENT`), and that process,
//! which takes its stdio, user, capabilities and filter and execs.
//!
//! Both run in a copy of a caller that may have had other threads: they
//! allocate nothing (every string and array comes from the plan, made
//! before fork), report a failure as one fixed-size message on the
//! channel and `_exit`. Exec success is EOF on the channel (close-on-exec).

use super::plan::ExecPlan;
use crate::setup::sys;
use nix::errno::Errno;
use std::os::fd::RawFd;
use zctr_shim_core::channel::ChildEnd;

/// A failed step: its name, errno and the path or value concerned.
pub(super) struct Fail<'a> {
    step: &'static str,
    errno: Errno,
    detail: &'a [u8],
}

trait At<'a, T> {
    fn at(self, step: &'static str, detail: &'a [u8]) -> Result<T, Fail<'a>>;
}

impl<'a, T> At<'a, T> for Result<T, Errno> {
    fn at(self, step: &'static str, detail: &'a [u8]) -> Result<T, Fail<'a>> {
        self.map_err(|errno| Fail {
            step,
            errno,
            detail,
        })
    }
}

const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// What the helper and the process get, all opened and numbered at or
/// above `floor` before fork.
pub(super) struct Ctx<'a> {
    pub plan: &'a ExecPlan,
    /// NULL-terminated pointer arrays into the plan's argv and envp.
    pub argv: &'a [*const libc::c_char],
    pub envp: &'a [*const libc::c_char],
    pub channel: &'a ChildEnd,
    /// Where the helper writes the new process's pid (4 bytes, native order).
    pub pid_pipe: RawFd,
    /// `cgroup.procs` of each of the container's cgroups, open for writing.
    pub cgroup_procs: &'a [RawFd],
    /// The init's namespaces that differ from the caller's, user excluded.
    pub join: &'a [(RawFd, libc::c_int)],
    /// The init's user namespace, when it differs from the caller's.
    pub userns: Option<RawFd>,
    /// `/proc/<init>/root`, O_PATH.
    pub root: RawFd,
    pub stdio: [RawFd; 3],
    /// A pty slave: the process's controlling terminal and stdio.
    pub console: Option<RawFd>,
    /// 3 + preserve_fds: fds below stay open across exec, our own are above.
    pub floor: u32,
}

/// Forks the helper; returns its pid (in the caller only).
pub(super) fn fork_helper(ctx: &Ctx) -> Result<libc::pid_t, Errno> {
    // SAFETY: the helper only runs `helper`, which allocates nothing and
    // ends in `_exit` (its own child in exec or `_exit`), so a lock another
    // thread of the caller held at the fork does not matter.
    match unsafe { sys::fork() }? {
        0 => helper(ctx),
        pid => Ok(pid),
    }
}

/// The helper: never returns. Exits 0 once the process is cloned and its
/// pid written, 1 after reporting a failure.
fn helper(ctx: &Ctx) -> ! {
    match join(ctx) {
        Ok(pid) => {
            let _ = sys::write_all(ctx.pid_pipe, &pid.to_ne_bytes());
            sys::exit_now(0)
        }
        Err(f) => {
            ctx.channel.failed(f.step, f.errno, f.detail);
            sys::exit_now(1)
        }
    }
}

/// Joins the container and clones the process (which never returns here).
fn join<'a>(ctx: &Ctx<'a>) -> Result<libc::pid_t, Fail<'a>> {
    sys::reset_signals().at("reset signals", b"")?;
    // Before it can be seen in the container's pid namespace: /proc/PID/exe
    // (the caller's executable) and the fds stay out of the container's
    // reach; exec makes the new program dumpable again.
    sys::set_dumpable(false).at("set non-dumpable", b"")?;
    if let Some(adj) = &ctx.plan.oom_score_adj {
        let fd = sys::openat(
            libc::AT_FDCWD,
            c"/proc/self/oom_score_adj",
            libc::O_WRONLY,
            0,
        )
        .at("oom_score_adj", adj.to_bytes())?;
        let r = sys::write_all(fd, adj.to_bytes());
        // SAFETY: `fd` was opened by this process above and is not used after this.
        unsafe { sys::close(fd) };
        r.at("oom_score_adj", adj.to_bytes())?;
    }
    for &fd in ctx.cgroup_procs {
        // "0": the writing process itself (v1 and v2 alike).
        sys::write_all(fd, b"0").at("join cgroup", b"")?;
    }
    for &(fd, nstype) in ctx.join {
        sys::setns(fd, nstype).at("join namespace", ns_name(nstype))?;
    }
    // The init's root, while this process is still host root with
    // CAP_SYS_CHROOT over it (the root may be owned by ids the container's
    // user namespace does not map).
    sys::fchdir(ctx.root).at("enter the container's root", b"")?;
    sys::chroot(c".").at("chroot to the container's root", b"")?;
    if let Some(fd) = ctx.userns {
        sys::setns(fd, libc::CLONE_NEWUSER).at("join namespace", b"user")?;
    }
    // SAFETY: this helper is single-threaded (a fork); the child runs
    // `process`, which ends in exec or `_exit` and never returns.
    let (pid, _) = unsafe { sys::clone_process(libc::CLONE_PARENT as u64, None) }
        .at("clone the process", b"")?;
    if pid == 0 {
        process(ctx);
    }
    Ok(pid)
}

fn ns_name(nstype: libc::c_int) -> &'static [u8] {
    match nstype {
        libc::CLONE_NEWNS => b"mnt",
        libc::CLONE_NEWPID => b"pid",
        libc::CLONE_NEWNET => b"net",
        libc::CLONE_NEWIPC => b"ipc",
        libc::CLONE_NEWUTS => b"uts",
        libc::CLONE_NEWCGROUP => b"cgroup",
        libc::CLONE_NEWUSER => b"user",
        _ => b"time",
    }
}

/// The new process: never returns (exec or `_exit`).
fn process(ctx: &Ctx) -> ! {
    if let Err(f) = setup(ctx) {
        ctx.channel.failed(f.step, f.errno, f.detail);
        sys::exit_now(1);
    }
    let errno = exec(ctx);
    let arg0 = ctx.plan.argv.first().map_or(&b""[..], |a| a.to_bytes());
    ctx.channel.failed("exec", errno, arg0);
    sys::exit_now(if errno == Errno::ENOENT { 127 } else { 126 });
}

fn setup<'a>(ctx: &Ctx<'a>) -> Result<(), Fail<'a>> {
    let plan = ctx.plan;
    find_executable(plan)?;
    for &(res, soft, hard) in &plan.rlimits {
        sys::setrlimit(res, soft, hard).at("setrlimit", b"")?;
    }
    match ctx.console {
        Some(tty) => {
            sys::setsid().at("setsid", b"")?;
            sys::set_controlling_tty(tty).at("set controlling terminal", b"")?;
            for i in 0..3 {
                sys::dup2(tty, i).at("stdio", b"console")?;
            }
        }
        None => {
            for (i, &fd) in ctx.stdio.iter().enumerate() {
                sys::dup2(fd, i as RawFd).at("stdio", b"")?;
            }
        }
    }
    for fd in 3..ctx.floor {
        sys::keep_across_exec(fd as RawFd).at("preserve fds", b"")?;
    }
    let ch = ctx.channel.fd() as u32;
    sys::close_range(ctx.floor, ch - 1).at("close fds", b"")?;
    sys::close_range(ch + 1, u32::MAX).at("close fds", b"")?;
    if let Some(mask) = plan.umask {
        sys::set_umask(mask);
    }
    if !plan.no_new_privs {
        install_seccomp(plan)?; // needs CAP_SYS_ADMIN without no_new_privs
    }
    set_user_and_caps(plan)?;
    chdir_in_root(plan).at("chdir to process.cwd", plan.cwd.to_bytes())?;
    if plan.no_new_privs {
        sys::set_no_new_privs().at("no_new_privs", b"")?;
        install_seccomp(plan)?;
    }
    Ok(())
}

fn install_seccomp(plan: &ExecPlan) -> Result<(), Fail<'_>> {
    if let Some(f) = &plan.seccomp {
        // The plan refused a notifying filter: no listener comes back.
        crate::setup::seccomp::install(f).at("install seccomp filter", b"")?;
    }
    Ok(())
}

/// chdir to `process.cwd` resolved inside the container's root (this
/// process's root now), as the container's user; magic links refused.
fn chdir_in_root(plan: &ExecPlan) -> Result<(), Errno> {
    let root = sys::openat(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0)?;
    let fd = sys::openat2(
        root,
        &plan.cwd_rel,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        RESOLVE,
    );
    // SAFETY: `root` was opened by this process above and is not used after this.
    unsafe { sys::close(root) };
    let fd = fd?;
    let r = sys::fchdir(fd);
    // SAFETY: `fd` was opened by this process above and is not used after this.
    unsafe { sys::close(fd) };
    r
}

fn set_user_and_caps(plan: &ExecPlan) -> Result<(), Fail<'_>> {
    for cap in 0..=plan.last_cap.min(63) {
        if plan.caps.bounding & (1 << cap) == 0 {
            match sys::capbset_drop(cap) {
                Ok(()) | Err(Errno::EINVAL) => {}
                Err(e) => return Err(e).at("drop bounding capability", b""),
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
    for cap in 0..64 {
        if plan.caps.ambient & (1 << cap) != 0 {
            sys::ambient_raise(cap).at("raise ambient capability", b"")?;
        }
    }
    Ok(())
}

/// Fails with `find executable` when no candidate for `process.args[0]` is
/// an executable regular file inside the container's root (looked at with
/// O_PATH, magic links refused; a relative candidate is left to exec).
fn find_executable(plan: &ExecPlan) -> Result<(), Fail<'_>> {
    let arg0 = plan.argv.first().map_or(&b""[..], |a| a.to_bytes());
    let root = sys::openat(libc::AT_FDCWD, c"/", libc::O_PATH | libc::O_DIRECTORY, 0)
        .at("open the container's root", b"/")?;
    let mut result = Errno::ENOENT;
    let mut found = false;
    for path in &plan.exec_candidates {
        let bytes = path.to_bytes();
        if bytes.first() != Some(&b'/') {
            found = true;
            break;
        }
        // The candidate without its leading '/', resolved as if `root` were `/`.
        let Ok(rel) = std::ffi::CStr::from_bytes_with_nul(&path.to_bytes_with_nul()[1..]) else {
            continue;
        };
        let Ok(fd) = sys::openat2(root, rel, libc::O_PATH, 0, RESOLVE) else {
            continue;
        };
        let mode = sys::fstat_owner_mode(fd).map(|(_, _, mode)| mode);
        // SAFETY: `fd` was opened by this process above and is not used after this.
        unsafe { sys::close(fd) };
        match mode {
            Ok(m) if m & libc::S_IFMT == libc::S_IFREG && m & 0o111 != 0 => {
                found = true;
                break;
            }
            Ok(_) => result = Errno::EACCES,
            Err(_) => {}
        }
    }
    // SAFETY: `root` was opened by this process above and is not used after this.
    unsafe { sys::close(root) };
    if found {
        Ok(())
    } else {
        Err(result).at("find executable", arg0)
    }
}

fn exec(ctx: &Ctx) -> Errno {
    let mut result = Errno::ENOENT;
    for path in &ctx.plan.exec_candidates {
        // SAFETY: `argv`/`envp` end in a null pointer and point into the
        // plan's C strings, alive until exec (built by `spawn`).
        match unsafe { sys::execve(path, ctx.argv, ctx.envp) } {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES => result = Errno::EACCES,
            e => return e,
        }
    }
    result
}
