//! The seccomp agent hand-off: `SCMP_ACT_NOTIFY` with `linux.seccomp.listenerPath`
//! (OCI runtime spec, "Seccomp" and "The Container Process State").
//!
//! The container's init installs its filter with
//! `SECCOMP_FILTER_FLAG_NEW_LISTENER` and sends the listener fd to the shim
//! over the handshake channel (see `channel`). The shim (the monitor, during
//! `start`) connects to `listenerPath`, a Unix stream socket, sends one
//! [container process state](process_state_json) as JSON with the fd attached
//! (SCM_RIGHTS, named `seccompFd` in `fds`), closes the connection and its copy
//! of the fd, and only then lets the init go on to exec. When that fails,
//! `start` fails with an error naming `listenerPath` and the init is killed
//! before any of the container's code ran.
//!
//! The JSON is made in the setup phase (the pid is known once the init is
//! cloned), so the monitor only sends bytes.

use nix::errno::Errno;
use nix::sys::socket::{
    connect, send, sendmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessage, MsgFlags,
    SockFlag, SockType, UnixAddr,
};
use nix::sys::time::TimeVal;
use serde_json::json;
use std::collections::HashMap;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// The version of the runtime spec the process state follows.
pub const OCI_VERSION: &str = "1.2.0";

/// How long connecting, and then sending, may each block: the monitor must
/// go on, and the manager's own wait for `start` (10 s) must see this error
/// first.
pub const TIMEOUT_SECS: i64 = 4;

/// The agent a notifying profile names, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// `listenerPath`, on the host.
    pub path: PathBuf,
    /// `listenerMetadata`, passed on as `metadata`.
    pub metadata: Option<String>,
}

/// What the monitor sends and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub path: PathBuf,
    /// The container process state, as JSON.
    pub state: Vec<u8>,
}

/// Handing the listener to the agent failed at `step`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("seccomp agent at listenerPath {}: {step}: {}", path.display(), errno.desc())]
pub struct AgentError {
    pub path: PathBuf,
    pub step: &'static str,
    pub errno: Errno,
}

impl Agent {
    /// The hand-off for the container `id` whose init is `pid`.
    pub fn handoff(
        &self,
        id: &str,
        pid: i32,
        bundle: &Path,
        annotations: Option<&HashMap<String, String>>,
    ) -> Handoff {
        Handoff {
            path: self.path.clone(),
            state: process_state_json(id, pid, bundle, self.metadata.as_deref(), annotations),
        }
    }
}

/// The container process state: `ociVersion`, `fds` (`["seccompFd"]`), `pid`,
/// `metadata` (when `listenerMetadata` is set), and `state`, the container's
/// OCI state. Its status is `created`: zctr installs the filter, and so hands
/// the listener over, during `start`, after `create` has finished (runc does it
/// during `create`, and says `creating`).
pub fn process_state_json(
    id: &str,
    pid: i32,
    bundle: &Path,
    metadata: Option<&str>,
    annotations: Option<&HashMap<String, String>>,
) -> Vec<u8> {
    let bundle = std::path::absolute(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    let mut state = json!({
        "ociVersion": OCI_VERSION,
        "id": id,
        "status": "created",
        "pid": pid,
        "bundle": bundle.to_string_lossy(),
    });
    if let Some(a) = annotations.filter(|a| !a.is_empty()) {
        state["annotations"] = json!(a);
    }
    let mut v = json!({
        "ociVersion": OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata {
        v["metadata"] = json!(m);
    }
    serde_json::to_vec(&v).expect("a JSON value always serializes")
}

/// Connects to the agent, sends the state with `listener` attached, and
/// closes the connection. Each step may block at most [`TIMEOUT_SECS`].
pub fn send_listener(h: &Handoff, listener: BorrowedFd) -> Result<(), AgentError> {
    let fail = |step: &'static str| {
        move |errno: Errno| AgentError {
            path: h.path.clone(),
            step,
            errno,
        }
    };
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(fail("socket"))?;
    let timeout = TimeVal::new(TIMEOUT_SECS, 0);
    setsockopt(&sock, sockopt::SendTimeout, &timeout).map_err(fail("set a send timeout"))?;
    let addr = UnixAddr::new(&h.path).map_err(fail("address"))?;
    connect(sock.as_raw_fd(), &addr).map_err(fail("connect"))?;
    let fds = [listener.as_raw_fd()];
    let mut sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&h.state)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(fail("send the container process state"))?;
    // The fd went with the first part; the rest, if any, follows alone.
    while sent < h.state.len() {
        match send(sock.as_raw_fd(), &h.state[sent..], MsgFlags::MSG_NOSIGNAL) {
            Ok(0) => return Err(fail("send the container process state")(Errno::EPIPE)),
            Ok(n) => sent += n,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(fail("send the container process state")(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::net::UnixListener;

    #[test]
    fn the_state_has_every_field_the_spec_names() {
        let ann = HashMap::from([("k".to_string(), "v".to_string())]);
        let v: serde_json::Value = serde_json::from_slice(&process_state_json(
            "c1",
            42,
            Path::new("/b"),
            Some("meta"),
            Some(&ann),
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": 42, "metadata": "meta",
                "state": {"ociVersion": OCI_VERSION, "id": "c1", "status": "created", "pid": 42,
                          "bundle": "/b", "annotations": {"k": "v"}}})
        );
        let v: serde_json::Value =
            serde_json::from_slice(&process_state_json("c1", 42, Path::new("/b"), None, None))
                .unwrap();
        assert!(v.get("metadata").is_none() && v["state"].get("annotations").is_none());
    }

    #[test]
    fn the_listener_travels_with_the_state_and_a_missing_agent_is_named() {
        let dir = std::env::temp_dir().join(format!("zctr-agent-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let agent = Agent {
            path: path.clone(),
            metadata: None,
        };
        let h = agent.handoff("c1", 7, Path::new("/b"), None);
        let devnull = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsFd;
        send_listener(&h, devnull.as_fd()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, h.state);
        drop(l);
        std::fs::remove_file(&path).unwrap();
        let e = send_listener(&h, devnull.as_fd()).unwrap_err();
        assert_eq!(e.step, "connect");
        assert!(
            e.to_string()
                .contains(&format!("listenerPath {}", path.display())),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
