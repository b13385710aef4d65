//! Starting a shim: `zctr-shim create ... --control-fd 3` with one end of a
//! socketpair as fd 3, in a session of its own and born in the shim cgroup
//! (neither the daemon's nor the container's), then the first frames: `Hello`,
//! then `Created` or `SetupFailed`.
//!
//! This is the one module that needs `unsafe`: the `pre_exec` hook runs
//! between fork and exec and may only make async-signal-safe calls, so every
//! path and file it needs is opened before the fork.
#![allow(unsafe_code)]

use crate::procfs;
use crate::shim_conn::{self, ShimConnError, ShimReader, ShimWriter};
use common::protocol::ShimMsg;
use common::state::ProcId;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;

/// The fd number the shim is told to use for its control socket.
pub const CONTROL_FD: i32 = 3;
/// How long a shim may take to report `Created`.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `zctr-shim create` may take to exit once it failed (it reported
/// `SetupFailed`, or closed the connection): it exits at once when sound.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of `shim.log` quoted in an error.
const LOG_TAIL: u64 = 600;

/// How long [`spawn`] waits for each step (tests shorten them).
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    create: Duration,
    exit: Duration,
}

const TIMEOUTS: Timeouts = Timeouts {
    create: CREATE_TIMEOUT,
    exit: EXIT_TIMEOUT,
};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start shim {shim}: {source}")]
    Exec { shim: PathBuf, source: io::Error },
    #[error("cannot prepare shim start: {0}")]
    Io(#[from] io::Error),
    #[error("container setup failed at {step}: {message} (errno {errno})")]
    SetupFailed {
        step: String,
        errno: i32,
        message: String,
    },
    #[error("shim exited before it reported ({status}){log}")]
    Died { status: String, log: String },
    #[error("shim sent {0} where Hello/Created was expected")]
    Unexpected(String),
    #[error("shim did not report within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Conn(#[from] ShimConnError),
}

/// A shim that reported `Created`.
#[derive(Debug)]
pub struct Spawned {
    pub shim: ProcId,
    pub init_pid: i32,
    pub reader: ShimReader,
    pub writer: ShimWriter,
}

/// A future a [`Shims`] method returns.
pub type ShimFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the daemon reaches shims: start one for a new container, or connect
/// to the socket of one that runs. The registry and the container monitor go
/// through this seam only, so their logic is unit-tested with a fake shim on
/// a socketpair; [`OsShims`] is the real thing.
pub trait Shims: Send + Sync {
    /// Starts the shim `argv` (see [`spawn`]) and waits for `Created`.
    fn spawn<'a>(
        &'a self,
        argv: &'a [String],
        log: &'a Path,
        cgroup_procs: &'a [PathBuf],
    ) -> ShimFuture<'a, Result<Spawned, SpawnError>>;
    /// Connects to the shim whose state dir is `state_dir`.
    fn connect<'a>(
        &'a self,
        state_dir: &'a Path,
    ) -> ShimFuture<'a, Result<(ShimReader, ShimWriter), ShimConnError>>;
}

/// Shims as processes: [`spawn`] and [`shim_conn::connect`].
#[derive(Debug, Clone, Copy, Default)]
pub struct OsShims;

impl Shims for OsShims {
    fn spawn<'a>(
        &'a self,
        argv: &'a [String],
        log: &'a Path,
        cgroup_procs: &'a [PathBuf],
    ) -> ShimFuture<'a, Result<Spawned, SpawnError>> {
        Box::pin(spawn(argv, log, cgroup_procs))
    }

    fn connect<'a>(
        &'a self,
        state_dir: &'a Path,
    ) -> ShimFuture<'a, Result<(ShimReader, ShimWriter), ShimConnError>> {
        Box::pin(async move { Ok(shim_conn::split(shim_conn::connect(state_dir).await?)) })
    }
}

/// The argv of `zctr-shim create` for a container. Every container gets a
/// rootfs overlay: its writes go to a tmpfs of its own, never to the image
/// directory nor to a host disk, out of host users' reach (docs/shim.md,
/// "Writes and the host"). `memory_limit`, the container's, is that tmpfs's
/// size (its pages count against the limit anyway); without one the shim
/// takes the kernel's default, half the RAM.
pub fn shim_command(
    shim: &Path,
    bundle: &Path,
    id: &str,
    state_dir: &Path,
    memory_limit: Option<u64>,
    stdin: bool,
) -> Vec<String> {
    let mut argv = vec![
        shim.display().to_string(),
        "create".into(),
        "--bundle".into(),
        bundle.display().to_string(),
        "--id".into(),
        id.into(),
        "--state-dir".into(),
        state_dir.display().to_string(),
        "--control-fd".into(),
        CONTROL_FD.to_string(),
        "--cgroup-managed".into(),
        "--rootfs-overlay".into(),
        common::layout::rootfs_overlay_dir(state_dir)
            .display()
            .to_string(),
    ];
    if let Some(size) = memory_limit {
        argv.extend(["--rootfs-overlay-size".into(), size.to_string()]);
    }
    // Its init's stdin: a pipe the monitor keeps open for session 0's input.
    if stdin {
        argv.push("--stdin".into());
    }
    argv
}

/// The flag of `zctr-shim create` for `ContainerConfig::init` (a tiny init
/// as the container's PID 1), appended to [`shim_command`]'s argv.
pub const INIT_FLAG: &str = "--init";

/// Starts the shim with `argv`, its stdout/stderr appended to `log`, placed into
/// the cgroups whose `cgroup.procs` files are given, and waits for `Created`.
///
/// A shim that fails is never left behind: when `Created` does not come
/// within [`CREATE_TIMEOUT`], or `create` does not exit within
/// [`EXIT_TIMEOUT`] of a failure, both `create` and the long-lived shim (its
/// pid from `Hello`, checked against its start time so a reused pid is never
/// hit) are SIGKILLed, and `create` is reaped.
pub async fn spawn(
    argv: &[String],
    log: &Path,
    cgroup_procs: &[PathBuf],
) -> Result<Spawned, SpawnError> {
    spawn_with(argv, log, cgroup_procs, TIMEOUTS).await
}

async fn spawn_with(
    argv: &[String],
    log: &Path,
    cgroup_procs: &[PathBuf],
    timeouts: Timeouts,
) -> Result<Spawned, SpawnError> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    let procs: Vec<File> = cgroup_procs
        .iter()
        .map(|p| OpenOptions::new().write(true).open(p))
        .collect::<Result<_, _>>()?;
    let log_file = OpenOptions::new().create(true).append(true).open(log)?;
    let theirs: OwnedFd = theirs.into();
    let child_fd = theirs.as_raw_fd();
    let proc_fds: Vec<i32> = procs.iter().map(|f| f.as_raw_fd()).collect();
    // The shim (and a container without its own rlimits) gets the descriptor
    // limit the daemon was started with, not the one it raised for itself.
    let nofile = crate::nofile::original().map(|(soft, hard)| libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    });

    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    // SAFETY: the closure only calls async-signal-safe functions (write,
    // setrlimit, setsid, dup2, fcntl) on fds opened before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &proc_fds {
                if libc::write(fd, b"0".as_ptr().cast(), 1) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some(lim) = &nofile {
                if libc::setrlimit(libc::RLIMIT_NOFILE, lim) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if child_fd == CONTROL_FD {
                let flags = libc::fcntl(CONTROL_FD, libc::F_GETFD);
                if flags < 0
                    || libc::fcntl(CONTROL_FD, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(child_fd, CONTROL_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(false)
        .spawn()
        .map_err(|source| SpawnError::Exec {
            shim: PathBuf::from(&argv[0]),
            source,
        })?;
    drop(theirs);
    drop(procs);

    ours.set_nonblocking(true)?;
    let (mut reader, writer) = shim_conn::split(tokio::net::UnixStream::from_std(ours)?);
    let mut hello = None;
    let first = tokio::time::timeout(timeouts.create, first_frames(&mut reader, &mut hello)).await;
    let outcome = match first {
        Ok(Ok(pids)) => Ok(pids),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(SpawnError::Timeout(timeouts.create)),
    };
    match outcome {
        Ok(init_pid) => {
            tracing::debug!(init_pid, shim = ?hello, log = %log.display(), "shim created the container");
            let shim = hello.unwrap_or(ProcId {
                pid: 0,
                start_time: 0,
            });
            // `create` exits as soon as the container is created; reap it.
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
            Ok(Spawned {
                shim,
                init_pid,
                reader,
                writer,
            })
        }
        Err(e) => {
            let wait = match e {
                SpawnError::Timeout(_) => None,
                _ => tokio::time::timeout(timeouts.exit, child.wait()).await.ok(),
            };
            let status = match wait {
                Some(status) => status,
                None => {
                    if let Some(shim) = hello {
                        kill_shim(&shim).await;
                    }
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            Err(match e {
                SpawnError::Conn(_) | SpawnError::Died { .. } => SpawnError::Died {
                    status: status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|e| e.to_string()),
                    log: log_tail(log).await,
                },
                other => other,
            })
        }
    }
}

/// SIGKILLs the long-lived shim `p` if it is still that process, and waits
/// (briefly) until it is gone. It is not the daemon's child: whoever it was
/// reparented to reaps it.
async fn kill_shim(p: &ProcId) {
    if p.pid <= 1 || p.pid == std::process::id() as i32 || !procfs::is_alive(p) {
        return;
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p.pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    for _ in 0..100 {
        if !procfs::is_alive(p) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads `Hello` then `Created`; returns the container init's pid. The shim
/// (its pid and start time, read at once) is stored in `hello` as soon as
/// `Hello` comes, so a failure later still knows it: `zctr-shim create`
/// forks the long-lived shim and exits once the container is created, like
/// `runc create`.
async fn first_frames(
    reader: &mut ShimReader,
    hello: &mut Option<ProcId>,
) -> Result<i32, SpawnError> {
    loop {
        match reader.next().await? {
            Some(ShimMsg::Hello { shim_pid, .. }) => {
                *hello = Some(procfs::proc_id(shim_pid).unwrap_or(ProcId {
                    pid: shim_pid,
                    start_time: 0,
                }))
            }
            Some(ShimMsg::Created { pid }) => return Ok(pid),
            Some(ShimMsg::SetupFailed {
                step,
                errno,
                message,
            }) => {
                return Err(SpawnError::SetupFailed {
                    step,
                    errno,
                    message,
                })
            }
            Some(other) => return Err(SpawnError::Unexpected(format!("{other:?}"))),
            None => {
                return Err(SpawnError::Died {
                    status: String::new(),
                    log: String::new(),
                })
            }
        }
    }
}

/// `": <the last LOG_TAIL bytes of log>"`, or nothing when it is empty or
/// unreadable. Only the tail is read, on the blocking pool.
async fn log_tail(log: &Path) -> String {
    let log = log.to_path_buf();
    let tail = tokio::task::spawn_blocking(move || read_tail(&log, LOG_TAIL))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let t = tail.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {t}")
    }
}

/// The last `max` bytes of the regular file `path` as text (a character cut
/// at the start is dropped).
fn read_tail(path: &Path, max: u64) -> io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)?;
    let len = f.metadata()?.len();
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut buf = Vec::with_capacity(max as usize);
    f.take(max).read_to_end(&mut buf)?;
    // Skip UTF-8 continuation bytes of a character cut at the start.
    let start = buf
        .iter()
        .take(3)
        .take_while(|b| (**b & 0xC0) == 0x80)
        .count();
    Ok(String::from_utf8_lossy(&buf[start..]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn command_line_follows_the_contract() {
        let argv = shim_command(
            Path::new("/usr/bin/zctr-shim"),
            Path::new("/run/zctr/web/bundle"),
            "web",
            Path::new("/run/zctr/web"),
            Some(64 << 20),
            false,
        );
        assert_eq!(
            argv.join(" "),
            "/usr/bin/zctr-shim create --bundle /run/zctr/web/bundle --id web --state-dir /run/zctr/web --control-fd 3 --cgroup-managed \
             --rootfs-overlay /run/zctr/web/rootfs-overlay --rootfs-overlay-size 67108864"
        );
        let argv = shim_command(
            Path::new("/s"),
            Path::new("/b"),
            "p",
            Path::new("/r/p"),
            None,
            true,
        );
        assert!(!argv.iter().any(|a| a == "--rootfs-overlay-size"));
        assert_eq!(argv.last().map(String::as_str), Some("--stdin"));
    }

    #[tokio::test]
    async fn a_shim_that_exits_at_once_is_reported_with_its_log() {
        let t = TempDir::new("spawn");
        let log = t.path().join(common::layout::SHIM_LOG);
        let argv: Vec<String> = ["/bin/sh", "-c", "echo boom >&2; exit 3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let err = spawn(&argv, &log, &[]).await.unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("boom") && msg.contains('3'), "{msg}");
    }

    #[tokio::test]
    async fn fd_3_is_the_control_socket_and_setup_failure_is_reported() {
        // A fake shim: checks fd 3 is a socket and its session, then sends
        // Hello and SetupFailed frames (bytes from common's golden tests).
        let t = TempDir::new("spawn-fd3");
        let log = t.path().join(common::layout::SHIM_LOG);
        let script = r#"test -S /proc/self/fd/3 || exit 9
            sid=$(cut -d' ' -f6 /proc/$$/stat); [ "$sid" = "$$" ] || exit 8
            printf 'ZCTR\001\000\012\000\000\000\004\005mount\004\001x' >&3"#;
        let argv: Vec<String> = ["/bin/sh", "-c", script]
            .iter()
            .map(|s| s.to_string())
            .collect();
        match spawn(&argv, &log, &[]).await.unwrap_err() {
            SpawnError::SetupFailed { step, errno, .. } => {
                assert_eq!(step, "mount");
                assert_eq!(errno, 2);
            }
            e => panic!("{e}"),
        }
    }

    /// A fake `zctr-shim create`: writes its pid to `<dir>/create.pid`,
    /// sends `frames` on fd 3, then hangs. The "long-lived shim" named in
    /// `Hello` is a `sleep` the test starts itself.
    fn hanging_create(
        t: &TempDir,
        frames: &[ShimMsg],
    ) -> (Vec<String>, std::process::Child, PathBuf) {
        let fake_shim = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let mut bytes = common::protocol::encode_frame_vec(&ShimMsg::Hello {
            shim_pid: fake_shim.id() as i32,
            init_pid: 0,
            state: common::protocol::ShimState::Created,
        })
        .unwrap();
        for f in frames {
            bytes.extend(common::protocol::encode_frame_vec(f).unwrap());
        }
        let frames_file = t.path().join("frames");
        std::fs::write(&frames_file, bytes).unwrap();
        let pid_file = t.path().join("create.pid");
        let script = format!(
            "echo $$ > {}; cat {} >&3; exec sleep 1000",
            pid_file.display(),
            frames_file.display()
        );
        let argv = vec!["/bin/sh".into(), "-c".into(), script];
        (argv, fake_shim, pid_file)
    }

    /// The fake shim ended by SIGKILL, and `create` is gone (reaped).
    fn both_killed(mut fake_shim: std::process::Child, pid_file: &Path) {
        use std::os::unix::process::ExitStatusExt;
        // It is killed before spawn returns; never wait out its `sleep`.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = fake_shim.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = fake_shim.kill();
                let _ = fake_shim.wait();
                panic!("the fake shim was not killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        let pid: i32 = std::fs::read_to_string(pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "create ({pid}) was not reaped"
        );
    }

    #[tokio::test]
    async fn a_create_that_hangs_after_setup_failed_is_killed_with_its_shim() {
        let t = TempDir::new("spawn-hang-failed");
        let failed = ShimMsg::SetupFailed {
            step: "mount".into(),
            errno: 2,
            message: "x".into(),
        };
        let (argv, fake_shim, pid_file) = hanging_create(&t, &[failed]);
        let log = t.path().join("shim.log");
        let limit = EXIT_TIMEOUT + Duration::from_secs(10);
        let res = tokio::time::timeout(limit, spawn(&argv, &log, &[])).await;
        let Ok(res) = res else {
            let mut fake_shim = fake_shim;
            let _ = fake_shim.kill();
            panic!("spawn still waits for create after {limit:?}");
        };
        assert!(
            matches!(res, Err(SpawnError::SetupFailed { .. })),
            "{res:?}"
        );
        both_killed(fake_shim, &pid_file);
    }

    #[tokio::test]
    async fn a_shim_that_never_reports_created_is_killed_with_create() {
        let t = TempDir::new("spawn-hang-hello");
        let (argv, fake_shim, pid_file) = hanging_create(&t, &[]);
        let log = t.path().join("shim.log");
        // Long enough for the fake to send `Hello` on a loaded machine (the
        // pid to kill comes in it), short for a test.
        let timeouts = Timeouts {
            create: Duration::from_secs(5),
            exit: Duration::from_millis(500),
        };
        let res = tokio::time::timeout(
            Duration::from_secs(30),
            spawn_with(&argv, &log, &[], timeouts),
        )
        .await
        .expect("spawn returns after its timeout");
        assert!(matches!(res, Err(SpawnError::Timeout(_))), "{res:?}");
        both_killed(fake_shim, &pid_file);
    }

    #[test]
    fn only_the_tail_of_the_log_is_read() {
        let t = TempDir::new("spawn-tail");
        let log = t.path().join("shim.log");
        let mut text = "x".repeat(10_000);
        text.push('é');
        text.push_str(&"y".repeat(598));
        std::fs::write(&log, &text).unwrap();
        // 599 bytes from the end start in the middle of "é": it is dropped.
        assert_eq!(read_tail(&log, 599).unwrap(), "y".repeat(598));
        assert_eq!(
            read_tail(&log, 600).unwrap(),
            format!("é{}", "y".repeat(598))
        );
        assert_eq!(
            read_tail(&log, 601).unwrap(),
            format!("xé{}", "y".repeat(598))
        );
    }
}
