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
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The fd number the shim is told to use for its control socket.
pub const CONTROL_FD: i32 = 3;
/// How long a shim may take to report `Created`.
pub const CREATE_TIMEOUT: Duration = Duration::from_secs(60);

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
        "--rootfs-overlay".into(),
        state_dir
            .join(crate::store::ROOTFS_OVERLAY_DIR)
            .display()
            .to_string(),
    ];
    if let Some(size) = memory_limit {
        argv.extend(["--rootfs-overlay-size".into(), size.to_string()]);
    }
    argv
}

/// Starts the shim with `argv`, its stdout/stderr appended to `log`, placed into
/// the cgroups whose `cgroup.procs` files are given, and waits for `Created`.
pub async fn spawn(
    argv: &[String],
    log: &Path,
    cgroup_procs: &[PathBuf],
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
    let first = tokio::time::timeout(CREATE_TIMEOUT, first_frames(&mut reader)).await;
    let outcome = match first {
        Ok(Ok(pids)) => Ok(pids),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            let _ = child.start_kill();
            Err(SpawnError::Timeout(CREATE_TIMEOUT))
        }
    };
    match outcome {
        Ok((shim_pid, init_pid)) => {
            let shim = procfs::proc_id(shim_pid).unwrap_or(ProcId {
                pid: shim_pid,
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
            let status = child.wait().await;
            Err(match e {
                SpawnError::Conn(_) | SpawnError::Died { .. } => SpawnError::Died {
                    status: status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|e| e.to_string()),
                    log: log_tail(log),
                },
                other => other,
            })
        }
    }
}

/// Reads `Hello` then `Created`; returns (shim pid, container init pid). The
/// shim pid comes from `Hello`: `zctr-shim create` forks the long-lived shim
/// and exits once the container is created, like `runc create`.
async fn first_frames(reader: &mut ShimReader) -> Result<(i32, i32), SpawnError> {
    let mut shim_pid = 0;
    loop {
        match reader.next().await? {
            Some(ShimMsg::Hello { shim_pid: p, .. }) => shim_pid = p,
            Some(ShimMsg::Created { pid }) => return Ok((shim_pid, pid)),
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

fn log_tail(log: &Path) -> String {
    match std::fs::read_to_string(log) {
        Ok(s) if !s.trim().is_empty() => {
            let t = s.trim();
            let start = t.len().saturating_sub(600);
            let start = (start..t.len())
                .find(|i| t.is_char_boundary(*i))
                .unwrap_or(t.len());
            format!(": {}", &t[start..])
        }
        _ => String::new(),
    }
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
        );
        assert_eq!(
            argv.join(" "),
            "/usr/bin/zctr-shim create --bundle /run/zctr/web/bundle --id web --state-dir /run/zctr/web --control-fd 3 \
             --rootfs-overlay /run/zctr/web/rootfs-overlay --rootfs-overlay-size 67108864"
        );
        let argv = shim_command(
            Path::new("/s"),
            Path::new("/b"),
            "p",
            Path::new("/r/p"),
            None,
        );
        assert!(!argv.iter().any(|a| a == "--rootfs-overlay-size"));
    }

    #[tokio::test]
    async fn a_shim_that_exits_at_once_is_reported_with_its_log() {
        let t = TempDir::new("spawn");
        let log = t.path().join("shim.log");
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
        let log = t.path().join("shim.log");
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
}
