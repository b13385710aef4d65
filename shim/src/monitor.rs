//! After setup: the shim as subreaper and reporter. One thread, one poll loop
//! over a signalfd, the child's handshake end, the control socket and its
//! clients, and the container's log pipes. Once this loop runs it must not die:
//! errors on a client drop that client, nothing else.

use crate::launch::Created;
use crate::logfile::LogFile;
use crate::status;
use common::protocol::{self, ExitStatus, FrameBuffer, ManagerMsg, ShimMsg, ShimState};
use common::state::{ExitRecord, ProcId, ShimStatus};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

const MAX_CLIENTS: usize = 16;

/// How long the loop must be idle before it releases the pages it does not
/// need to wait (a few page faults when it next wakes).
const IDLE_TRIM_MS: i32 = 1000;

/// What a polled fd is.
#[derive(Debug, Clone, Copy)]
enum Source {
    Signals,
    Channel,
    Listener,
    Log(usize),
    Client(usize),
}

/// The fds one poll waits on, and what each is.
struct PollSet {
    fds: [libc::pollfd; POLL_MAX],
    sources: [Source; POLL_MAX],
    len: usize,
}

/// Signals, channel, listener, two log pipes, and the clients.
const POLL_MAX: usize = 5 + MAX_CLIENTS;

impl PollSet {
    fn new() -> Self {
        PollSet {
            fds: [libc::pollfd {
                fd: -1,
                events: 0,
                revents: 0,
            }; POLL_MAX],
            sources: [Source::Signals; POLL_MAX],
            len: 0,
        }
    }

    fn add(&mut self, source: Source, fd: std::os::fd::RawFd) {
        if self.len < POLL_MAX {
            self.fds[self.len] = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            self.sources[self.len] = source;
            self.len += 1;
        }
    }

    fn fds(&mut self) -> &mut [libc::pollfd] {
        &mut self.fds[..self.len]
    }

    /// The sources with events, in the order added; later ones are moved down.
    fn ready(&mut self) -> &[Source] {
        let mut n = 0;
        for i in 0..self.len {
            if self.fds[i].revents != 0 {
                self.sources[n] = self.sources[i];
                n += 1;
            }
        }
        &self.sources[..n]
    }
}

struct Client {
    stream: UnixStream,
    frames: FrameBuffer,
    /// A write or read failed: dropped at the end of the loop pass, so that
    /// the indices the pass polled with stay valid until then.
    dead: bool,
}

impl Client {
    fn new(stream: UnixStream) -> Self {
        Client {
            stream,
            frames: FrameBuffer::new(),
            dead: false,
        }
    }

    /// Sends `msg`; a client that cannot take it is marked dead.
    fn send(&mut self, msg: &ShimMsg) {
        if !self.dead && !send_to(&mut self.stream, msg) {
            self.dead = true;
        }
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
}

pub struct Monitor {
    id: String,
    shim: ProcId,
    init: ProcId,
    created: Created,
    state: ShimState,
    starting: bool,
    status: ShimStatus,
    out: Outputs,
    clients: Vec<Client>,
    signals: SignalFd,
    exit: Option<ExitRecord>,
    /// Something ran since the last release of idle pages: release them once
    /// the loop has been idle for [`IDLE_TRIM_MS`].
    trim: bool,
    /// Found at the first release.
    idle_pages: Option<crate::sys::IdlePages>,
}

fn send_to(stream: &mut UnixStream, msg: &ShimMsg) -> bool {
    // Every frame the shim sends fits in a small buffer (texts are capped at
    // MAX_TEXT); a whole MAX_FRAME on the stack would keep 16 KiB resident.
    let mut buf = [0u8; SMALL_FRAME];
    match protocol::encode_frame(msg, &mut buf) {
        Ok(n) => stream.write_all(&buf[..n]).is_ok(),
        Err(_) => match protocol::encode_frame_vec(msg) {
            Ok(frame) => stream.write_all(&frame).is_ok(),
            Err(_) => false,
        },
    }
}

const SMALL_FRAME: usize = protocol::MAX_TEXT + 256;

impl Monitor {
    pub fn new(
        id: String,
        created: Created,
        signals: SignalFd,
        mut out: Outputs,
    ) -> std::io::Result<Self> {
        let shim = status::proc_id(std::process::id() as i32)?;
        let init = status::proc_id(created.pid)?;
        let status = ShimStatus {
            id: id.clone(),
            shim,
            init: Some(init),
            state: ShimState::Created.into(),
            created_ms: status::now_ms(),
            started_ms: None,
            exit: None,
        };
        let mut clients = Vec::new();
        if let Some(c) = out.control.take() {
            c.set_nonblocking(true)?;
            clients.push(Client::new(c));
        }
        let mut m = Monitor {
            id,
            shim,
            init,
            created,
            state: ShimState::Created,
            starting: false,
            status,
            out,
            clients,
            signals,
            exit: None,
            trim: true,
            idle_pages: None,
        };
        m.persist();
        let hello = m.hello();
        m.broadcast(&hello);
        m.broadcast(&ShimMsg::Created { pid: m.init.pid });
        Ok(m)
    }

    fn hello(&self) -> ShimMsg {
        ShimMsg::Hello {
            shim_pid: self.shim.pid,
            init_pid: self.init.pid,
            state: self.state,
        }
    }

    fn persist(&mut self) {
        self.status.state = self.state.into();
        self.status.exit = self.exit;
        if let Some(dir) = &self.out.state_dir {
            if let Err(e) = status::write(dir, &self.status) {
                eprintln!("zctr-shim: writing {}: {e}", dir.display());
            }
        }
    }

    fn broadcast(&mut self, msg: &ShimMsg) {
        for c in &mut self.clients {
            c.send(msg);
        }
    }

    /// Lets the container exec (create → running).
    pub fn start(&mut self) -> Result<(), (i32, String)> {
        if self.state != ShimState::Created || self.starting {
            return Err((
                libc::EINVAL,
                format!("container {} is not in the created state", self.id),
            ));
        }
        self.created
            .channel
            .send_start()
            .map_err(|e| (e as i32, format!("start: {}", e.desc())))?;
        // Until it execs, the init runs the shim's code, not the container's:
        // a stop signal sent to it before `start` (nothing in the container
        // could have sent one) must not keep it from reading the release and
        // exec'ing, or `start` would wait for a process nobody resumes.
        if status::is_stopped(self.init.pid) {
            let _ = crate::sys::kill(self.init.pid, libc::SIGCONT);
        }
        self.starting = true;
        Ok(())
    }

    fn handle_command(&mut self, idx: usize, msg: ManagerMsg) {
        let reply = match msg {
            ManagerMsg::Start => self.start().err(),
            ManagerMsg::Kill { signal } => {
                if self.exit.is_some() {
                    Some((libc::ESRCH, format!("container {} has exited", self.id)))
                } else {
                    crate::sys::kill(self.init.pid, signal)
                        .err()
                        .map(|e| (e as i32, format!("kill {signal}: {}", e.desc())))
                }
            }
            ManagerMsg::Status => {
                let hello = self.hello();
                self.clients[idx].send(&hello);
                None
            }
        };
        if let Some((errno, message)) = reply {
            self.clients[idx].send(&ShimMsg::CommandFailed { errno, message });
        }
    }

    fn on_channel(&mut self) {
        match self.created.channel.recv() {
            Ok(crate::channel::Event::Closed) | Err(_) => {
                if self.starting && self.exit.is_none() {
                    self.starting = false;
                    self.state = ShimState::Running;
                    self.status.started_ms = Some(status::now_ms());
                    self.persist();
                    self.broadcast(&ShimMsg::Started);
                }
                self.starting = false;
            }
            Ok(crate::channel::Event::Failed(f)) => {
                eprintln!("zctr-shim: {}: {f}", self.id);
                let msg = ShimMsg::CommandFailed {
                    errno: f.errno,
                    message: f.to_string(),
                };
                self.broadcast(&msg);
                self.starting = false;
            }
            Ok(crate::channel::Event::Ready) => {}
        }
    }

    fn on_signal(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGCHLD {
                self.reap();
            } else if self.exit.is_none() {
                let _ = crate::sys::kill(self.init.pid, sig);
            }
        }
    }

    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == self.init.pid => {
                    self.init_exited(ExitStatus::Code(code))
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() == self.init.pid => {
                    self.init_exited(ExitStatus::Signal(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    fn init_exited(&mut self, status: ExitStatus) {
        let oom = self.created.cgroup.oom_kills() > self.created.oom_base;
        let rec = ExitRecord::new(status, oom, status::now_ms());
        self.exit = Some(rec);
        self.state = ShimState::Stopped;
        self.persist();
        self.broadcast(&ShimMsg::Exited {
            status,
            oom_killed: oom,
            at_ms: rec.at_ms,
        });
    }

    fn accept(&mut self) {
        let Some(l) = &self.out.listener else { return };
        while let Ok((stream, _)) = l.accept() {
            if self.clients.len() >= MAX_CLIENTS || stream.set_nonblocking(true).is_err() {
                continue;
            }
            let mut c = Client::new(stream);
            c.send(&self.hello());
            if !c.dead {
                self.clients.push(c);
            }
        }
    }

    /// Reads and runs what client `idx` sent; false once it is gone. Commands
    /// that arrived before its end of stream still run.
    fn on_client(&mut self, idx: usize) -> bool {
        let mut buf = [0u8; 512];
        let mut open = true;
        loop {
            match self.clients[idx].stream.read(&mut buf) {
                Ok(0) => {
                    open = false;
                    break;
                }
                Ok(n) => self.clients[idx].frames.extend(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        loop {
            match self.clients[idx].frames.next_frame::<ManagerMsg>() {
                Ok(Some(msg)) => self.handle_command(idx, msg),
                Ok(None) => return open,
                Err(e) => {
                    let _ = send_to(
                        &mut self.clients[idx].stream,
                        &ShimMsg::CommandFailed {
                            errno: libc::EPROTO,
                            message: e.to_string(),
                        },
                    );
                    return false;
                }
            }
        }
    }

    /// Copies what the container wrote; false at EOF.
    fn on_log(&mut self, which: usize) -> bool {
        let Some((out, err, log)) = &mut self.out.log else {
            return false;
        };
        let fd = if which == 0 {
            out.as_raw_fd()
        } else {
            err.as_raw_fd()
        };
        let mut buf = [0u8; 16 * 1024];
        match crate::sys::read(fd, &mut buf) {
            Ok(0) => false,
            Ok(n) => {
                if let Err(e) = log.write(&buf[..n]) {
                    eprintln!("zctr-shim: log: {e}");
                }
                true
            }
            Err(Errno::EAGAIN) => true,
            Err(_) => false,
        }
    }

    /// Runs until the container's init has exited and its output is drained.
    /// Returns how it ended.
    pub fn run(mut self) -> ExitStatus {
        let mut log_open = [self.out.log.is_some(); 2];
        let mut channel_open = true;
        let mut drain_deadline: Option<std::time::Instant> = None;
        loop {
            if let Some(rec) = self.exit {
                let deadline = *drain_deadline.get_or_insert_with(|| {
                    std::time::Instant::now() + std::time::Duration::from_secs(2)
                });
                if !log_open.iter().any(|&o| o) || std::time::Instant::now() >= deadline {
                    self.finish();
                    return rec.status();
                }
            }
            // Only the fds still of interest: a closed one (the channel once the
            // container exec'd, a log pipe at EOF) would report POLLHUP forever,
            // whatever events are asked for, and keep the loop spinning. Fixed
            // arrays: the idle loop allocates nothing (and so touches no malloc code).
            let mut set = PollSet::new();
            set.add(Source::Signals, self.signals.as_raw_fd());
            if channel_open {
                set.add(Source::Channel, self.created.channel.fd());
            }
            if let Some(l) = &self.out.listener {
                set.add(Source::Listener, l.as_raw_fd());
            }
            if let Some((o, e, _)) = &self.out.log {
                for (which, fd) in [o, e].into_iter().enumerate() {
                    if log_open[which] {
                        set.add(Source::Log(which), fd.as_raw_fd());
                    }
                }
            }
            for (idx, c) in self.clients.iter().enumerate() {
                set.add(Source::Client(idx), c.stream.as_raw_fd());
            }
            let timeout_ms = if self.exit.is_some() {
                100
            } else if self.trim {
                IDLE_TRIM_MS
            } else {
                -1
            };
            let mut polled = crate::sys::poll(set.fds(), timeout_ms);
            if matches!(polled, Ok(0)) && self.trim && self.exit.is_none() {
                // Idle for a while: what setup and the last events touched is
                // not needed to wait. Drop it and wait on the same set.
                self.trim = false;
                let pages = self
                    .idle_pages
                    .get_or_insert_with(crate::sys::IdlePages::find);
                polled = pages.release_and_poll(set.fds(), -1);
            }
            match polled {
                Ok(0) => {}
                Ok(_) => self.trim = true,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    eprintln!("zctr-shim: poll: {e}");
                    continue;
                }
            }
            let ready = set.ready();
            for &source in ready {
                match source {
                    Source::Signals => self.on_signal(),
                    Source::Channel => {
                        self.on_channel();
                        if !self.starting && self.state != ShimState::Created {
                            channel_open = false;
                        }
                    }
                    Source::Listener => self.accept(),
                    Source::Log(which) => log_open[which] = self.on_log(which),
                    Source::Client(_) => {}
                }
            }
            // Clients are only marked dead during the pass (above, a broadcast
            // may have failed to reach one), so the polled indices still hold;
            // accepting only appends.
            for &source in ready {
                if let Source::Client(idx) = source {
                    if !self.clients[idx].dead && !self.on_client(idx) {
                        self.clients[idx].dead = true;
                    }
                }
            }
            self.clients.retain(|c| !c.dead);
        }
    }

    fn finish(&mut self) {
        // Orphans the kernel handed us after the init's death.
        while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
            waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG))
        {}
        if let Some(dir) = &self.out.state_dir {
            if self.out.listener.is_some() {
                let _ = std::fs::remove_file(dir.join(common::state::SOCKET_FILE));
            }
        }
        self.created.cgroup.cleanup();
    }
}

/// Blocks the signals the monitor handles and returns a signalfd for them.
/// Called before clone, so no signal is lost; the child unblocks them.
pub fn signal_fd() -> nix::Result<SignalFd> {
    use nix::sys::signal::SigSet;
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
    ] {
        set.add(s);
    }
    set.thread_block()?;
    SignalFd::with_flags(
        &set,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
}
