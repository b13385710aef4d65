//! The daemon's event log: one [`Event`] per lifecycle change of a container
//! (created, started, paused, resumed, oom, exited, died_while_away,
//! restarted, deleted), with a sequence number and a time, kept three ways:
//!
//! - appended to `<root>/events.jsonl` (one JSON object per line; past
//!   [`MAX_FILE`] bytes it becomes `events.jsonl.1` and a new file starts), so
//!   that a restarted daemon still answers `--since` for what came before;
//! - the last [`KEEP`] in memory, for `GET /v1/events?since=`;
//! - broadcast to the followers of `GET /v1/events?follow=true`.
//!
//! A write error costs the line in the file, never the daemon or the event.
//!
//! Exits the daemon learns at start (a container that stopped while it was
//! away) are `died_while_away`, timed when the container stopped. Events of
//! the recovery are held until it is over and then published sorted by time,
//! so that a follower sees them in the order they happened, not in the order
//! the state directories were read.

use crate::model::{now_ms, ContainerRecord, Status};
use common::state::{ExecRecord, ExitRecord};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// The file's name in the state root (a file: the root's container
/// directories are never files).
pub const FILE: &str = common::layout::EVENTS_FILE;
/// Past this size the file is rotated (one old file is kept).
pub const MAX_FILE: u64 = 4 << 20;
/// Events kept in memory.
pub const KEEP: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Created,
    Started,
    Paused,
    Resumed,
    Oom,
    Exited,
    /// It stopped while the daemon was not running (learned at its start).
    DiedWhileAway,
    /// Its restart policy started it again (`restart_count` says how often).
    Restarted,
    Deleted,
    /// A process was started in it by `exec` (`session`, `pid`).
    ExecStarted,
    /// A process started by `exec` ended (`session`, `pid`, exit code or
    /// signal).
    ExecExited,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Increasing across the daemon's restarts (continued from the file).
    pub seq: u64,
    /// When it happened, in milliseconds since the Unix epoch (for an exit:
    /// when the container stopped, which may precede the daemon's start).
    pub at_ms: u64,
    pub id: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `restarted`: how long the restart policy waited first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
    /// `exec_*`: the session number of the process (docs/protocol.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u32>,
    /// `exec_*`: its pid on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
}

impl Event {
    /// An event with only its container, kind and time (numbered when
    /// published).
    fn new(id: &str, kind: Kind, at_ms: u64) -> Self {
        Event {
            seq: 0,
            at_ms,
            id: id.to_string(),
            kind,
            exit_code: None,
            signal: None,
            reason: None,
            backoff_ms: None,
            session: None,
            pid: None,
        }
    }
}

struct Inner {
    file: Option<File>,
    seq: u64,
    recent: VecDeque<Event>,
    /// While the daemon recovers: events held back, published sorted.
    held: Option<Vec<Event>>,
}

pub struct Events {
    path: PathBuf,
    /// The daemon's start: an exit before it happened while it was away.
    started_ms: u64,
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Event>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("path", &self.path).finish()
    }
}

fn open_append(path: &Path) -> Option<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| tracing::warn!("events: {}: {e}", path.display()))
        .ok()
}

/// The events of one file, oldest first; unreadable lines are skipped.
fn read_file(path: &Path) -> Vec<Event> {
    let Ok(f) = File::open(path) else {
        return Vec::new();
    };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

fn old_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".1");
    PathBuf::from(p)
}

impl Events {
    /// Opens the log in `root`, reading what earlier runs wrote.
    pub fn open(root: &Path) -> Events {
        let path = root.join(FILE);
        let mut recent: VecDeque<Event> = read_file(&old_path(&path)).into();
        recent.extend(read_file(&path));
        while recent.len() > KEEP {
            recent.pop_front();
        }
        let seq = recent.iter().map(|e| e.seq).max().unwrap_or(0);
        let (tx, _) = broadcast::channel(1024);
        Events {
            inner: Mutex::new(Inner {
                file: open_append(&path),
                seq,
                recent,
                held: None,
            }),
            path,
            started_ms: now_ms(),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the events of a change of `r` from `old` to its status now.
    pub fn transition(&self, old: Status, r: &ContainerRecord) {
        for (kind, at_ms) in kinds(old, r, self.started_ms) {
            let (exit_code, signal) = match (&r.exit, kind) {
                (Some(e), Kind::Exited | Kind::DiedWhileAway) => (Some(e.exit_code), e.signal),
                _ => (None, None),
            };
            let reason = match kind {
                Kind::Exited | Kind::DiedWhileAway => r.stop_reason.clone(),
                _ => None,
            };
            self.emit(r.id.as_str(), kind, at_ms, exit_code, signal, reason);
        }
    }

    /// The restart policy built it again (`count`: restarts so far); a
    /// `started` follows once it runs.
    pub fn restarted(&self, id: &str, count: u32, backoff_ms: u64) {
        self.push(Event {
            reason: Some(format!("restart {count}")),
            backoff_ms: Some(backoff_ms),
            ..Event::new(id, Kind::Restarted, now_ms())
        });
    }

    pub fn deleted(&self, id: &str) {
        self.emit(id, Kind::Deleted, now_ms(), None, None, None);
    }

    fn emit(
        &self,
        id: &str,
        kind: Kind,
        at_ms: u64,
        exit_code: Option<i32>,
        signal: Option<i32>,
        reason: Option<String>,
    ) {
        self.push(Event {
            exit_code,
            signal,
            reason,
            ..Event::new(id, kind, at_ms)
        });
    }

    /// `exec_started` for session `session` (pid `pid`) of container `id`,
    /// unless one was recorded already: the daemon learns of an exec from
    /// its answer, from the monitor's `ExecExited` and from `status.json`
    /// after a restart, and each is told once.
    pub fn exec_started(&self, id: &str, session: u32, pid: i32, at_ms: u64) {
        self.exec_once(id, Kind::ExecStarted, session, pid, at_ms, None);
    }

    /// `exec_exited` (once, see [`Events::exec_started`]); an
    /// `exec_started` is recorded first if none was.
    pub fn exec_exited(&self, id: &str, session: u32, pid: i32, exit: &ExitRecord) {
        self.exec_once(id, Kind::ExecStarted, session, pid, exit.at_ms, None);
        self.exec_once(id, Kind::ExecExited, session, pid, exit.at_ms, Some(exit));
    }

    /// The events of `execs` (from `status.json`) not recorded yet, in the
    /// order they happened.
    pub fn sync_execs(&self, id: &str, execs: &[ExecRecord]) {
        let mut todo: Vec<(u64, Kind, &ExecRecord)> = Vec::new();
        for x in execs {
            todo.push((x.started_ms, Kind::ExecStarted, x));
            if let Some(e) = &x.exit {
                todo.push((e.at_ms.max(x.started_ms), Kind::ExecExited, x));
            }
        }
        todo.sort_by_key(|(at, kind, x)| (*at, x.session, *kind == Kind::ExecExited));
        for (at, kind, x) in todo {
            let exit = if kind == Kind::ExecExited {
                x.exit.as_ref()
            } else {
                None
            };
            self.exec_once(id, kind, x.session, x.pid, at, exit);
        }
    }

    fn exec_once(
        &self,
        id: &str,
        kind: Kind,
        session: u32,
        pid: i32,
        at_ms: u64,
        exit: Option<&ExitRecord>,
    ) {
        let mut inner = self.lock();
        let same = |e: &Event| {
            e.kind == kind && e.id == id && e.session == Some(session) && e.pid == Some(pid)
        };
        if inner.recent.iter().rev().any(same)
            || inner.held.as_ref().is_some_and(|h| h.iter().any(same))
        {
            return;
        }
        let (exit_code, signal) = match exit {
            Some(e) => (Some(e.status().code()), e.signal),
            None => (None, None),
        };
        let e = Event {
            exit_code,
            signal,
            session: Some(session),
            pid: Some(pid),
            ..Event::new(id, kind, at_ms)
        };
        self.push_locked(&mut inner, e);
    }

    /// Numbers `e` and publishes it (or holds it during the recovery).
    fn push(&self, e: Event) {
        let mut inner = self.lock();
        self.push_locked(&mut inner, e);
    }

    fn push_locked(&self, inner: &mut Inner, mut e: Event) {
        inner.seq += 1;
        e.seq = inner.seq;
        match inner.held.as_mut() {
            Some(held) => held.push(e),
            None => self.publish(inner, e),
        }
    }

    /// Starts holding events back (the daemon's recovery), until [`release`].
    ///
    /// [`release`]: Events::release
    pub fn hold(&self) {
        self.lock().held.get_or_insert_with(Vec::new);
    }

    /// Ends the recovery: the held events, sorted by time (then by sequence),
    /// are numbered again in that order and published.
    pub fn release(&self) {
        let mut inner = self.lock();
        let Some(mut held) = inner.held.take() else {
            return;
        };
        held.sort_by_key(|e| (e.at_ms, e.seq));
        let first = inner.seq + 1 - held.len() as u64;
        for (i, mut e) in held.into_iter().enumerate() {
            e.seq = first + i as u64;
            self.publish(&mut inner, e);
        }
    }

    fn publish(&self, inner: &mut Inner, e: Event) {
        if let Ok(mut line) = serde_json::to_vec(&e) {
            line.push(b'\n');
            self.append(inner, &line);
        }
        inner.recent.push_back(e.clone());
        if inner.recent.len() > KEEP {
            inner.recent.pop_front();
        }
        let _ = self.tx.send(e);
    }

    fn append(&self, inner: &mut Inner, line: &[u8]) {
        let big = inner
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .is_some_and(|m| m.len() + line.len() as u64 > MAX_FILE);
        if big {
            if let Err(e) = fs::rename(&self.path, old_path(&self.path)) {
                tracing::warn!("events: rotating {}: {e}", self.path.display());
            }
            inner.file = open_append(&self.path);
        } else if inner.file.is_none() {
            inner.file = open_append(&self.path);
        }
        if let Some(f) = inner.file.as_mut() {
            if let Err(e) = f.write_all(line) {
                tracing::warn!(
                    "events: {}: {e} (event kept in memory)",
                    self.path.display()
                );
            }
        }
    }

    /// The kept events from `since_ms` on (all with 0), for `id` if given,
    /// oldest first; and a receiver for the ones after them.
    pub fn since(
        &self,
        since_ms: u64,
        id: Option<&str>,
    ) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let inner = self.lock();
        // Subscribed under the lock: nothing falls between the two.
        let rx = self.tx.subscribe();
        let past = inner
            .recent
            .iter()
            .filter(|e| e.at_ms >= since_ms && id.is_none_or(|id| e.id == id))
            .cloned()
            .collect();
        (past, rx)
    }
}

/// The events a change from `old` to `r.status` makes, with their times.
fn kinds(old: Status, r: &ContainerRecord, started_ms: u64) -> Vec<(Kind, u64)> {
    use Status::*;
    let now = now_ms();
    match (old, r.status) {
        (a, b) if a == b => Vec::new(),
        // A restart: `restarted` says it.
        (Stopped, Created) => Vec::new(),
        (_, Created) => vec![(Kind::Created, now)],
        (Creating, Running) => vec![(Kind::Created, now), (Kind::Started, now)],
        (Created, Running) => vec![(Kind::Started, now)],
        (_, Paused) => vec![(Kind::Paused, now)],
        (Paused, Running) => vec![(Kind::Resumed, now)],
        (_, Stopped) => {
            let at = r.exit.as_ref().map_or(now, |e| e.at_ms);
            let mut v = Vec::new();
            if r.exit.as_ref().is_some_and(|e| e.oom_killed) {
                v.push((Kind::Oom, at));
            }
            let away = at < started_ms;
            v.push((
                if away {
                    Kind::DiedWhileAway
                } else {
                    Kind::Exited
                },
                at,
            ));
            v
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
