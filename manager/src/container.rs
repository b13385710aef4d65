//! One container held by the daemon: its record (persisted on every change),
//! a watch on its status, and the link to its shim. The monitor task applies
//! the shim's frames to the record and, when the connection ends, reconnects
//! or concludes (exit from `status.json`, or "shim died").

use crate::model::{now_ms, ContainerRecord, ExitInfo, Status};
use crate::procfs;
use crate::shim_conn::{ShimReader, ShimWriter};
use crate::spawn::Shims;
use crate::store::{self, Store, StoreError};
use common::id::ContainerId;
use common::layout::STATUS_FILE;
use common::protocol::{ManagerMsg, ShimMsg, ShimState};
use common::state::{ExitRecord, ShimStatus};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use zctr_cgroups::{CgroupPath, Cgroups};

/// Runs `f`, which may block on the disk (fsync), without stalling the
/// other tasks of the daemon's worker thread: on the multi-threaded runtime
/// the worker hands its tasks to another thread first.
fn off_the_executor<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Reason recorded when a shim vanished without persisting an exit.
pub const SHIM_DIED: &str = "shim died";

/// What the monitor needs from the daemon.
pub struct Env {
    pub store: Store,
    pub cgroups: Arc<dyn Cgroups>,
    pub shims: Arc<dyn Shims>,
    /// Every container that stopped, for its restart policy
    /// (`registry::restart`).
    pub stopped: mpsc::UnboundedSender<common::id::ContainerId>,
}

/// The live link to a shim: commands go out, every frame comes back on `events`.
/// The reader task drops its sender when the connection ends, which closes
/// `events` for its subscribers, but only once no copy of the link is held:
/// a waiter subscribes and drops its copy (`registry::exchange`).
#[derive(Clone)]
pub struct ShimLink {
    pub cmd: mpsc::UnboundedSender<ManagerMsg>,
    pub events: broadcast::Sender<ShimMsg>,
    generation: u64,
}

pub struct Container {
    pub id: ContainerId,
    pub dir: PathBuf,
    pub cgroup: CgroupPath,
    record: Mutex<ContainerRecord>,
    /// Serializes lifecycle operations on this container (creation
    /// included: it holds the lock until the container is built or rolled
    /// back).
    pub op: Arc<tokio::sync::Mutex<()>>,
    status_tx: watch::Sender<Status>,
    link: Mutex<Option<ShimLink>>,
    generation: AtomicU64,
    /// The hash of what `container.json` holds (`Store::save_changed`),
    /// None when unknown or after a failed write: then the next update
    /// writes whatever it changed.
    saved: Mutex<Option<u64>>,
}

impl Container {
    pub fn new(record: ContainerRecord, cgroup: CgroupPath) -> Arc<Self> {
        let (status_tx, _) = watch::channel(record.status);
        Arc::new(Self {
            id: record.id.clone(),
            dir: record.state_dir.clone(),
            cgroup,
            record: Mutex::new(record),
            op: Arc::new(tokio::sync::Mutex::new(())),
            status_tx,
            link: Mutex::new(None),
            generation: AtomicU64::new(0),
            saved: Mutex::new(None),
        })
    }

    /// A container whose record was just read from `container.json`: an
    /// update that changes nothing does not write it again (recovery
    /// reconnects every shim, and each `Hello` is such an update).
    pub fn recovered(record: ContainerRecord, cgroup: CgroupPath) -> Arc<Self> {
        let hash = store::record_hash(&record);
        let c = Self::new(record, cgroup);
        *c.saved.lock().expect("saved lock") = hash;
        c
    }

    pub fn record(&self) -> ContainerRecord {
        self.record.lock().expect("record lock").clone()
    }

    pub fn status(&self) -> Status {
        self.record.lock().expect("record lock").status
    }

    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.status_tx.subscribe()
    }

    pub fn link(&self) -> Option<ShimLink> {
        self.link.lock().expect("link lock").clone()
    }

    /// Changes the record, persists it, then announces the status.
    pub fn update(
        &self,
        store: &Store,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<(), StoreError> {
        let status = {
            let mut r = self.record.lock().expect("record lock");
            let before = r.status;
            f(&mut r);
            let mut last = self.saved.lock().expect("saved lock");
            // A `creating` record is worth nothing after a host crash:
            // recovery removes an unfinished creation, record or not.
            let durable = r.status != Status::Creating;
            let saved =
                off_the_executor(|| store.save_changed(self.id.as_str(), &*r, *last, durable));
            *last = saved.as_ref().ok().copied();
            drop(last);
            if let Err(e) = saved {
                // Keep serving from memory; the next change retries the write.
                if r.status != Status::Stopped {
                    return Err(e);
                }
                crate::say!("zctr: {}: cannot persist record: {e}", self.id);
            }
            if r.status != before {
                store.events().transition(before, &r);
            }
            r.status
        };
        self.status_tx.send_replace(status);
        Ok(())
    }

    /// Waits until the container is stopped, at most `limit`.
    pub async fn wait_stopped(&self, limit: Option<Duration>) -> bool {
        let mut rx = self.subscribe();
        let fut = rx.wait_for(|s| *s == Status::Stopped);
        match limit {
            Some(d) => matches!(tokio::time::timeout(d, fut).await, Ok(Ok(_))),
            None => fut.await.is_ok(),
        }
    }
}

/// Wires a shim connection to the container: a writer task, a reader task
/// that applies every frame, and reconnection or conclusion when it ends.
pub fn attach(env: Arc<Env>, c: Arc<Container>, mut reader: ShimReader, mut writer: ShimWriter) {
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<ManagerMsg>();
    let (ev_tx, _) = broadcast::channel(64);
    let generation = c.generation.fetch_add(1, Ordering::SeqCst) + 1;
    *c.link.lock().expect("link lock") = Some(ShimLink {
        cmd: cmd_tx,
        events: ev_tx.clone(),
        generation,
    });
    tokio::spawn(async move {
        while let Some(m) = cmd_rx.recv().await {
            if writer.send(&m).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        loop {
            match reader.next().await {
                Ok(Some(msg)) => {
                    apply(&env, &c, &msg).await;
                    let _ = ev_tx.send(msg);
                }
                Ok(None) => break,
                Err(e) => {
                    crate::say!("zctr: {}: {e}", c.id);
                    break;
                }
            }
        }
        {
            let mut link = c.link.lock().expect("link lock");
            if link.as_ref().map(|l| l.generation) == Some(generation) {
                *link = None;
            }
        }
        drop(ev_tx);
        on_disconnect(env, c).await;
    });
}

/// Applies one frame from the shim to the record.
async fn apply(env: &Arc<Env>, c: &Arc<Container>, msg: &ShimMsg) {
    let result = match msg {
        ShimMsg::Hello {
            init_pid, state, ..
        } => {
            let init_pid = *init_pid;
            let state = *state;
            if state == ShimState::Stopped {
                conclude(env, c).await;
                Ok(())
            } else {
                c.update(&env.store, |r| {
                    if r.init.is_none() && init_pid > 0 {
                        r.init = procfs::proc_id(init_pid);
                    }
                    if state == ShimState::Running && r.status == Status::Created {
                        r.status = Status::Running;
                        r.started_ms.get_or_insert_with(now_ms);
                    }
                })
            }
        }
        ShimMsg::Created { pid } => {
            let pid = *pid;
            c.update(&env.store, |r| {
                if r.init.is_none() {
                    r.init = procfs::proc_id(pid);
                }
            })
        }
        ShimMsg::Started => c.update(&env.store, |r| {
            if r.status == Status::Created {
                r.status = Status::Running;
                r.started_ms = Some(now_ms());
            }
        }),
        ShimMsg::Exited {
            status,
            oom_killed,
            at_ms,
        } => {
            let rec = ExitRecord::new(*status, *oom_killed, *at_ms);
            mark_stopped(env, c, Some(rec), None).await;
            Ok(())
        }
        ShimMsg::ExecExited {
            session,
            pid,
            status,
            at_ms,
        } => {
            // What status.json says first (an exec started while no
            // `exec_started` was told), then this one.
            sync_exec_events(env, c);
            let rec = ExitRecord::new(*status, false, *at_ms);
            env.store
                .events()
                .exec_exited(c.id.as_str(), *session, *pid, &rec);
            Ok(())
        }
        ShimMsg::SetupFailed { .. }
        | ShimMsg::CommandFailed { .. }
        | ShimMsg::ExecStarted { .. }
        | ShimMsg::Attached { .. }
        | ShimMsg::Output { .. } => Ok(()),
    };
    if let Err(e) = result {
        crate::say!("zctr: {}: {e}", c.id);
    }
}

/// Records the end of the container: exit (with the cgroup's OOM counter as a
/// second opinion), time and reason; then removes its cgroup. Whatever is
/// still in the cgroup is killed first (thawed, in every hierarchy), so that
/// "stopped" means nothing of the container runs: a shim that died leaves
/// its init behind, perhaps frozen by `pause`.
pub async fn mark_stopped(
    env: &Arc<Env>,
    c: &Arc<Container>,
    exit: Option<ExitRecord>,
    reason: Option<&str>,
) {
    if c.status() == Status::Stopped {
        return;
    }
    let cgroups = env.cgroups.clone();
    let cg = c.cgroup.clone();
    let (oom, killed) = tokio::task::spawn_blocking(move || {
        let oom = cgroups.oom_kills(&cg) > 0;
        (oom, cgroups.kill_all(&cg))
    })
    .await
    .unwrap_or((false, Ok(())));
    if let Err(e) = killed {
        crate::say!("zctr: {}: {e}", c.id);
    }
    let _ = c.update(&env.store, |r| {
        r.status = Status::Stopped;
        r.exit = exit.map(|e| ExitInfo::from_record(&e, oom));
        r.finished_ms = Some(exit.map(|e| e.at_ms).unwrap_or_else(now_ms));
        r.stop_reason = reason.map(str::to_string);
    });
    let cgroups = env.cgroups.clone();
    let cg = c.cgroup.clone();
    let removed = tokio::task::spawn_blocking(move || cgroups.remove(&cg)).await;
    if let Ok(Err(e)) = removed {
        crate::say!("zctr: {}: cgroup not removed yet: {e}", c.id);
    }
    let _ = env.stopped.send(c.id.clone());
}

/// Records the `exec_*` events of `status.json`'s exec records that were
/// not told yet (a daemon that was away, an exit seen first on the
/// monitor's connection).
pub fn sync_exec_events(env: &Env, c: &Container) {
    if let Ok(s) = store::read_json::<ShimStatus>(&c.dir.join(STATUS_FILE)) {
        env.store.events().sync_execs(c.id.as_str(), &s.execs);
    }
}

/// The shim is gone or says stopped: take the exit from `status.json`, or
/// declare the shim dead after killing what is left in the cgroup.
pub async fn conclude(env: &Arc<Env>, c: &Arc<Container>) {
    let status: Option<ShimStatus> = store::read_json(&c.dir.join(STATUS_FILE)).ok();
    let shim_alive = c
        .record()
        .shim
        .map(|p| procfs::is_alive(&p))
        .unwrap_or(false);
    match status.and_then(|s| s.exit) {
        Some(exit) => mark_stopped(env, c, Some(exit), None).await,
        None if shim_alive => {}
        // mark_stopped kills what is left in the cgroup (thawed first).
        None => mark_stopped(env, c, None, Some(SHIM_DIED)).await,
    }
}

/// After a connection ended: reconnect while the shim lives, else conclude.
async fn on_disconnect(env: Arc<Env>, c: Arc<Container>) {
    loop {
        if c.status() == Status::Stopped {
            return;
        }
        let shim = c.record().shim;
        let alive = shim.map(|p| procfs::is_alive(&p)).unwrap_or(false);
        if !alive {
            conclude(&env, &c).await;
            return;
        }
        if let Ok((r, w)) = env.shims.connect(&c.dir).await {
            attach(env, c, r, w);
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
