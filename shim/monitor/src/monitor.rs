//! After setup: the shim as subreaper and reporter. One thread, one poll loop
//! over a signalfd, the child's handshake end, the control socket and its
//! clients, and the container's log pipes. Once this loop runs it must not die:
//! errors on a client drop that client, nothing else. No write error ends it
//! either: stderr goes through [`zctr_shim_core::say`], a log write that fails loses
//! those bytes, and a `status.json` that cannot be written is retried every
//! [`RETRY_MS`] while the status is served from memory on the socket. The
//! monitor exits only once the exit is in `status.json` (or its state
//! directory is gone, i.e. the container was deleted).

use crate::idle::IdlePages;
use crate::poll::{PollSet, Source};
use crate::status;
use common::protocol::{self, ExitStatus, FrameBuffer, ManagerMsg, ShimMsg, ShimState};
use common::state::{ExitRecord, ProcId, ShimStatus};
use nix::errno::Errno;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use zctr_shim_core::channel::Event;
use zctr_shim_core::handoff::{Created, Outputs};
use zctr_shim_core::{say, sys};

pub(crate) const MAX_CLIENTS: usize = 16;

/// How long the loop must be idle before it releases the pages it does not
/// need to wait (a few page faults when it next wakes).
const IDLE_TRIM_MS: i32 = 1000;

/// How often a `status.json` that could not be written is tried again.
pub const RETRY_MS: u64 = 1000;

/// How long after the init's exit its output is still copied into the log.
use common::state::LOG_DRAIN_MS as DRAIN_MS;

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
    /// The state directory, held open from the start (see [`status::StateDir`]).
    state_dir: Option<status::StateDir>,
    exit: Option<ExitRecord>,
    /// Something ran since the last release of idle pages: release them once
    /// the loop has been idle for [`IDLE_TRIM_MS`].
    trim: bool,
    /// Found at the first release.
    idle_pages: Option<IdlePages>,
    /// `status.json` is behind the state in memory; try again at this time.
    retry_at: Option<Instant>,
    /// Log writes are failing (said once, until one succeeds again), and the
    /// bytes lost since.
    log_failing: bool,
    log_lost: u64,
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
            execs: Vec::new(),
        };
        let state_dir = out
            .state_dir
            .as_deref()
            .map(status::StateDir::open)
            .transpose()?;
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
            state_dir,
            exit: None,
            trim: true,
            idle_pages: None,
            retry_at: None,
            log_failing: false,
            log_lost: 0,
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

    /// Writes the state to `status.json`. On failure the state stays in
    /// memory (served on the socket) and the write is retried on a timer.
    fn persist(&mut self) {
        self.status.state = self.state.into();
        self.status.exit = self.exit;
        let Some(dir) = &self.state_dir else {
            return;
        };
        match dir.write(&self.status) {
            Ok(()) => {
                if self.retry_at.take().is_some() {
                    say!("zctr-shim: {}: status.json written again", self.id);
                }
            }
            Err(e @ status::StateDirError::Gone(_)) => {
                // Deleted (perhaps already replaced by a new container of the
                // same name): nothing more is written there.
                say!("zctr-shim: {}: {e}; status.json no longer written", self.id);
                self.state_dir = None;
                self.retry_at = None;
            }
            Err(e) => {
                if self.retry_at.is_none() {
                    say!(
                        "zctr-shim: {}: writing status.json: {e} (kept in memory, retried every {RETRY_MS} ms)",
                        self.id
                    );
                }
                self.retry_at = Some(Instant::now() + Duration::from_millis(RETRY_MS));
            }
        }
    }

    /// Whether `status.json` lags behind and may still be written: false
    /// once it is written, or once the state directory is gone (the
    /// container was deleted: nobody will read it).
    fn unsaved(&self) -> bool {
        match (&self.retry_at, &self.state_dir) {
            (Some(_), Some(dir)) => dir.current(),
            _ => false,
        }
    }

    /// The `Exited` message, once the init has exited.
    fn exited(&self) -> Option<ShimMsg> {
        self.exit.map(|rec| ShimMsg::Exited {
            status: rec.status(),
            oom_killed: rec.oom_killed,
            at_ms: rec.at_ms,
        })
    }

    /// Sends `Hello` to client `idx`, then `Exited` if the init has exited:
    /// a client learns the exit from the socket even when `status.json`
    /// could not be written.
    fn greet(&mut self, idx: usize) {
        let (hello, exited) = (self.hello(), self.exited());
        let c = &mut self.clients[idx];
        c.send(&hello);
        if let Some(exited) = exited {
            c.send(&exited);
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
            let _ = sys::kill(self.init.pid, libc::SIGCONT);
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
                    sys::kill(self.init.pid, signal)
                        .err()
                        .map(|e| (e as i32, format!("kill {signal}: {}", e.desc())))
                }
            }
            ManagerMsg::Status => {
                self.greet(idx);
                None
            }
            ManagerMsg::Exec { .. }
            | ManagerMsg::Attach { .. }
            | ManagerMsg::Input { .. }
            | ManagerMsg::CloseInput { .. }
            | ManagerMsg::Resize { .. } => Some((
                libc::ENOSYS,
                "sessions (exec, attach) are not supported by this monitor".into(),
            )),
        };
        if let Some((errno, message)) = reply {
            self.clients[idx].send(&ShimMsg::CommandFailed { errno, message });
        }
    }

    fn on_channel(&mut self) {
        match self.created.channel.recv() {
            Ok(Event::Closed) | Err(_) => {
                if self.starting && self.exit.is_none() {
                    self.starting = false;
                    self.state = ShimState::Running;
                    self.status.started_ms = Some(status::now_ms());
                    self.persist();
                    self.broadcast(&ShimMsg::Started);
                }
                self.starting = false;
            }
            Ok(Event::Failed(f)) => {
                say!("zctr-shim: {}: {f}", self.id);
                let msg = ShimMsg::CommandFailed {
                    errno: f.errno,
                    message: f.to_string(),
                };
                self.broadcast(&msg);
                self.starting = false;
            }
            Ok(Event::Listener(fd)) => self.hand_to_agent(fd),
            Ok(Event::Ready) | Ok(Event::Console(_)) => {}
        }
    }

    /// The init installed a notifying filter and sent its listener: hand it
    /// to the seccomp agent (see `agent`), then let the init go on. If that
    /// fails, `start` fails and the init is killed before it exec'd.
    fn hand_to_agent(&mut self, fd: std::os::fd::OwnedFd) {
        let sent = match &self.created.agent {
            Some(h) => zctr_shim_core::agent::send_listener(h, std::os::fd::AsFd::as_fd(&fd))
                .map_err(|e| (e.errno as i32, e.to_string())),
            None => Err((
                libc::EPROTO,
                "the container process sent a seccomp listener, but no listenerPath is planned"
                    .to_string(),
            )),
        };
        drop(fd);
        let told = sent.and_then(|()| {
            self.created
                .channel
                .send_agent_ready()
                .map_err(|e| (e as i32, format!("seccomp agent hand-off: {}", e.desc())))
        });
        if let Err((errno, message)) = told {
            let _ = crate::sys::kill(self.init.pid, libc::SIGKILL);
            crate::say!("zctr-shim: {}: start: {message}", self.id);
            self.starting = false;
            self.broadcast(&ShimMsg::CommandFailed { errno, message });
        }
    }

    fn on_signal(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let sig = info.ssi_signo as i32;
            if sig == libc::SIGCHLD {
                self.reap();
            } else if self.exit.is_none() {
                let _ = sys::kill(self.init.pid, sig);
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
        loop {
            let Some(l) = &self.out.listener else { return };
            let Ok((stream, _)) = l.accept() else { return };
            if self.clients.len() >= MAX_CLIENTS || stream.set_nonblocking(true).is_err() {
                continue;
            }
            // Appended: the indices polled in this pass stay valid. One that
            // cannot take its greeting is dropped at the end of the pass.
            self.clients.push(Client::new(stream));
            self.greet(self.clients.len() - 1);
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
        match sys::read(fd, &mut buf) {
            Ok(0) => false,
            Ok(n) => {
                match log.write(&buf[..n]) {
                    Ok(()) if self.log_failing => {
                        self.log_failing = false;
                        say!(
                            "zctr-shim: {}: log written again, {} bytes lost",
                            self.id,
                            self.log_lost
                        );
                        self.log_lost = 0;
                    }
                    Ok(()) => {}
                    Err(e) => {
                        // Said once per failing stretch, not once per chunk.
                        if !self.log_failing {
                            say!("zctr-shim: {}: log: {e} (output lost)", self.id);
                        }
                        self.log_failing = true;
                        self.log_lost += n as u64;
                    }
                }
                true
            }
            Err(Errno::EAGAIN) => true,
            Err(_) => false,
        }
    }

    /// Runs until the container's init has exited, its output is drained
    /// (EOF on both pipes, or [`DRAIN_MS`] after the exit) and its exit is in
    /// `status.json` (see [`Monitor::unsaved`]). Returns how it ended.
    pub fn run(mut self) -> ExitStatus {
        let mut log_open = [self.out.log.is_some(); 2];
        let mut channel_open = true;
        let mut drain_deadline: Option<Instant> = None;
        loop {
            if let Some(rec) = self.exit {
                let deadline = *drain_deadline
                    .get_or_insert_with(|| Instant::now() + Duration::from_millis(DRAIN_MS));
                if log_open.iter().any(|&o| o) && Instant::now() >= deadline {
                    // Done copying; orphans still writing get EPIPE.
                    log_open = [false; 2];
                    self.out.log = None;
                }
                if !log_open.iter().any(|&o| o) && !self.unsaved() {
                    self.last_round();
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
            let draining = self.exit.is_some() && log_open.iter().any(|&o| o);
            let mut timeout_ms = if draining {
                100
            } else if self.trim && self.exit.is_none() {
                IDLE_TRIM_MS
            } else {
                -1
            };
            if let Some(at) = self.retry_at {
                let left = at.saturating_duration_since(Instant::now()).as_millis();
                let left = left.min(i32::MAX as u128) as i32;
                timeout_ms = if timeout_ms < 0 {
                    left
                } else {
                    timeout_ms.min(left)
                };
            }
            let mut polled = sys::poll(set.fds(), timeout_ms);
            if matches!(polled, Ok(0))
                && self.trim
                && self.exit.is_none()
                && self.retry_at.is_none()
            {
                // Idle for a while: what setup and the last events touched is
                // not needed to wait. Drop it and wait on the same set.
                self.trim = false;
                let pages = self.idle_pages.get_or_insert_with(IdlePages::find);
                polled = pages.release_and_poll(set.fds(), -1);
            }
            match polled {
                Ok(0) => {}
                Ok(_) => self.trim = true,
                Err(Errno::EINTR) => {}
                Err(e) => {
                    say!("zctr-shim: poll: {e}");
                    continue;
                }
            }
            if self.retry_at.is_some_and(|at| Instant::now() >= at) {
                self.persist();
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

    /// Answers what clients sent and greets who connected since the last
    /// pass, so that none is left with a command unanswered (or a reset
    /// connection) because the monitor exited first.
    fn last_round(&mut self) {
        self.accept();
        for idx in 0..self.clients.len() {
            if !self.clients[idx].dead {
                self.on_client(idx);
            }
        }
    }

    fn finish(&mut self) {
        // Orphans the kernel handed us after the init's death.
        while let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
            waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG))
        {}
        if let Some(dir) = &self.state_dir {
            if self.out.listener.is_some() {
                // Only from this container's directory, never from a new one
                // at the same path.
                dir.remove(common::layout::SOCKET_FILE);
            }
        }
        self.created.cgroup.cleanup();
    }
}
