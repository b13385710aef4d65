//! `create` (and the first half of `run`): state dir, config, plan, cgroup,
//! the init cloned up to just before exec, waiting on the exec FIFO; then
//! state.json and --pid-file. On any failure nothing is left: no process,
//! cgroup or state dir.

use crate::cgroup;
use crate::cli::{CreateArgs, Global};
use crate::console;
use crate::error::{Context, Error, Result};
use crate::state::{Dir, Saved};
use oci_spec::runtime::Spec;
use serde::Deserialize;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use zctr_cgroups::{CgroupPath, Cgroups};
use zctr_shim::setup::launch::{self, Gate, Options, Stdio};
use zctr_shim::setup::plan::{self, HostFacts};
use zctr_shim::setup::sys;

/// The largest config.json read (a generated one is a few KiB).
const CONFIG_MAX: u64 = 4 * 1024 * 1024;

/// A created container.
pub struct Created {
    pub dir: Dir,
    pub saved: Saved,
}

/// What exists so far, undone on failure (in reverse order).
struct Undo<'a> {
    dir: Option<&'a Dir>,
    cgroup: Option<(&'a dyn Cgroups, CgroupPath)>,
    pid: Option<i32>,
}

impl Undo<'_> {
    fn run(self) {
        if let Some(pid) = self.pid {
            let _ = sys::kill(pid, libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some((cg, path)) = self.cgroup {
            let _ = cg.kill_all(&path);
            let _ = cgroup::remove(cg, &path);
        }
        if let Some(d) = self.dir {
            let _ = d.remove();
        }
    }
}

/// Reads and parses `<bundle>/config.json` (regular file, size cap, no
/// symlink out of the bundle).
pub fn read_config(bundle: &Path) -> Result<(Spec, serde_json::Value)> {
    let bytes = zctr_shim::setup::readfile::read_in(bundle, "config.json", CONFIG_MAX)
        .map_err(|e| Error::at(format!("{}/config.json", bundle.display()), e))?;
    let raw: serde_json::Value =
        serde_json::from_slice(&bytes).ctx(|| format!("{}/config.json", bundle.display()))?;
    let spec = Spec::deserialize(&raw).ctx(|| format!("{}/config.json", bundle.display()))?;
    Ok((spec, raw))
}

/// Refuses what zctr-oci cannot honour, naming the flag or field.
fn refuse_flags(g: &Global, a: &CreateArgs) -> Result<()> {
    if g.systemd_cgroup {
        return Err(Error::new(
            "--systemd-cgroup is not supported: zctr-oci manages cgroupfs paths only",
        ));
    }
    if a.no_pivot {
        return Err(Error::new(
            "--no-pivot is not supported: zctr-oci always uses pivot_root",
        ));
    }
    Ok(())
}

/// Refuses what the config asks and zctr-oci cannot honour; returns
/// whether the init gets a new terminal.
fn refuse(a: &CreateArgs, spec: &Spec, foreground: bool) -> Result<bool> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    match (terminal, a.console_socket.is_some()) {
        (true, false) if !foreground => Err(Error::new(
            "cannot allocate tty if runc will detach without setting console socket \
             (process.terminal is true: give --console-socket)",
        )),
        (false, true) => Err(Error::new(
            "cannot use console socket if runc will not detach or allocate tty \
             (--console-socket given, process.terminal is false)",
        )),
        // `run` in the foreground with a terminal: the init gets our own stdio.
        (true, false) => Ok(false),
        (t, _) => Ok(t),
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    fs::canonicalize(p).ctx(|| format!("bundle {}", p.display()))
}

/// Clears close-on-exec on fds 3..3+n so they reach the container.
fn preserve(n: u32) -> Result<()> {
    for fd in 3..3 + n as i32 {
        sys::keep_across_exec(fd).map_err(|e| {
            Error::new(format!("--preserve-fds: fd {fd} is not open: {}", e.desc()))
        })?;
    }
    Ok(())
}

/// Makes `exec.fifo` and opens its read end (non-blocking: no writer yet).
fn make_fifo(dir: &Dir) -> Result<OwnedFd> {
    let path = dir.fifo();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .ctx(|| format!("mkfifo {}", path.display()))?;
    nix::fcntl::open(
        &path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {}", path.display()))
}

/// Writes `--pid-file` atomically (temporary file + rename), as runc does.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let what = || format!("--pid-file {}", path.display());
    let name = path.file_name().ok_or_else(|| Error::new(what()))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    fs::write(&tmp, pid.to_string()).ctx(what)?;
    fs::rename(&tmp, path).ctx(what)
}

/// Creates the container; the init waits on the exec FIFO. With
/// `foreground` (run), a terminal without --console-socket gets our stdio.
pub fn create(g: &Global, a: &CreateArgs, foreground: bool) -> Result<Created> {
    refuse_flags(g, a)?;
    let dir = Dir::make(&g.root, &a.id)?;
    let mut undo = Undo {
        dir: Some(&dir),
        cgroup: None,
        pid: None,
    };
    let cgroups = match cgroup::detect() {
        Ok(c) => c,
        Err(e) => {
            undo.run();
            return Err(e);
        }
    };
    match create_in(g, a, foreground, &dir, cgroups.as_ref(), &mut undo) {
        Ok(saved) => Ok(Created { dir, saved }),
        Err(e) => {
            undo.run();
            Err(e)
        }
    }
}

fn create_in<'a>(
    g: &Global,
    a: &CreateArgs,
    foreground: bool,
    dir: &'a Dir,
    cgroups: &'a dyn Cgroups,
    undo: &mut Undo<'a>,
) -> Result<Saved> {
    let bundle = absolute(&a.bundle)?;
    let (mut spec, raw) = read_config(&bundle)?;
    let tty = refuse(a, &spec, foreground)?;
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let linux = spec.linux().clone().unwrap_or_default();
    let path = cgroup::resolve(
        linux.cgroups_path().as_ref().and_then(|p| p.to_str()),
        &a.id,
        &cgroup::own_base(&own),
    )?;
    let mut linux = linux;
    linux.set_cgroups_path(Some(PathBuf::from(format!("/{}", path.as_str()))));
    let resources = linux
        .resources()
        .as_ref()
        .map(zctr_cgroups::with_default_devices);
    spec.set_linux(Some(linux));

    let host = HostFacts::probe().ctx(|| "host facts".into())?;
    let mut plan = plan::build(&spec, &bundle, &host, None)
        .map_err(|e| Error::at(format!("{}/config.json", bundle.display()), e))?;
    plan.container.id = a.id.clone();
    if plan.seccomp.as_ref().is_some_and(|f| f.agent.is_some()) {
        return Err(Error::new(
            "linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a live shim; \
             not supported by zctr-oci",
        ));
    }
    preserve(a.preserve_fds)?;

    cgroups.create(&path, resources.as_ref())?;
    undo.cgroup = Some((cgroups, path.clone()));

    let stdio = Stdio { fds: [0, 1, 2] };
    let fifo = make_fifo(dir)?;
    let opts = Options {
        gate: Gate::Fifo(fifo.as_raw_fd()),
        preserve_fds: a.preserve_fds,
        tty,
        init: false,
    };
    crate::log::debug(&format!("creating container {}", a.id));
    let (created, master) = launch::create_with(&plan, &host.hierarchies, &stdio, g.debug, &opts)?;
    let pid = created.pid;
    undo.pid = Some(pid);
    drop(fifo);
    if let (Some(m), Some(sock)) = (&master, &a.console_socket) {
        let n = crate::sys::pty_number(m).ctx(|| "console: TIOCGPTN".into())?;
        console::send(sock, m, &format!("/dev/pts/{n}"))?;
    }
    drop(master);
    let (_, start_time) = crate::proc::stat(pid)
        .ok_or_else(|| Error::new(format!("the container init {pid} died during create")))?;
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    let saved = Saved {
        id: a.id.clone(),
        pid,
        start_time,
        rootfs: if root.is_absolute() {
            root
        } else {
            bundle.join(root)
        },
        bundle,
        created: crate::log::rfc3339(std::time::SystemTime::now()),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup: path.as_str().to_string(),
        config: raw,
        owner: String::new(),
    };
    dir.save(&saved)?;
    if let Some(p) = &a.pid_file {
        write_pid_file(p, pid)?;
    }
    Ok(saved)
}
