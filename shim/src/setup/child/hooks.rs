//! The container-namespace hooks, run by the child itself without
//! allocating: `createContainer` (in the container's mount namespace after
//! its mounts, before pivot_root) and `startContainer` (inside the container
//! after `start`, before exec). Each hook is forked; the grandchild takes
//! the state JSON (a memfd the shim wrote once it knew the pid) on stdin and
//! execs; the child waits on a pidfd with the hook's timeout and kills it
//! when the timeout passes. A failure is reported on the channel as step
//! `hook <kind>[<i>]` and the child exits.

use super::ChildCtx;
use crate::setup::hooks::{HookKind, HookStep};
use crate::setup::plan::Plan;
use crate::setup::sys;
use nix::errno::Errno;
use oci_spec::runtime::ContainerState;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use zctr_shim_core::SetupError;

/// One hook's NULL-terminated pointer arrays into its plan's C strings.
struct Arrays {
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

/// The hooks of one kind, ready for the child.
#[derive(Default)]
pub struct HookSet {
    /// The state JSON, a memfd the shim fills after clone (None: no hooks).
    state: Option<OwnedFd>,
    arrays: Vec<Arrays>,
}

impl HookSet {
    fn prepare(steps: &[HookStep]) -> Result<Self, SetupError> {
        if steps.is_empty() {
            return Ok(HookSet::default());
        }
        let state = sys::memfd(c"zctr-hook-state")
            .map_err(|e| SetupError::errno("hook state", "memfd_create", e))?;
        let arrays = steps
            .iter()
            .map(|h| {
                let mut argv: Vec<_> = h.argv.iter().map(|s| s.as_ptr()).collect();
                argv.push(std::ptr::null());
                let mut envp: Vec<_> = h.envp.iter().map(|s| s.as_ptr()).collect();
                envp.push(std::ptr::null());
                Arrays { argv, envp }
            })
            .collect();
        Ok(HookSet {
            state: Some(state),
            arrays,
        })
    }

    fn fd(&self) -> RawFd {
        self.state.as_ref().map_or(-1, |f| f.as_raw_fd())
    }
}

/// Prepared before clone by the shim; the child gets a reference.
#[derive(Default)]
pub struct ContainerHooks {
    pub create_container: HookSet,
    pub start_container: HookSet,
}

impl ContainerHooks {
    pub fn prepare(plan: &Plan) -> Result<Self, SetupError> {
        Ok(ContainerHooks {
            create_container: HookSet::prepare(&plan.hooks.create_container)?,
            start_container: HookSet::prepare(&plan.hooks.start_container)?,
        })
    }

    /// Writes the state each kind sees (pwrite: the file offset the child
    /// shares stays at 0): "creating" for createContainer, "created" for
    /// startContainer.
    pub fn write_state(&self, plan: &Plan, pid: i32) -> Result<(), SetupError> {
        for (set, status) in [
            (&self.create_container, ContainerState::Creating),
            (&self.start_container, ContainerState::Created),
        ] {
            if let Some(fd) = &set.state {
                let json = plan.container.state(status, Some(pid));
                std::fs::File::from(
                    fd.try_clone()
                        .map_err(|e| SetupError::io("hook state", &e))?,
                )
                .write_all_at(&json, 0)
                .map_err(|e| SetupError::io("hook state", &e))?;
            }
        }
        Ok(())
    }

    /// The fd the child must keep open until `startContainer` (-1: none).
    pub fn keep_fd(&self) -> RawFd {
        self.start_container.fd()
    }
}

/// A small formatter on the stack.
struct Buf<const N: usize> {
    b: [u8; N],
    n: usize,
}

impl<const N: usize> Buf<N> {
    fn new() -> Self {
        Buf { b: [0; N], n: 0 }
    }

    fn push(&mut self, s: &[u8]) -> &mut Self {
        let k = s.len().min(N - self.n);
        self.b[self.n..self.n + k].copy_from_slice(&s[..k]);
        self.n += k;
        self
    }

    fn num(&mut self, mut v: u64) -> &mut Self {
        let mut d = [0u8; 20];
        let mut i = d.len();
        loop {
            i -= 1;
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&d[i..])
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.b[..self.n]).unwrap_or("hook")
    }
}

/// Runs the hooks of `kind`; on the first failure reports it and exits.
pub(super) fn run(ctx: &ChildCtx, kind: HookKind) {
    let (steps, set) = match kind {
        HookKind::CreateContainer => (
            &ctx.plan.hooks.create_container,
            &ctx.hooks.create_container,
        ),
        HookKind::StartContainer => (&ctx.plan.hooks.start_container, &ctx.hooks.start_container),
        _ => return,
    };
    for (i, (h, a)) in steps.iter().zip(&set.arrays).enumerate() {
        super::debug(ctx, kind.name());
        if let Err((errno, why, n)) = run_one(h, a, set.fd()) {
            let mut step = Buf::<32>::new();
            step.push(b"hook ")
                .push(kind.name().as_bytes())
                .push(b"[")
                .num(i as u64)
                .push(b"]");
            let mut detail = Buf::<224>::new();
            detail.push(h.path.to_bytes()).push(b": ").push(why);
            if let Some(n) = n {
                detail.num(n);
                if errno == Errno::ETIMEDOUT {
                    detail.push(b" s (killed)");
                }
            }
            ctx.channel
                .failed(step.as_str(), errno, &detail.b[..detail.n]);
            sys::exit_now(1);
        }
    }
}

type HookResult = Result<(), (Errno, &'static [u8], Option<u64>)>;

fn run_one(h: &HookStep, a: &Arrays, state: RawFd) -> HookResult {
    // SAFETY: the child is single-threaded (a clone of the single-threaded
    // shim); the grandchild only dup2s, closes and execs or exits.
    let pid = unsafe { sys::fork() }.map_err(|e| (e, &b"fork"[..], None))?;
    if pid == 0 {
        let _ = sys::dup2(state, 0);
        let _ = sys::rewind(0);
        let _ = sys::close_range(3, u32::MAX);
        // SAFETY: `a` holds NULL-terminated arrays of pointers into the
        // plan's C strings, alive until exec.
        let e = unsafe { sys::execve(&h.path, &a.argv, &a.envp) };
        sys::exit_now(if e == Errno::ENOENT { 127 } else { 126 });
    }
    let timeout_ms = h
        .timeout
        .map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    let timed_out = match sys::pidfd_open(pid) {
        Ok(pidfd) => {
            let mut fds = [libc::pollfd {
                fd: pidfd,
                events: libc::POLLIN,
                revents: 0,
            }];
            let r = loop {
                match sys::poll(&mut fds, timeout_ms) {
                    Err(Errno::EINTR) => continue,
                    r => break r,
                }
            };
            // SAFETY: `pidfd` was opened above and is not used after this.
            unsafe { sys::close(pidfd) };
            matches!(r, Ok(0))
        }
        Err(_) => false, // no pidfd: wait without a timeout
    };
    if timed_out {
        let _ = sys::kill(pid, libc::SIGKILL);
    }
    let status = loop {
        match sys::waitpid(pid, 0) {
            Err(Errno::EINTR) => continue,
            Ok((_, s)) => break s,
            Err(e) => return Err((e, b"wait", None)),
        }
    };
    if timed_out {
        let secs = h.timeout.map_or(0, |t| t.as_secs());
        return Err((Errno::ETIMEDOUT, b"timed out after ", Some(secs)));
    }
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => Ok(()),
            127 => Err((Errno::ENOENT, b"cannot run it (exit status 127)", None)),
            c => Err((Errno::ECANCELED, b"exited with status ", Some(c as u64))),
        }
    } else {
        let sig = libc::WTERMSIG(status) as u64;
        Err((Errno::ECANCELED, b"killed by signal ", Some(sig)))
    }
}
