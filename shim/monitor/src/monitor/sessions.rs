//! The monitor's side of sessions (docs/protocol.md, "Sessions"): `Exec`
//! (through [`crate::spawn`]), `Attach`, relaying output to the attached
//! clients (or to the log when none is), backpressure, and the end of an
//! exec'd process (`ExecExited`, `status.json`'s `execs`).

use super::*;

/// The fields of `Exec`, borrowed from the message.
pub(super) struct ExecAsk<'a> {
    pub shim: &'a str,
    pub process: &'a str,
    pub tty: bool,
    pub stdin: bool,
    pub detach: bool,
    pub size: Option<(u16, u16)>,
}

impl Monitor {
    /// Starts `Exec`'s helper; the answer comes when it reports
    /// ([`Monitor::on_helper`]).
    pub(super) fn exec(&mut self, idx: usize, ask: &ExecAsk) -> Result<(), Refusal> {
        if self.exit.is_some() {
            return Err((
                libc::ESRCH,
                format!("container {} has stopped: nothing to exec in", self.id),
            ));
        }
        if self.state != ShimState::Running {
            return Err((
                libc::EINVAL,
                format!(
                    "container {} is not running (created, not started yet)",
                    self.id
                ),
            ));
        }
        let Some(dir) = &self.state_dir else {
            return Err((
                libc::EINVAL,
                format!("container {} has no state directory to exec with", self.id),
            ));
        };
        let live = self.sessions.len() - 1 + self.helpers.len();
        if live >= MAX_SESSIONS || self.helpers.len() >= MAX_PENDING {
            return Err((
                libc::EAGAIN,
                format!(
                    "container {}: {live} exec'd processes (at most {MAX_SESSIONS}, \
                     {MAX_PENDING} starting at once)",
                    self.id
                ),
            ));
        }
        let req = spawn::Request {
            shim: ask.shim,
            process: ask.process,
            tty: ask.tty,
            stdin: ask.stdin,
            size: ask.size,
            state_dir: dir.path(),
            bundle: self.out.bundle.as_deref(),
            init_pid: self.init.pid,
        };
        let pending = spawn::start(&req, self.clients[idx].id, ask.detach)?;
        self.helpers.push(pending);
        Ok(())
    }

    /// A helper's report pipe is readable.
    pub(super) fn on_helper(&mut self, idx: usize) {
        let h = &mut self.helpers[idx];
        if h.done || !h.read() {
            return;
        }
        h.done = true;
        let client = h.client;
        match exec_report::parse(&h.got) {
            Ok(pid) => {
                let (detach, tty, ends) = (h.detach, h.tty, h.ends.take());
                self.exec_started(client, pid, detach, tty, ends);
            }
            Err((errno, message)) => self.reply(client, &ShimMsg::CommandFailed { errno, message }),
        }
    }

    /// Kills helpers that did not report in time.
    pub(super) fn expire_helpers(&mut self, now: Instant) {
        let mut late = Vec::new();
        for h in &mut self.helpers {
            if !h.done && now >= h.deadline {
                if !h.reaped {
                    let _ = sys::kill(h.helper, libc::SIGKILL);
                }
                h.done = true;
                late.push(h.client);
            }
        }
        for client in late {
            self.reply(
                client,
                &ShimMsg::CommandFailed {
                    errno: libc::ETIMEDOUT,
                    message: format!(
                        "exec: zctr-shim exec did not report within {} s: killed",
                        spawn::HELPER_TIMEOUT_MS / 1000
                    ),
                },
            );
        }
    }

    /// Sends `msg` to the client with this id, if it is still there.
    fn reply(&mut self, client: u64, msg: &ShimMsg) {
        if let Some(c) = self.clients.iter_mut().find(|c| c.id == client) {
            c.send(msg);
        }
    }

    fn exec_started(
        &mut self,
        client: u64,
        pid: i32,
        detach: bool,
        tty: bool,
        ends: Option<spawn::Ends>,
    ) {
        let id = self.next_session;
        self.next_session += 1;
        let ends = ends.unwrap_or(spawn::Ends {
            outs: [None, None, None],
            input: None,
        });
        let mut s = Session::new(id, pid, ends.outs, ends.input);
        s.tty = tty;
        if let Some(i) = self.unmatched.iter().position(|(p, _)| *p == pid) {
            s.exit = Some(self.unmatched.remove(i).1);
        }
        if self.exit.is_some() && s.exit.is_none() {
            // Started as the init died: it dies with the container.
            let _ = sys::kill(pid, libc::SIGKILL);
        }
        self.status.execs.push(ExecRecord {
            session: id,
            pid,
            started_ms: status::now_ms(),
            tty,
            exit: None,
        });
        self.sessions.push(s);
        // Written before it is reported.
        self.persist();
        if let Some(c) = self.clients.iter_mut().find(|c| c.id == client) {
            if !detach {
                c.attached.push(id);
            }
            c.send(&ShimMsg::ExecStarted { session: id, pid });
        }
    }

    /// `Attach`: this client gets the session's output from now on. An
    /// exec session that has ended answers `Attached` then its
    /// `ExecExited` from `status.json`'s record.
    pub(super) fn attach(&mut self, idx: usize, session: u32) -> Result<(), Refusal> {
        if let Some(s) = self.sessions.iter().find(|s| s.id == session) {
            let tty = s.tty;
            let c = &mut self.clients[idx];
            if !c.attached.contains(&session) {
                c.attached.push(session);
            }
            c.send(&ShimMsg::Attached { session, tty });
            return Ok(());
        }
        let rec = self
            .status
            .execs
            .iter()
            .find(|r| r.session == session)
            .and_then(|r| r.exit.map(|e| (r.tty, r.pid, e)));
        let Some((tty, pid, exit)) = rec else {
            return Err((libc::ESRCH, format!("no session {session}")));
        };
        let c = &mut self.clients[idx];
        c.send(&ShimMsg::Attached { session, tty });
        c.send(&ShimMsg::ExecExited {
            session,
            pid,
            status: exit.status(),
            at_ms: exit.at_ms,
        });
        Ok(())
    }

    pub(super) fn session_mut(&mut self, session: u32) -> Result<&mut Session, Refusal> {
        if let Some(i) = self.sessions.iter().position(|s| s.id == session) {
            return Ok(&mut self.sessions[i]);
        }
        let ended = self.status.execs.iter().any(|r| r.session == session);
        Err((
            libc::ESRCH,
            if ended {
                format!("session {session} has ended")
            } else {
                format!("no session {session}")
            },
        ))
    }

    /// Every client attached to `session` can take one more `Output`.
    fn room(&self, session: u32) -> bool {
        self.clients
            .iter()
            .filter(|c| c.is_attached(session))
            .all(|c| c.has_room())
    }

    /// Adds the sessions' fds to `set`: their outputs unless a client
    /// attached to them is full (backpressure), their input while bytes
    /// wait for it. True when a session waits on a timer (its drain).
    pub(super) fn add_sessions(&self, set: &mut PollSet) -> bool {
        let mut timed = false;
        for (slot, s) in self.sessions.iter().enumerate() {
            timed |= slot > 0 && s.exit.is_some();
            if self.room(s.id) {
                for (which, fd) in s.outs.iter().enumerate() {
                    if let Some(fd) = fd {
                        set.add(Source::Out(slot as u8, which as u8), fd.as_raw_fd());
                    }
                }
            }
            if let Some(fd) = s.input_waiting() {
                set.add_events(Source::In(slot as u8), fd, libc::POLLOUT);
            }
        }
        timed
    }

    /// Output `which` of the session in `slot` is readable: to the attached
    /// clients, and to the log for session 0 or when nobody is attached.
    pub(super) fn on_output(&mut self, slot: usize, which: usize) {
        let mut buf = [0u8; MAX_CHUNK];
        let n = match self.sessions[slot].read(which, &mut buf) {
            Some(n) if n > 0 => n,
            _ => return,
        };
        let id = self.sessions[slot].id;
        let attached = self.clients.iter().filter(|c| c.is_attached(id)).count();
        if id == INIT_SESSION || attached == 0 {
            self.log_write(&buf[..n]);
        }
        if attached == 0 {
            return;
        }
        self.chunk.clear();
        self.chunk.extend_from_slice(&buf[..n]);
        let msg = ShimMsg::Output {
            session: id,
            stream: Session::stream(which),
            data: std::mem::take(&mut self.chunk),
        };
        if self.frame.len() < protocol::MAX_FRAME {
            self.frame.resize(protocol::MAX_FRAME, 0);
        }
        let encoded = protocol::encode_frame(&msg, &mut self.frame);
        if let ShimMsg::Output { data, .. } = msg {
            self.chunk = data;
        }
        let Ok(len) = encoded else { return };
        for c in self.clients.iter_mut().filter(|c| c.is_attached(id)) {
            c.queue(&self.frame[..len]);
        }
    }

    /// Ends the exec sessions whose process was reaped and whose output is
    /// drained (EOF, or [`DRAIN_MS`] after the exit): recorded in
    /// `status.json`, then `ExecExited` to every client.
    pub(super) fn end_sessions(&mut self, now: Instant) {
        let mut i = 1;
        while i < self.sessions.len() {
            let s = &mut self.sessions[i];
            let Some(exit) = s.exit else {
                i += 1;
                continue;
            };
            if s.open() && now >= exit.at + Duration::from_millis(DRAIN_MS) {
                s.close_outputs();
            }
            if s.open() {
                i += 1;
                continue;
            }
            let s = self.sessions.remove(i);
            self.exec_ended(s.id, s.pid, exit);
        }
    }

    fn exec_ended(&mut self, session: u32, pid: i32, exit: Exit) {
        let rec = ExitRecord::new(exit.status, false, exit.at_ms);
        if let Some(r) = self.status.execs.iter_mut().find(|r| r.session == session) {
            r.exit = Some(rec);
        }
        status::trim_exec_records(&mut self.status.execs);
        self.persist();
        for c in &mut self.clients {
            c.attached.retain(|&a| a != session);
        }
        self.broadcast(&ShimMsg::ExecExited {
            session,
            pid,
            status: exit.status,
            at_ms: exit.at_ms,
        });
    }
}
