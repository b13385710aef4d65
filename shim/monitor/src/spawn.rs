//! `Exec`: starting a process in the container. The monitor maps no setup
//! code, so it runs `<shim> exec --report-fd N` (the setup executable named
//! in the request) with the new session's stdio as that command's own: pipes,
//! or a pty of the container's own devpts. That command joins the container,
//! starts the process as its child and reports `ok PID` (or the error) on
//! fd N without waiting; the process then passes to the monitor, the
//! subreaper. The report pipe is polled like any other fd, and a helper that
//! has not reported within [`HELPER_TIMEOUT_MS`] is killed.

use crate::session::TTY;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use zctr_shim_core::sys;

/// The most `zctr-shim exec` helpers running at once.
pub(crate) const MAX_PENDING: usize = 4;

/// How long a helper may take to report.
pub(crate) const HELPER_TIMEOUT_MS: u64 = 30_000;

/// The largest report read (a pid, or an error message).
const REPORT_MAX: usize = 4096;

pub(crate) type Refusal = (i32, String);

/// What `Exec` asked for, and where the container is.
pub(crate) struct Request<'a> {
    pub shim: &'a str,
    pub process: &'a str,
    pub tty: bool,
    pub stdin: bool,
    pub size: Option<(u16, u16)>,
    pub state_dir: &'a Path,
    pub bundle: Option<&'a Path>,
    pub init_pid: i32,
}

/// The monitor's ends of a new session's stdio.
pub(crate) struct Ends {
    /// stdout, stderr, terminal master (see [`crate::session::Session::outs`]).
    pub outs: [Option<OwnedFd>; 3],
    pub input: Option<OwnedFd>,
}

/// A helper that has not reported yet.
pub(crate) struct Pending {
    pub helper: i32,
    pub report: OwnedFd,
    pub got: Vec<u8>,
    pub deadline: Instant,
    /// The client that asked ([`crate::client::Client::id`]).
    pub client: u64,
    pub detach: bool,
    pub tty: bool,
    pub ends: Option<Ends>,
    /// Reported (or given up on): its report pipe is no longer polled.
    pub done: bool,
    /// The monitor reaped it. Kept until then, so that its exit is not
    /// taken for an unknown process's.
    pub reaped: bool,
}

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// The device number of `/dev/ptmx` and of every devpts instance's `ptmx`.
const PTMX_MAJOR: u64 = 5;
const PTMX_MINOR: u64 = 2;

/// A new pty on the container's own devpts (its `/dev/ptmx`, resolved in
/// the init's root, never out of it): (master, slave).
fn container_pty(init_pid: i32, size: Option<(u16, u16)>) -> Result<(OwnedFd, OwnedFd), Refusal> {
    let fail =
        |what: &str, e: nix::errno::Errno| (e as i32, format!("exec: tty: {what}: {}", e.desc()));
    let root = File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(format!("/proc/{init_pid}/root"))
        .map_err(|e| {
            (
                errno_of(&e),
                format!("exec: tty: /proc/{init_pid}/root: {e}"),
            )
        })?;
    // The container controls its /dev: never block on what it put there
    // (the loop would stop), and take nothing but the pty multiplexer.
    let master = sys::open_in_root(
        root.as_raw_fd(),
        c"dev/ptmx",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK,
    )
    .map_err(|e| fail("the container's /dev/ptmx", e))?;
    let st = nix::sys::stat::fstat(&master).map_err(|e| fail("the container's /dev/ptmx", e))?;
    let is_ptmx = st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && nix::sys::stat::major(st.st_rdev) == PTMX_MAJOR
        && nix::sys::stat::minor(st.st_rdev) == PTMX_MINOR;
    if !is_ptmx {
        return Err((
            libc::ENOTTY,
            "exec: tty: the container's /dev/ptmx is not the pty multiplexer (5:2)".into(),
        ));
    }
    let slave = sys::pty_peer(master.as_raw_fd()).map_err(|e| fail("open the slave", e))?;
    if let Some((rows, cols)) = size {
        sys::set_winsize(master.as_raw_fd(), rows, cols).map_err(|e| fail("size", e))?;
    }
    Ok((master, slave))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Refusal> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| (e as i32, format!("exec: pipe: {}", e.desc())))
}

fn dev_null() -> Result<OwnedFd, Refusal> {
    File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| (errno_of(&e), format!("exec: /dev/null: {e}")))
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, Refusal> {
    fd.try_clone()
        .map_err(|e| (errno_of(&e), format!("exec: dup: {e}")))
}

/// The helper's stdio (the process's) and the monitor's ends.
fn stdio(req: &Request) -> Result<([OwnedFd; 3], Ends), Refusal> {
    if req.tty {
        let (master, slave) = container_pty(req.init_pid, req.size)?;
        let input = if req.stdin { Some(dup(&master)?) } else { None };
        let theirs = [dup(&slave)?, dup(&slave)?, slave];
        let mut outs = [None, None, None];
        outs[TTY] = Some(master);
        return Ok((theirs, Ends { outs, input }));
    }
    let (in_r, in_w) = if req.stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (dev_null()?, None)
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    Ok((
        [in_r, out_w, err_w],
        Ends {
            outs: [Some(out_r), Some(err_r), None],
            input: in_w,
        },
    ))
}

/// Starts `<shim> exec` for `req`; the caller polls the returned
/// [`Pending::report`].
pub(crate) fn start(req: &Request, client: u64, detach: bool) -> Result<Pending, Refusal> {
    if req.size.is_some() && !req.tty {
        return Err((
            libc::EINVAL,
            "exec: size is the size of a terminal: it needs tty".into(),
        ));
    }
    if CString::new(req.shim).is_err() || !req.shim.starts_with('/') {
        return Err((
            libc::EINVAL,
            format!("exec: shim {:?} is not an absolute path", req.shim),
        ));
    }
    if !req.process.starts_with('/') {
        return Err((
            libc::EINVAL,
            format!("exec: process {:?} is not an absolute path", req.process),
        ));
    }
    let (theirs, ends) = stdio(req)?;
    let (report_r, report_w) = pipe()?;
    let _ = sys::set_nonblocking(report_r.as_raw_fd());
    let [i, o, e] = theirs;
    let mut cmd = Command::new(req.shim);
    cmd.arg("exec")
        .args(["--log-level", "off", "--state-dir"])
        .arg(req.state_dir);
    if let Some(b) = req.bundle {
        cmd.arg("--bundle").arg(b);
    }
    cmd.arg("--process")
        .arg(req.process)
        .arg("--report-fd")
        .arg(report_w.as_raw_fd().to_string());
    if req.tty {
        cmd.arg("--tty");
    }
    cmd.stdin(Stdio::from(i))
        .stdout(Stdio::from(o))
        .stderr(Stdio::from(e))
        .env_clear()
        .current_dir("/");
    // Single-threaded: nothing else can fork while the fd is inheritable.
    sys::keep_across_exec(report_w.as_raw_fd())
        .map_err(|e| (e as i32, format!("exec: report pipe: {}", e.desc())))?;
    let spawned = cmd.spawn();
    drop(report_w);
    // `cmd` holds the helper's stdio (the slave, the pipes' far ends): gone
    // here, so that EOF and EIO come when the process lets go of them.
    drop(cmd);
    let child = spawned.map_err(|e| (errno_of(&e), format!("exec: {}: {e}", req.shim)))?;
    Ok(Pending {
        helper: child.id() as i32,
        report: report_r,
        got: Vec::new(),
        deadline: Instant::now() + Duration::from_millis(HELPER_TIMEOUT_MS),
        client,
        detach,
        tty: req.tty,
        ends: Some(ends),
        done: false,
        reaped: false,
    })
}

impl Pending {
    /// Reads what the helper wrote: true at EOF (the report is complete).
    pub fn read(&mut self) -> bool {
        let mut buf = [0u8; 512];
        loop {
            match sys::read(self.report.as_raw_fd(), &mut buf) {
                Ok(0) => return true,
                Ok(n) => {
                    let room = REPORT_MAX.saturating_sub(self.got.len());
                    self.got.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(nix::errno::Errno::EAGAIN) => return false,
                Err(_) => return true,
            }
        }
    }
}
