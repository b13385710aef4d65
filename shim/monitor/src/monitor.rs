//! After setup: the shim as subreaper and reporter. One thread, one poll loop
//! over a signalfd, the child's handshake end, the control socket and its
//! clients, the container's log pipes (or terminal), and the sessions'
//! fds (docs/protocol.md, "Sessions"; [`crate::session`], [`crate::spawn`]). Once this loop runs it must not die:
//! errors on a client drop that client, nothing else. No write error ends it
//! either: stderr goes through [`zctr_shim_core::say`], a log write that fails loses
//! those bytes, and a `status.json` that cannot be written is retried every
//! [`RETRY_MS`] while the status is served from memory on the socket. The
//! monitor exits only once the exit is in `status.json` (or its state
//! directory is gone, i.e. the container was deleted).

use crate::client::{Client, MAX_CLIENTS};
use crate::idle::IdlePages;
use crate::poll::{PollSet, Source};
use crate::session::{Exit, Refusal, Session, MAX_SESSIONS};
use crate::spawn::{self, Pending, MAX_PENDING};
use crate::status;
use common::protocol::{self, ExitStatus, ManagerMsg, ShimMsg, ShimState, INIT_SESSION, MAX_CHUNK};
use common::state::{ExecRecord, ExitRecord, ProcId, ShimStatus};
use nix::errno::Errno;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use zctr_shim_core::channel::Event;
use zctr_shim_core::handoff::{Created, Outputs};
use zctr_shim_core::logfile::LogFile;
use zctr_shim_core::{exec_report, say, sys};

mod sessions;
use sessions::ExecAsk;

/// How long the loop must be idle before it releases the pages it does not
/// need to wait (a few page faults when it next wakes).
const IDLE_TRIM_MS: i32 = 1000;

/// How often a `status.json` that could not be written is tried again.
pub const RETRY_MS: u64 = 1000;

/// How long after the init's exit its output is still copied into the log.
use common::state::LOG_DRAIN_MS as DRAIN_MS;

/// How long after the init's exit the monitor waits for the exec'd
/// processes it killed to be reaped and drained.
const EXEC_GRACE_MS: u64 = DRAIN_MS + 3000;

/// How long a reaped pid nobody claimed is kept: an exec'd process may end
/// before its helper's report named it.
const UNMATCHED_MS: u64 = 10_000;
const MAX_UNMATCHED: usize = 16;

/// How often the loop wakes while something is timed (a drain, a helper,
/// a stalled client).
const BUSY_MS: i32 = 100;

pub struct Monitor {
    id: String,
    shim: ProcId,
    init: ProcId,
    created: Created,
    state: ShimState,
    starting: bool,
    status: ShimStatus,
    out: Outputs,
    /// The container's log: session 0's output, and an exec session's when
    /// nobody is attached to it.
    log: Option<LogFile>,
    /// Session 0 (the init) first, then the exec sessions.
    sessions: Vec<Session>,
    next_session: u32,
    helpers: Vec<Pending>,
    /// Reaped pids no session or helper claimed yet: (pid, exit).
    unmatched: Vec<(i32, Exit)>,
    clients: Vec<Client>,
    next_client: u64,
    /// Reused buffers for `Output` frames, made at the first one.
    chunk: Vec<u8>,
    frame: Vec<u8>,
    /// When the init's exit was seen.
    exit_at: Option<Instant>,
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
            clients.push(Client::new(0, c));
        }
        let (outs, log) = match out.log.take() {
            Some((o, e, file)) => ([Some(o), Some(e), out.console.take()], Some(file)),
            None => ([None, None, out.console.take()], None),
        };
        let init_session = Session::new(INIT_SESSION, init.pid, outs, out.stdin.take());
        let mut m = Monitor {
            id,
            shim,
            init,
            created,
            state: ShimState::Created,
            starting: false,
            status,
            out,
            log,
            sessions: vec![init_session],
            next_session: 1,
            helpers: Vec::new(),
            unmatched: Vec::new(),
            clients,
            next_client: 1,
            chunk: Vec::new(),
            frame: Vec::new(),
            exit_at: None,
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
            ManagerMsg::Exec {
                shim,
                process,
                tty,
                stdin,
                detach,
                size,
            } => {
                let req = ExecAsk {
                    shim: &shim,
                    process: &process,
                    tty,
                    stdin,
                    detach,
                    size,
                };
                self.exec(idx, &req).err()
            }
            ManagerMsg::Attach { session } => self.attach(idx, session).err(),
            ManagerMsg::Input { session, data } => {
                if data.len() > MAX_CHUNK {
                    Some((
                        libc::EINVAL,
                        format!(
                            "input of {} bytes: at most {MAX_CHUNK} per frame",
                            data.len()
                        ),
                    ))
                } else {
                    self.session_mut(session)
                        .and_then(|s| s.write_input(&data))
                        .err()
                }
            }
            ManagerMsg::CloseInput { session } => self
                .session_mut(session)
                .and_then(Session::close_input)
                .err(),
            ManagerMsg::Resize {
                session,
                rows,
                cols,
            } => self
                .session_mut(session)
                .and_then(|s| s.resize(rows, cols))
                .err(),
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
                Ok(WaitStatus::Exited(pid, code)) => {
                    self.reaped(pid.as_raw(), ExitStatus::Code(code))
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    self.reaped(pid.as_raw(), ExitStatus::Signal(sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// A child ended: the init, an exec'd process, a helper, or one not
    /// known yet (kept a while: an exec'd process may end before its
    /// helper's report names it).
    fn reaped(&mut self, pid: i32, status: ExitStatus) {
        if pid == self.init.pid {
            return self.init_exited(status);
        }
        let exit = Exit {
            status,
            at_ms: status::now_ms(),
            at: Instant::now(),
        };
        if let Some(s) = self.sessions[1..]
            .iter_mut()
            .find(|s| s.pid == pid && s.exit.is_none())
        {
            s.exit = Some(exit);
            return;
        }
        if let Some(h) = self.helpers.iter_mut().find(|h| h.helper == pid) {
            h.reaped = true;
            return;
        }
        let now = exit.at;
        self.unmatched
            .retain(|(_, e)| now.duration_since(e.at) < Duration::from_millis(UNMATCHED_MS));
        if self.unmatched.len() >= MAX_UNMATCHED {
            self.unmatched.remove(0);
        }
        self.unmatched.push((pid, exit));
    }

    fn init_exited(&mut self, status: ExitStatus) {
        // The exec'd processes die with the container (those in its pid
        // namespace already have; not those in a shared one).
        for s in &self.sessions[1..] {
            if s.exit.is_none() {
                let _ = sys::kill(s.pid, libc::SIGKILL);
            }
        }
        for h in self.helpers.iter().filter(|h| !h.reaped) {
            let _ = sys::kill(h.helper, libc::SIGKILL);
        }
        let oom = self.created.cgroup.oom_kills() > self.created.oom_base;
        let rec = ExitRecord::new(status, oom, status::now_ms());
        self.exit = Some(rec);
        self.exit_at = Some(Instant::now());
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
            self.clients.push(Client::new(self.next_client, stream));
            self.next_client += 1;
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
                    let c = &mut self.clients[idx];
                    c.send(&ShimMsg::CommandFailed {
                        errno: libc::EPROTO,
                        message: e.to_string(),
                    });
                    c.flush();
                    return false;
                }
            }
        }
    }

    /// Appends to the container's log; a failing write loses those bytes
    /// (said once per failing stretch).
    fn log_write(&mut self, bytes: &[u8]) {
        let Some(log) = &mut self.log else { return };
        match log.write(bytes) {
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
                if !self.log_failing {
                    say!("zctr-shim: {}: log: {e} (output lost)", self.id);
                }
                self.log_failing = true;
                self.log_lost += bytes.len() as u64;
            }
        }
    }

    /// Whether the init has exited and what was left is done: its output
    /// drained, the exec sessions ended (or given up on), its exit in
    /// `status.json`.
    fn all_done(&mut self, now: Instant) -> bool {
        let Some(at) = self.exit_at else { return false };
        if self.sessions[0].open() && now >= at + Duration::from_millis(DRAIN_MS) {
            // Done copying; orphans still writing get EPIPE.
            self.sessions[0].close_outputs();
        }
        let grace_over = now >= at + Duration::from_millis(EXEC_GRACE_MS);
        !self.sessions[0].open() && (self.sessions.len() == 1 || grace_over) && !self.unsaved()
    }

    /// Runs until the container's init has exited, its output is drained
    /// (EOF on both pipes, or [`DRAIN_MS`] after the exit), its exec'd
    /// processes are reaped (or [`EXEC_GRACE_MS`] passed) and its exit is in
    /// `status.json` (see [`Monitor::unsaved`]). Returns how it ended.
    pub fn run(mut self) -> ExitStatus {
        let mut channel_open = true;
        loop {
            let now = Instant::now();
            if self.all_done(now) {
                self.last_round();
                self.finish();
                return self.exit.map(|r| r.status()).unwrap_or(ExitStatus::Code(0));
            }
            self.end_sessions(now);
            self.expire_helpers(now);
            let mut busy = false;
            for c in &mut self.clients {
                let was_dead = c.dead;
                busy |= c.check_stall(now);
                if c.dead && !was_dead {
                    say!(
                        "zctr-shim: {}: a client read nothing for {} ms with its buffer full: dropped",
                        self.id,
                        crate::client::STALL_MS
                    );
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
            busy |= self.add_sessions(&mut set);
            for (idx, h) in self.helpers.iter().enumerate() {
                if !h.done {
                    set.add(Source::Helper(idx as u8), h.report.as_raw_fd());
                }
                busy = true;
            }
            for (idx, c) in self.clients.iter().enumerate() {
                let events = if c.wants_write() {
                    libc::POLLIN | libc::POLLOUT
                } else {
                    libc::POLLIN
                };
                set.add_events(Source::Client(idx as u8), c.stream.as_raw_fd(), events);
            }
            let draining = self.exit.is_some();
            let mut timeout_ms = if draining || busy {
                BUSY_MS
            } else if self.trim {
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
            if matches!(polled, Ok(0)) && self.trim && !draining && !busy && self.retry_at.is_none()
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
                    Source::Out(slot, which) => self.on_output(slot.into(), which.into()),
                    Source::In(slot) => self.sessions[usize::from(slot)].flush_input(),
                    Source::Helper(idx) => self.on_helper(idx.into()),
                    Source::Client(_) => {}
                }
            }
            // Clients are only marked dead during the pass (above, a broadcast
            // may have failed to reach one), so the polled indices still hold;
            // accepting only appends.
            for &source in ready {
                if let Source::Client(idx) = source {
                    let idx = usize::from(idx);
                    self.clients[idx].flush();
                    if !self.clients[idx].dead && !self.on_client(idx) {
                        self.clients[idx].dead = true;
                    }
                }
            }
            for c in &mut self.clients {
                c.flush();
            }
            self.clients.retain(|c| !c.dead);
            self.helpers.retain(|h| !(h.done && h.reaped));
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
            // Best effort: what the socket does not take now is lost.
            self.clients[idx].flush();
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
