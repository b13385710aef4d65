//! The in-memory table of containers, the operations on them, and recovery of
//! the table from the state root when the daemon starts.

use crate::bundle;
use crate::cgroups::{CgroupPath, Cgroups};
use crate::container::{self, Container, Env, SHIM_DIED};
use crate::error::{Error, Result};
use crate::lifecycle::{check, Op};
use crate::model::{now_ms, ContainerRecord, CreateRequest, Inspect, Status, Summary};
use crate::procfs::{self, ProcessInfo};
use crate::shim_conn;
use crate::spawn;
use crate::store::{self, Store, StoreError, BUNDLE_DIR};
use common::id::ContainerId;
use common::protocol::{ManagerMsg, ShimMsg, ShimState};
use common::state::{ShimStatus, STATUS_FILE};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

/// Name of the cgroup (under the parent) that holds every shim.
pub const SHIM_CGROUP: &str = "zctr-shims";
/// Ending of every container's cgroup name (`<parent>/<id>.zctr`). No file a
/// kernel puts in a cgroup directory ends with it, so every valid id names a
/// directory of its own (`tasks.zctr`, `cgroup.procs.zctr`), never a
/// controller's file, and no id names the shims' cgroup.
pub const CGROUP_SUFFIX: &str = ".zctr";

/// The cgroup of container `id` below `parent`: one rule for create and
/// recovery.
pub fn container_cgroup(parent: &CgroupPath, id: &ContainerId) -> Result<CgroupPath> {
    Ok(parent.child(&format!("{}{CGROUP_SUFFIX}", id.as_str()))?)
}
/// Name of the shim's own log (its stderr) in the state dir.
pub const SHIM_LOG: &str = "shim.log";
/// How long a command to a shim may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Daemon settings the registry needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub shim: PathBuf,
    pub cgroup_parent: CgroupPath,
}

pub struct Registry {
    env: Arc<Env>,
    settings: Settings,
    table: Mutex<BTreeMap<String, Arc<Container>>>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("blocking task panicked")
}

/// Runs an operation to its end in a task of its own. The API handler only
/// awaits it: hyper drops a handler's future when its client hangs up, which
/// must not cancel an operation half way (nor its rollback).
async fn detached<T: Send + 'static>(
    op: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(op).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only the runtime's shutdown cancels a spawned task.
        Err(_) => Err(Error::ShuttingDown),
    }
}

impl Registry {
    pub fn new(store: Store, cgroups: Arc<dyn Cgroups>, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            env: Arc::new(Env { store, cgroups }),
            settings,
            table: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn cgroups(&self) -> &Arc<dyn Cgroups> {
        &self.env.cgroups
    }

    pub fn shim_cgroup(&self) -> Result<CgroupPath> {
        Ok(self.settings.cgroup_parent.child(SHIM_CGROUP)?)
    }

    pub fn get(&self, id: &str) -> Result<Arc<Container>> {
        self.table
            .lock()
            .expect("table lock")
            .get(id)
            .cloned()
            .ok_or_else(|| Error::NotFound(id.to_string()))
    }

    fn insert(&self, c: Arc<Container>) {
        self.table
            .lock()
            .expect("table lock")
            .insert(c.id.as_str().to_string(), c);
    }

    fn forget(&self, id: &str) {
        self.table.lock().expect("table lock").remove(id);
    }

    pub fn list(&self) -> Vec<Summary> {
        let all: Vec<_> = self
            .table
            .lock()
            .expect("table lock")
            .values()
            .cloned()
            .collect();
        all.iter().map(|c| Summary::from(&c.record())).collect()
    }

    pub async fn inspect(&self, id: &str) -> Result<Inspect> {
        let c = self.get(id)?;
        let record = c.record();
        let cgroups = self.env.cgroups.clone();
        let cg = c.cgroup.clone();
        let pids = blocking(move || cgroups.pids(&cg).unwrap_or_default()).await;
        Ok(Inspect { record, pids })
    }

    fn invalid(c: &Container, op: Op) -> Result<()> {
        check(op, c.status()).map_err(|source| Error::InvalidState {
            id: c.id.as_str().to_string(),
            source,
        })
    }

    /// Container `id`, locked for one operation: waits for the operation in
    /// progress (a creation included), then checks it is still listed (a
    /// failed creation is rolled back and forgotten).
    async fn locked(&self, id: &str) -> Result<(Arc<Container>, OwnedMutexGuard<()>)> {
        let c = self.get(id)?;
        let guard = c.op.clone().lock_owned().await;
        match self.get(id) {
            Ok(now) if Arc::ptr_eq(&now, &c) => Ok((c, guard)),
            _ => Err(Error::NotFound(id.to_string())),
        }
    }

    /// Creates a container: bundle, cgroup, shim; leaves nothing behind on
    /// failure, whether or not the client is still there.
    pub async fn create(self: &Arc<Self>, req: CreateRequest) -> Result<Arc<Container>> {
        let this = self.clone();
        detached(async move { this.create_now(req).await.map(|(c, _op)| c) }).await
    }

    /// Creates the container; returns it still locked, so that `run` starts
    /// it before any other operation can come in between.
    async fn create_now(
        self: &Arc<Self>,
        req: CreateRequest,
    ) -> Result<(Arc<Container>, OwnedMutexGuard<()>)> {
        let id = req.id.clone();
        let cgroup = container_cgroup(&self.settings.cgroup_parent, &id)?;
        let dir = self.env.store.dir(id.as_str());
        let bundle_dir = dir.join(BUNDLE_DIR);
        // The tmpfs taking the container's writes to / is as big as its
        // memory limit (docs/shim.md, "Writes and the host").
        let overlay_size =
            common::spec::profile::memory_limit(req.config.profile, &req.config.limits);
        let record = ContainerRecord {
            id: id.clone(),
            config: req.config,
            status: Status::Creating,
            cgroup: cgroup.to_string(),
            state_dir: dir.clone(),
            bundle: bundle_dir.clone(),
            shim_command: spawn::shim_command(
                &self.settings.shim,
                &bundle_dir,
                id.as_str(),
                &dir,
                overlay_size,
            ),
            shim: None,
            init: None,
            exposed_ports: Vec::new(),
            created_ms: now_ms(),
            started_ms: None,
            finished_ms: None,
            exit: None,
            stop_reason: None,
        };
        let c = Container::new(record, cgroup.clone());
        // Held until the container is built or rolled back: an operation on
        // a `creating` container (delete --force) waits for the outcome.
        let op = c.op.clone().lock_owned().await;
        {
            let mut table = self.table.lock().expect("table lock");
            if table.contains_key(id.as_str()) {
                return Err(Error::AlreadyExists(id.as_str().to_string()));
            }
            table.insert(id.as_str().to_string(), c.clone());
        }
        match self.env.store.create_dir(id.as_str()) {
            Ok(_) => {}
            Err(StoreError::Exists { .. }) => {
                self.forget(id.as_str());
                return Err(Error::AlreadyExists(id.as_str().to_string()));
            }
            Err(e) => {
                self.forget(id.as_str());
                return Err(e.into());
            }
        }
        match self.build(&c).await {
            Ok(()) => Ok((c, op)),
            Err(e) => {
                let env = self.env.clone();
                let idc = id.clone();
                let cleaned = blocking(move || {
                    let killed = env.cgroups.kill_all(&cgroup);
                    let removed = env.cgroups.remove(&cgroup);
                    let dir = env.store.remove_dir(idc.as_str());
                    (killed.and(removed), dir)
                })
                .await;
                if let Err(ce) = &cleaned.0 {
                    crate::say!("zctr: {id}: rollback of the cgroup: {ce}");
                }
                if let Err(de) = &cleaned.1 {
                    crate::say!("zctr: {id}: rollback of the state dir: {de}");
                }
                self.forget(id.as_str());
                Err(e)
            }
        }
    }

    /// Bundle, cgroup and shim of the `creating` container `c`.
    async fn build(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let env = self.env.clone();
        let (rec, cg) = (c.record(), c.cgroup.clone());
        let prepared = blocking(move || -> Result<bundle::Prepared> {
            let prepared = bundle::prepare(&rec.state_dir, &rec.id, &rec.config, cg.as_str())?;
            env.cgroups.create(&cg, prepared.resources.as_ref())?;
            Ok(prepared)
        })
        .await?;
        // Persisted before the shim exists, so a crash from here on is seen
        // (and cleaned) by recovery.
        c.update(&self.env.store, |r| {
            r.exposed_ports = prepared.exposed_ports
        })?;
        let record = c.record();
        let procs = self.env.cgroups.procs_files(&self.shim_cgroup()?);
        let spawned = spawn::spawn(
            &record.shim_command,
            &record.state_dir.join(SHIM_LOG),
            &procs,
        )
        .await?;
        let updated = c.update(&self.env.store, |r| {
            r.shim = Some(spawned.shim);
            r.init = procfs::proc_id(spawned.init_pid);
            r.status = Status::Created;
        });
        if let Err(e) = updated {
            // The shim runs: end its container (the shim then exits) before
            // reporting the failure; the rollback clears the cgroup.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(spawned.init_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(e.into());
        }
        container::attach(self.env.clone(), c.clone(), spawned.reader, spawned.writer);
        Ok(())
    }

    /// Sends `cmd` then `Status`; the shim answers in order, so a
    /// `CommandFailed` before the `Hello` belongs to `cmd`.
    async fn command(&self, c: &Container, cmd: ManagerMsg) -> Result<Option<ShimState>> {
        let link = c
            .link()
            .ok_or_else(|| Error::ShimUnavailable(c.id.as_str().to_string()))?;
        let mut events = link.events.subscribe();
        let unavailable = || Error::ShimUnavailable(c.id.as_str().to_string());
        link.cmd.send(cmd).map_err(|_| unavailable())?;
        link.cmd
            .send(ManagerMsg::Status)
            .map_err(|_| unavailable())?;
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(ShimMsg::CommandFailed { errno, message }) => {
                        return Err(Error::ShimCommand { errno, message })
                    }
                    Ok(ShimMsg::Hello { state, .. }) => return Ok(Some(state)),
                    Ok(ShimMsg::Exited { .. }) => return Ok(Some(ShimState::Stopped)),
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return Ok(None),
                }
            }
        };
        tokio::time::timeout(COMMAND_TIMEOUT, wait)
            .await
            .map_err(|_| Error::Timeout {
                id: c.id.as_str().to_string(),
                what: "shim command",
            })?
    }

    pub async fn start(self: &Arc<Self>, id: &str) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move { this.start_now(&id).await }).await
    }

    async fn start_now(&self, id: &str) -> Result<()> {
        let (c, _op) = self.locked(id).await?;
        self.start_locked(&c).await
    }

    /// Starts `c`, whose operation lock the caller holds.
    async fn start_locked(&self, c: &Arc<Container>) -> Result<()> {
        Self::invalid(c, Op::Start)?;
        let link = c
            .link()
            .ok_or_else(|| Error::ShimUnavailable(c.id.as_str().to_string()))?;
        let mut events = link.events.subscribe();
        link.cmd
            .send(ManagerMsg::Start)
            .map_err(|_| Error::ShimUnavailable(c.id.as_str().to_string()))?;
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(ShimMsg::Started | ShimMsg::Exited { .. }) => return Ok(()),
                    Ok(ShimMsg::CommandFailed { errno, message }) => {
                        return Err(Error::ShimCommand { errno, message })
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return Err(Error::ShimUnavailable(c.id.as_str().to_string())),
                }
            }
        };
        // The shim resumes an init stopped before `start`; should one still
        // not exec in time, the state stays `created` (true: nothing of the
        // container ran yet) and turns `running` when the exec happens.
        tokio::time::timeout(COMMAND_TIMEOUT, wait)
            .await
            .map_err(|_| Error::Timeout {
                id: c.id.as_str().to_string(),
                what: "start (the container's process did not exec; it stays created)",
            })?
    }

    /// Create then start, as one operation: a failed start deletes the
    /// container again.
    pub async fn run(self: &Arc<Self>, req: CreateRequest) -> Result<Arc<Container>> {
        let this = self.clone();
        detached(async move {
            // One lock from creation to start: no other operation in between.
            let (c, _op) = this.create_now(req).await?;
            if let Err(e) = this.start_locked(&c).await {
                if let Err(de) = this.delete_locked(&c, true).await {
                    crate::say!("zctr: {}: delete after a failed start: {de}", c.id);
                }
                return Err(e);
            }
            Ok(c)
        })
        .await
    }

    pub async fn pause(self: &Arc<Self>, id: &str) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move { this.pause_now(&id).await }).await
    }

    async fn pause_now(&self, id: &str) -> Result<()> {
        let (c, _op) = self.locked(id).await?;
        Self::invalid(&c, Op::Pause)?;
        let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
        blocking(move || cgroups.freeze(&cg)).await?;
        c.update(&self.env.store, |r| {
            if r.status == Status::Running {
                r.status = Status::Paused
            }
        })?;
        Ok(())
    }

    pub async fn resume(self: &Arc<Self>, id: &str) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move { this.resume_now(&id).await }).await
    }

    async fn resume_now(&self, id: &str) -> Result<()> {
        let (c, _op) = self.locked(id).await?;
        Self::invalid(&c, Op::Resume)?;
        let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
        blocking(move || cgroups.thaw(&cg)).await?;
        c.update(&self.env.store, |r| {
            if r.status == Status::Paused {
                r.status = Status::Running
            }
        })?;
        Ok(())
    }

    pub async fn kill(self: &Arc<Self>, id: &str, signal: i32) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move { this.kill_now(&id, signal).await }).await
    }

    async fn kill_now(&self, id: &str, signal: i32) -> Result<()> {
        let (c, _op) = self.locked(id).await?;
        Self::invalid(&c, Op::Kill)?;
        let sent = self.command(&c, ManagerMsg::Kill { signal }).await;
        if signal == libc::SIGKILL {
            // Every process of its cgroup, in every hierarchy, thawed first:
            // a paused (frozen) container dies too, and so does one whose
            // shim is gone (the shim's link then reports how it ended).
            let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
            blocking(move || cgroups.kill_all(&cg)).await?;
            if matches!(sent, Err(Error::ShimUnavailable(_))) {
                return Ok(());
            }
        }
        sent.map(drop)
    }

    pub async fn wait(&self, id: &str) -> Result<ContainerRecord> {
        let c = self.get(id)?;
        c.wait_stopped(None).await;
        Ok(c.record())
    }

    pub async fn delete(self: &Arc<Self>, id: &str, force: bool) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move { this.delete_now(&id, force).await }).await
    }

    async fn delete_now(&self, id: &str, force: bool) -> Result<()> {
        let (c, _op) = self.locked(id).await?;
        self.delete_locked(&c, force).await
    }

    /// Deletes `c`, whose operation lock the caller holds.
    async fn delete_locked(&self, c: &Arc<Container>, force: bool) -> Result<()> {
        Self::invalid(c, Op::Delete { force })?;
        if c.status() != Status::Stopped {
            self.end(c).await;
        }
        // Let the shim finish its last writes before its directory goes.
        if let Some(shim) = c.record().shim {
            for _ in 0..100 {
                if !procfs::is_alive(&shim) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let env = self.env.clone();
        let cg = c.cgroup.clone();
        let id = c.id.as_str().to_string();
        let idc = id.clone();
        blocking(move || -> Result<()> {
            // Nothing may be left; killing an empty cgroup costs little. A
            // cgroup that cannot go keeps the record, for another delete.
            if let Err(e) = env.cgroups.kill_all(&cg) {
                crate::say!("zctr: {idc}: {e}");
            }
            env.cgroups.remove(&cg)?;
            env.store.remove_dir(&idc)?;
            Ok(())
        })
        .await?;
        self.forget(&id);
        Ok(())
    }

    /// Ends a container from any state (created, running, paused, shim
    /// dead) and records it stopped.
    async fn end(&self, c: &Arc<Container>) {
        if let Some(link) = c.link() {
            let _ = link.cmd.send(ManagerMsg::Kill {
                signal: libc::SIGKILL,
            });
        }
        // The init may be frozen (v1 freezer) or orphaned by a dead shim:
        // kill the whole cgroup, thawed first, in every hierarchy.
        let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
        if let Err(e) = blocking(move || cgroups.kill_all(&cg)).await {
            crate::say!("zctr: {}: {e}", c.id);
        }
        if c.wait_stopped(Some(Duration::from_secs(5))).await {
            return;
        }
        // No report from the shim: take its status file, or say it died.
        container::conclude(&self.env, c).await;
        if c.status() != Status::Stopped {
            container::mark_stopped(&self.env, c, None, Some("killed on delete")).await;
        }
    }

    pub async fn ps(&self, id: &str) -> Result<Vec<ProcessInfo>> {
        let c = self.get(id)?;
        let init = c.record().init.map(|p| p.pid);
        let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
        let idc = id.to_string();
        blocking(move || -> Result<Vec<ProcessInfo>> {
            let pids = cgroups.pids(&cg)?;
            Ok(procfs::container_processes(&idc, &pids, init))
        })
        .await
    }

    /// Rebuilds the table from the state root. Safe to run more than once:
    /// every outcome is written back before the next look.
    pub async fn recover(self: &Arc<Self>) -> Result<()> {
        let names = self.env.store.list()?;
        for name in names {
            if self.table.lock().expect("table lock").contains_key(&name) {
                continue;
            }
            if let Err(e) = self.recover_one(&name).await {
                crate::say!("zctr: recovery of {name}: {e}");
            }
        }
        Ok(())
    }

    async fn recover_one(self: &Arc<Self>, name: &str) -> Result<()> {
        let Ok(id) = ContainerId::new(name) else {
            crate::say!("zctr: ignoring {name:?} in the state root: not a container id");
            return Ok(());
        };
        let cgroup = container_cgroup(&self.settings.cgroup_parent, &id)?;
        let record: Result<ContainerRecord, _> = self.env.store.load(id.as_str());
        let record = match record {
            Ok(r) if r.status != Status::Creating => r,
            other => {
                // Creation never finished: nothing of it may stay.
                if let Err(e) = &other {
                    crate::say!("zctr: {name}: unusable record ({e}); cleaning up");
                }
                let dir = self.env.store.dir(id.as_str());
                let env = self.env.clone();
                blocking(move || {
                    if let Ok(s) = store::read_json::<ShimStatus>(&dir.join(STATUS_FILE)) {
                        if procfs::is_alive(&s.shim) {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(s.shim.pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                    let _ = env.cgroups.kill_all(&cgroup);
                    let _ = env.cgroups.remove(&cgroup);
                    env.store.remove_dir(id.as_str())
                })
                .await?;
                return Ok(());
            }
        };
        let c = Container::new(record, cgroup);
        self.insert(c.clone());
        if c.status() == Status::Stopped {
            let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
            let _ = blocking(move || {
                let _ = cgroups.kill_all(&cg);
                cgroups.remove(&cg)
            })
            .await;
            return Ok(());
        }
        let shim_alive = c
            .record()
            .shim
            .map(|p| procfs::is_alive(&p))
            .unwrap_or(false);
        if shim_alive {
            for _ in 0..10 {
                if let Ok(stream) = shim_conn::connect(&c.dir).await {
                    let (r, w) = shim_conn::split(stream);
                    container::attach(self.env.clone(), c.clone(), r, w);
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            crate::say!("zctr: {name}: shim alive but its socket does not answer");
            return Ok(());
        }
        container::conclude(&self.env, &c).await;
        if c.status() != Status::Stopped {
            container::mark_stopped(&self.env, &c, None, Some(SHIM_DIED)).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_cgroups_never_name_a_kernel_file_or_the_shims() {
        let parent = CgroupPath::new("zctr").unwrap();
        for (id, name) in [
            ("web", "zctr/web.zctr"),
            ("cpu.cfs_quota_us", "zctr/cpu.cfs_quota_us.zctr"),
            ("tasks", "zctr/tasks.zctr"),
            ("zctr-shims", "zctr/zctr-shims.zctr"),
        ] {
            let id = ContainerId::new(id).unwrap();
            assert_eq!(container_cgroup(&parent, &id).unwrap().as_str(), name);
        }
    }
}
