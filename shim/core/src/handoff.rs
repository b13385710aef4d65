//! From a created container to its monitor.
//!
//! The setup executable (`zctr-shim`, with the OCI parsing, the plan and the
//! clone code) hands the created container over to `zctr-shim-monitor`, a
//! small executable that only runs the monitor loop, by exec'ing it in the
//! same process: same pid, same children, still the subreaper, the signals it
//! watches still blocked and pending ones kept. What the monitor needs travels
//! as inherited fds plus one bincode record (hex) on its command line. So the
//! process that stays for the container's whole life maps none of the setup
//! code. Where the monitor executable is missing, the same loop runs in-process.
//!
//! This module owns what crosses the line: [`Prepared`] and its parts, the
//! record that carries them, its sending half ([`exec_monitor`], run by the
//! setup executable) and its receiving half ([`receive`], run by the monitor).

use crate::cgroup::{ContainerCgroup, Hierarchy};
use crate::channel::ShimEnd;
use crate::logfile::LogFile;
use crate::{signals, sys, SetupError};
use bincode::{Decode, Encode};
use nix::sys::signalfd::SignalFd;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The monitor executable's file name; it lives beside `zctr-shim`.
pub const MONITOR_BIN: &str = "zctr-shim-monitor";

/// A created container and where the monitor reports on it.
pub struct Prepared {
    pub id: String,
    pub created: Created,
    pub out: Outputs,
    /// `create`'s ready pipe: "ok" (or the error) goes there, then EOF.
    pub ready: Option<OwnedFd>,
    /// Start the container at once (`run`).
    pub start: bool,
    pub debug: bool,
}

/// A container whose init waits just before exec.
pub struct Created {
    pub pid: i32,
    pub channel: ShimEnd,
    pub cgroup: ContainerCgroup,
    /// OOM kills in the cgroup before the container ran.
    pub oom_base: u64,
    /// Where the seccomp listener goes when the init sends it (`start`).
    pub agent: Option<crate::agent::Handoff>,
}

impl Created {
    pub fn channel_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.channel)
    }
}

/// What the monitor writes to and listens on.
pub struct Outputs {
    pub state_dir: Option<PathBuf>,
    pub listener: Option<UnixListener>,
    /// The connection the caller handed us (`--control-fd`).
    pub control: Option<UnixStream>,
    /// Read ends of the container's stdout and stderr pipes, with the log they feed.
    pub log: Option<(OwnedFd, OwnedFd, LogFile)>,
    /// The master of the init's terminal (`process.terminal`), relayed as
    /// session 0's output (logged as stdout).
    pub console: Option<OwnedFd>,
    /// Where session 0's input goes (`create --stdin`): the write end of the
    /// init's stdin pipe, or the terminal's master.
    pub stdin: Option<OwnedFd>,
    /// The bundle the container was made from: `Exec` runs `zctr-shim exec
    /// --bundle` with it.
    pub bundle: Option<PathBuf>,
}

/// What precedes the record: which build wrote it, and how to give the
/// container up. A monitor from another build (an upgrade that replaced one
/// executable but not the other) refuses the hand-off instead of misreading
/// it, and still cleans up. Its layout never changes.
#[derive(Debug, Encode, Decode, PartialEq, Eq)]
struct Header {
    magic: [u8; 4],
    layout: u32,
    version: String,
    abandon: Abandon,
}

/// How to give a created container up: whom to tell, what to kill, what to
/// remove.
#[derive(Debug, Encode, Decode, PartialEq, Eq, Default)]
struct Abandon {
    init_pid: i32,
    ready_fd: Option<RawFd>,
    control_fd: Option<RawFd>,
    /// Cgroup directories the shim made, deepest last.
    dirs: Vec<Vec<u8>>,
    /// The control socket.
    socket: Option<Vec<u8>>,
}

impl Abandon {
    /// Says why on the ready pipe and the control fd, kills and reaps the
    /// init, and removes what the shim made.
    fn run(&self, why: &str) {
        SetupError::new("monitor", libc::EIO, why).report(
            MONITOR_BIN,
            self.ready_fd,
            self.control_fd,
        );
        if self.init_pid > 0 {
            let _ = sys::kill(self.init_pid, libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.init_pid), None);
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(path(d.clone()));
        }
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(path(socket.clone()));
        }
    }
}

const MAGIC: [u8; 4] = *b"ZCHO";
/// Bumped whenever [`Record`] changes.
const LAYOUT: u32 = 3;

impl Header {
    fn new(abandon: Abandon) -> Header {
        Header {
            magic: MAGIC,
            layout: LAYOUT,
            version: env!("CARGO_PKG_VERSION").to_string(),
            abandon,
        }
    }

    fn matches_ours(&self) -> bool {
        self.magic == MAGIC && self.layout == LAYOUT && self.version == env!("CARGO_PKG_VERSION")
    }
}

/// Everything of a [`Prepared`] that is not an fd, plus the fd numbers.
#[derive(Debug, Encode, Decode, PartialEq, Eq)]
struct Record {
    id: String,
    init_pid: i32,
    channel_fd: RawFd,
    oom_base: u64,
    /// (mount point, cgroup2?, directory) per hierarchy.
    cgroup_dirs: Vec<(Vec<u8>, bool, Vec<u8>)>,
    cgroup_created: Vec<Vec<u8>>,
    state_dir: Option<Vec<u8>>,
    listener_fd: Option<RawFd>,
    control_fd: Option<RawFd>,
    ready_fd: Option<RawFd>,
    log: Option<LogRecord>,
    console_fd: Option<RawFd>,
    stdin_fd: Option<RawFd>,
    bundle: Option<Vec<u8>>,
    /// The seccomp agent's socket and the process state to send it.
    agent: Option<(Vec<u8>, Vec<u8>)>,
    start: bool,
    debug: bool,
}

/// The container's log: its stdout and stderr read ends, the log file's path,
/// its rotated path and the size cap.
#[derive(Debug, Encode, Decode, PartialEq, Eq)]
struct LogRecord {
    out_fd: RawFd,
    err_fd: RawFd,
    path: Vec<u8>,
    old: Vec<u8>,
    max: u64,
}

fn bytes(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn path(b: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(b))
}

impl Record {
    fn of(p: &Prepared) -> Record {
        Record {
            id: p.id.clone(),
            init_pid: p.created.pid,
            channel_fd: p.created.channel.fd(),
            oom_base: p.created.oom_base,
            cgroup_dirs: p
                .created
                .cgroup
                .dirs
                .iter()
                .map(|(h, d)| (bytes(&h.mount_point), h.unified, bytes(d)))
                .collect(),
            cgroup_created: p
                .created
                .cgroup
                .created()
                .iter()
                .map(|d| bytes(d))
                .collect(),
            state_dir: p.out.state_dir.as_deref().map(bytes),
            listener_fd: p.out.listener.as_ref().map(|l| l.as_raw_fd()),
            control_fd: p.out.control.as_ref().map(|c| c.as_raw_fd()),
            ready_fd: p.ready.as_ref().map(|r| r.as_raw_fd()),
            log: p.out.log.as_ref().map(|(o, e, f)| {
                let (path, old, max) = f.parts();
                LogRecord {
                    out_fd: o.as_raw_fd(),
                    err_fd: e.as_raw_fd(),
                    path: bytes(path),
                    old: bytes(old),
                    max,
                }
            }),
            console_fd: p.out.console.as_ref().map(|c| c.as_raw_fd()),
            stdin_fd: p.out.stdin.as_ref().map(|c| c.as_raw_fd()),
            bundle: p.out.bundle.as_deref().map(bytes),
            agent: p
                .created
                .agent
                .as_ref()
                .map(|h| (bytes(&h.path), h.state.clone())),
            start: p.start,
            debug: p.debug,
        }
    }

    fn fds(&self) -> Vec<RawFd> {
        let mut v = vec![self.channel_fd];
        v.extend(self.listener_fd);
        v.extend(self.control_fd);
        v.extend(self.ready_fd);
        if let Some(l) = &self.log {
            v.extend([l.out_fd, l.err_fd]);
        }
        v.extend(self.console_fd);
        v.extend(self.stdin_fd);
        v
    }

    fn abandon(&self) -> Abandon {
        Abandon {
            init_pid: self.init_pid,
            ready_fd: self.ready_fd,
            control_fd: self.control_fd,
            dirs: self.cgroup_created.clone(),
            socket: match (&self.state_dir, self.listener_fd) {
                (Some(dir), Some(_)) => {
                    Some(bytes(&path(dir.clone()).join(common::layout::SOCKET_FILE)))
                }
                _ => None,
            },
        }
    }

    fn encode(&self) -> String {
        let header = Header::new(self.abandon());
        let raw = bincode::encode_to_vec((header, self), bincode::config::standard())
            .expect("encoding to a Vec cannot fail");
        raw.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The header, and the record when the header is this build's.
    fn decode(hex: &str) -> Result<(Header, Result<Record, String>), String> {
        let digit = |b: u8| (b as char).to_digit(16).ok_or("not a hex string");
        let raw = hex
            .as_bytes()
            .chunks(2)
            .map(|p| match p {
                [h, l] => Ok((digit(*h)? * 16 + digit(*l)?) as u8),
                _ => Err("odd number of hex digits"),
            })
            .collect::<Result<Vec<u8>, _>>()?;
        let config = bincode::config::standard();
        let (header, used): (Header, _) =
            bincode::decode_from_slice(&raw, config).map_err(|e| e.to_string())?;
        if header.magic != MAGIC {
            return Err("not a zctr-shim hand-off".into());
        }
        if !header.matches_ours() {
            let why = format!(
                "hand-off written by zctr-shim {} (layout {}), this is {MONITOR_BIN} {} \
                 (layout {LAYOUT}): install both executables from one build",
                header.version,
                header.layout,
                env!("CARGO_PKG_VERSION")
            );
            return Ok((header, Err(why)));
        }
        let rec = bincode::decode_from_slice(&raw[used..], config)
            .map_err(|e| e.to_string())
            .and_then(|(rec, n)| {
                if used + n == raw.len() {
                    Ok(rec)
                } else {
                    Err("trailing bytes".to_string())
                }
            });
        Ok((header, rec))
    }

    /// Rebuilds the [`Prepared`], owning the inherited fds.
    fn into_prepared(self) -> Result<Prepared, String> {
        // What can fail for a reason other than a bug comes before any fd is
        // owned here, so that [`Record::abandon`] can still use them.
        let log_file = match &self.log {
            Some(l) => Some(
                LogFile::open(path(l.path.clone()), path(l.old.clone()), l.max)
                    .map_err(|e| format!("log file: {e}"))?,
            ),
            None => None,
        };
        let adopt = |fd: RawFd, what: &str| {
            // SAFETY: the record names each inherited fd once, and nothing
            // else in this fresh process (after exec) has taken them.
            let owned = unsafe { sys::adopt_fd(fd) }
                .map_err(|e| format!("{what} fd {fd}: {}", e.desc()))?;
            // Inheritable only for the exec into the monitor: not into the
            // helpers it runs (`zctr-shim exec` for Exec).
            sys::set_cloexec(fd).map_err(|e| format!("{what} fd {fd}: {}", e.desc()))?;
            Ok::<_, String>(owned)
        };
        let channel = ShimEnd::from_fd(adopt(self.channel_fd, "channel")?);
        let cgroup = ContainerCgroup::from_parts(
            self.cgroup_dirs
                .into_iter()
                .map(|(m, unified, d)| {
                    (
                        Hierarchy {
                            mount_point: path(m),
                            unified,
                        },
                        path(d),
                    )
                })
                .collect(),
            self.cgroup_created.into_iter().map(path).collect(),
        );
        let listener = match self.listener_fd {
            Some(fd) => Some(UnixListener::from(adopt(fd, "listener")?)),
            None => None,
        };
        let control = match self.control_fd {
            Some(fd) => Some(UnixStream::from(adopt(fd, "control")?)),
            None => None,
        };
        let ready = match self.ready_fd {
            Some(fd) => Some(adopt(fd, "ready")?),
            None => None,
        };
        let log = match (self.log, log_file) {
            (Some(l), Some(file)) => {
                let (out, err) = (adopt(l.out_fd, "stdout")?, adopt(l.err_fd, "stderr")?);
                Some((out, err, file))
            }
            _ => None,
        };
        let console = match self.console_fd {
            Some(fd) => Some(adopt(fd, "console")?),
            None => None,
        };
        let stdin = match self.stdin_fd {
            Some(fd) => Some(adopt(fd, "stdin")?),
            None => None,
        };
        Ok(Prepared {
            id: self.id,
            created: Created {
                pid: self.init_pid,
                channel,
                cgroup,
                oom_base: self.oom_base,
                agent: self.agent.map(|(p, state)| crate::agent::Handoff {
                    path: path(p),
                    state,
                }),
            },
            out: Outputs {
                state_dir: self.state_dir.map(path),
                listener,
                control,
                log,
                console,
                stdin,
                bundle: self.bundle.map(path),
            },
            ready,
            start: self.start,
            debug: self.debug,
        })
    }
}

/// The monitor executable beside the running `zctr-shim`.
pub fn monitor_path() -> std::io::Result<PathBuf> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    Ok(exe.with_file_name(MONITOR_BIN))
}

/// Replaces this process with the monitor executable, handing `p` over.
/// Returns only if that fails (then `p` is intact and can be served here).
pub fn exec_monitor(p: &Prepared) -> std::io::Error {
    let monitor = match monitor_path() {
        Ok(m) => m,
        Err(e) => return e,
    };
    let rec = Record::of(p);
    for fd in rec.fds() {
        if let Err(e) = sys::keep_across_exec(fd) {
            return e.into();
        }
    }
    let args = [
        OsStr::new(MONITOR_BIN),
        OsStr::new("--id"),
        OsStr::new(&rec.id),
        OsStr::new("--handoff"),
        OsStr::new(&rec.encode()),
    ]
    .map(|a| CString::new(a.as_bytes()).unwrap_or_default());
    let env: [CString; 0] = [];
    let err = nix::unistd::execve(
        &CString::new(monitor.as_os_str().as_bytes()).unwrap_or_default(),
        &args,
        &env,
    )
    .map_or_else(std::io::Error::from, |never| match never {});
    // Back to close-on-exec, so nothing leaks into what this process runs next.
    for fd in rec.fds() {
        let _ = sys::set_cloexec(fd);
    }
    std::io::Error::new(err.kind(), format!("{}: {err}", monitor.display()))
}

/// Closes every fd above stderr that is not in `keep`: whatever the caller of
/// `zctr-shim` leaked to it stays out of the long-lived monitor.
fn close_other_fds(keep: &[RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&fd| fd > 2)
        .map(|&fd| fd as u32)
        .collect();
    keep.sort_unstable();
    let mut next = 3u32;
    for fd in keep {
        if fd > next {
            let _ = sys::close_range(next, fd - 1);
        }
        next = next.max(fd + 1);
    }
    let _ = sys::close_range(next, u32::MAX);
}

/// Takes over what `zctr-shim` handed over in `hex` (the `--handoff`
/// argument): checks the record, closes every other fd, and owns the ones it
/// names. On failure the container is given up (see [`Abandon`]) and the
/// monitor's exit code is returned.
pub fn receive(hex: &str) -> Result<(Prepared, SignalFd), i32> {
    let (header, rec) = match Record::decode(hex) {
        Ok(decoded) => decoded,
        Err(e) => {
            // Nothing is known: exiting closes the handshake socket, which
            // ends the waiting container process.
            crate::say!("{MONITOR_BIN}: bad handoff: {e}");
            return Err(1);
        }
    };
    let give_up = |why: String| {
        header.abandon.run(&why);
        1
    };
    let rec = rec.map_err(give_up)?;
    close_other_fds(&rec.fds());
    let signals = signals::signal_fd().map_err(|e| give_up(format!("signalfd: {}", e.desc())))?;
    let prepared = rec
        .into_prepared()
        .map_err(|e| give_up(format!("taking over: {e}")))?;
    Ok((prepared, signals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_survives_the_hex_round_trip() {
        let rec = Record {
            id: "c1".into(),
            init_pid: 42,
            channel_fd: 5,
            oom_base: 3,
            cgroup_dirs: vec![(
                b"/sys/fs/cgroup".to_vec(),
                true,
                b"/sys/fs/cgroup/a b".to_vec(),
            )],
            cgroup_created: vec![b"/sys/fs/cgroup/a b".to_vec()],
            state_dir: Some(b"/run/zctr/c1\xff".to_vec()),
            listener_fd: Some(6),
            control_fd: None,
            ready_fd: Some(7),
            log: Some(LogRecord {
                out_fd: 8,
                err_fd: 9,
                path: b"/l".to_vec(),
                old: b"/l.1".to_vec(),
                max: 1 << 20,
            }),
            console_fd: Some(10),
            stdin_fd: Some(11),
            bundle: Some(b"/b".to_vec()),
            agent: Some((b"/run/agent.sock".to_vec(), b"{}".to_vec())),
            start: false,
            debug: true,
        };
        let hex = rec.encode();
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        let (header, back) = Record::decode(&hex).unwrap();
        assert_eq!(back.unwrap(), rec);
        assert_eq!(header.abandon.init_pid, 42);
        assert_eq!(
            header.abandon.socket,
            Some(b"/run/zctr/c1\xff/shim.sock".to_vec())
        );
        // Another build's hand-off: the header still says how to give up.
        let other = format!("5a43484f63{}", &hex["5a43484f01".len()..]);
        let (header, back) = Record::decode(&other).unwrap();
        assert!(back
            .unwrap_err()
            .contains("install both executables from one build"));
        assert_eq!(header.abandon.ready_fd, Some(7));
        assert!(Record::decode("ä0").is_err());
        assert_eq!(rec.fds(), vec![5, 6, 7, 8, 9, 10, 11]);
        assert!(Record::decode(&hex[1..]).is_err());
        assert!(Record::decode(&format!("{hex}00")).unwrap().1.is_err());
        assert!(Record::decode("zz").is_err());
    }
}
