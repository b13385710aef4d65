//! A small seccomp agent for the tests (`SCMP_ACT_NOTIFY` with `listenerPath`):
//! a thread that listens on a Unix stream socket, takes one container process
//! state (JSON, the listener fd attached with SCM_RIGHTS), then answers the
//! container's notifications with `SECCOMP_IOCTL_NOTIF_RECV`/`SEND` as the
//! test's `answer` function says. The second module here with `unsafe`: the
//! recvmsg and the two ioctls std does not wrap.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the agent answers one notified call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Fail it with this errno.
    Errno(i32),
    /// Pretend it succeeded, returning this value.
    Value(i64),
    /// Let the kernel run it (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
    Continue,
}

/// What the agent saw.
#[derive(Debug, Default)]
pub struct AgentLog {
    /// The container process state, parsed.
    pub state: Option<serde_json::Value>,
    /// How many fds came with it.
    pub fds: usize,
    /// What `/proc/self/fd/N` of the first fd links to (`anon_inode:seccomp notify`).
    pub fd_kind: String,
    /// Syscall numbers notified, in order.
    pub notified: Vec<i32>,
    /// The first error, if the agent stopped on one.
    pub error: Option<String>,
}

/// A running agent; [`SeccompAgent::finish`] stops it and returns its log.
pub struct SeccompAgent {
    pub path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<AgentLog>>,
}

impl SeccompAgent {
    /// Listens on `path` (replaced if it exists) and serves in a thread.
    pub fn start(path: &Path, answer: fn(i32) -> Answer) -> io::Result<SeccompAgent> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || serve(listener, &flag, answer));
        Ok(SeccompAgent {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the agent (it closes the listener fd, so calls still waiting
    /// fail with ENOSYS) and returns what it saw.
    pub fn finish(mut self) -> AgentLog {
        self.stop.store(true, Ordering::SeqCst);
        let log = self
            .thread
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        let _ = std::fs::remove_file(&self.path);
        log
    }
}

impl Drop for SeccompAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Gives up waiting for the runtime's connection after this long.
const ACCEPT_LIMIT: Duration = Duration::from_secs(60);

fn serve(listener: UnixListener, stop: &AtomicBool, answer: fn(i32) -> Answer) -> AgentLog {
    let mut log = AgentLog::default();
    let start = Instant::now();
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if stop.load(Ordering::SeqCst) || start.elapsed() > ACCEPT_LIMIT {
                    return log;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                log.error = Some(format!("accept: {e}"));
                return log;
            }
        }
    };
    let listener_fd = match take_state(stream, &mut log) {
        Ok(fd) => fd,
        Err(e) => {
            log.error = Some(e);
            return log;
        }
    };
    while !stop.load(Ordering::SeqCst) {
        let mut p = libc::pollfd {
            fd: listener_fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the length given.
        let n = unsafe { libc::poll(&mut p, 1, 50) };
        if n <= 0 {
            continue;
        }
        if p.revents & libc::POLLIN != 0 {
            if let Some(nr) = answer_one(listener_fd.as_raw_fd(), answer) {
                log.notified.push(nr);
            }
        } else if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            // Every process under the filter has exited.
            break;
        }
    }
    log
}

/// Reads the state and its fds (all in the first message, then the rest of
/// the JSON up to EOF); returns the first fd.
fn take_state(mut stream: UnixStream, log: &mut AgentLog) -> Result<OwnedFd, String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * 1024];
    let (n, fds) = recv_fds(stream.as_raw_fd(), &mut buf).map_err(|e| format!("recvmsg: {e}"))?;
    buf.truncate(n);
    stream
        .read_to_end(&mut buf)
        .map_err(|e| format!("read: {e}"))?;
    log.fds = fds.len();
    log.state = Some(serde_json::from_slice(&buf).map_err(|e| format!("state JSON: {e}"))?);
    let first = fds.into_iter().next().ok_or("no fd came with the state")?;
    log.fd_kind = std::fs::read_link(format!("/proc/self/fd/{}", first.as_raw_fd()))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Ok(first)
}

/// One recvmsg: the bytes and every SCM_RIGHTS fd.
fn recv_fds(sock: RawFd, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 32];
    // SAFETY: the msghdr points at `iov` and `cbuf`, which outlive the call;
    // the kernel writes at most their lengths, and CMSG_* walk only what it
    // wrote. Each fd received is owned by nobody else.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut fds = Vec::new();
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<libc::c_int>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok((n as usize, fds))
    }
}

/// Receives one notification and answers it; returns its syscall number.
fn answer_one(fd: RawFd, answer: fn(i32) -> Answer) -> Option<i32> {
    // SAFETY: both structs are plain data, zeroed as the kernel requires for
    // RECV; the ioctls read and write exactly these structs.
    unsafe {
        let mut req: libc::seccomp_notif = std::mem::zeroed();
        if libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut req) != 0 {
            // The caller died meanwhile (ENOENT), or was interrupted.
            return None;
        }
        let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
        resp.id = req.id;
        match answer(req.data.nr) {
            Answer::Errno(e) => resp.error = -e,
            Answer::Value(v) => resp.val = v,
            Answer::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        }
        // ENOENT when the caller was killed meanwhile: nothing to answer.
        let _ = libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut resp);
        Some(req.data.nr)
    }
}
