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
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Name of the cgroup (under the parent) that holds every shim.
pub const SHIM_CGROUP: &str = "zctr-shims";
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

    /// Creates a container: bundle, cgroup, shim; leaves nothing behind on failure.
    pub async fn create(self: &Arc<Self>, req: CreateRequest) -> Result<Arc<Container>> {
        let id = req.id.clone();
        if id.as_str() == SHIM_CGROUP {
            return Err(Error::BadRequest(format!(
                "id {SHIM_CGROUP:?} is reserved for the shims' cgroup"
            )));
        }
        let cgroup = self.settings.cgroup_parent.child(id.as_str())?;
        let dir = self.env.store.dir(id.as_str());
        let bundle_dir = dir.join(BUNDLE_DIR);
        let record = ContainerRecord {
            id: id.clone(),
            config: req.config,
            status: Status::Creating,
            cgroup: cgroup.to_string(),
            state_dir: dir.clone(),
            bundle: bundle_dir.clone(),
            shim_command: spawn::shim_command(&self.settings.shim, &bundle_dir, id.as_str(), &dir),
            shim: None,
            init: None,
            exposed_ports: Vec::new(),
            created_ms: now_ms(),
            started_ms: None,
            finished_ms: None,
            exit: None,
            stop_reason: None,
        };
        {
            let mut table = self.table.lock().expect("table lock");
            if table.contains_key(id.as_str()) {
                return Err(Error::AlreadyExists(id.as_str().to_string()));
            }
            table.insert(
                id.as_str().to_string(),
                Container::new(record.clone(), cgroup.clone()),
            );
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
        match self.build(record, cgroup.clone()).await {
            Ok(c) => Ok(c),
            Err(e) => {
                let env = self.env.clone();
                let idc = id.clone();
                blocking(move || {
                    let _ = env.cgroups.kill_all(&cgroup);
                    let _ = env.cgroups.remove(&cgroup);
                    let _ = env.store.remove_dir(idc.as_str());
                })
                .await;
                self.forget(id.as_str());
                Err(e)
            }
        }
    }

    async fn build(
        self: &Arc<Self>,
        mut record: ContainerRecord,
        cgroup: CgroupPath,
    ) -> Result<Arc<Container>> {
        let env = self.env.clone();
        let (rec, cg) = (record.clone(), cgroup.clone());
        let prepared = blocking(move || -> Result<bundle::Prepared> {
            let prepared = bundle::prepare(&rec.state_dir, &rec.id, &rec.config, cg.as_str())?;
            env.cgroups.create(&cg, prepared.resources.as_ref())?;
            Ok(prepared)
        })
        .await?;
        record.exposed_ports = prepared.exposed_ports;
        // Persisted before the shim exists, so a crash from here on is seen
        // (and cleaned) by recovery.
        self.env.store.save(record.id.as_str(), &record)?;
        let procs = self.env.cgroups.procs_files(&self.shim_cgroup()?);
        let spawned = spawn::spawn(
            &record.shim_command,
            &record.state_dir.join(SHIM_LOG),
            &procs,
        )
        .await?;
        record.shim = Some(spawned.shim);
        record.init = procfs::proc_id(spawned.init_pid);
        record.status = Status::Created;
        let c = Container::new(record, cgroup);
        if let Err(e) = c.update(&self.env.store, |_| {}) {
            // The shim runs: stop it before reporting the failure.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(spawned.init_pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(e.into());
        }
        container::attach(self.env.clone(), c.clone(), spawned.reader, spawned.writer);
        self.insert(c.clone());
        Ok(c)
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

    pub async fn start(&self, id: &str) -> Result<()> {
        let c = self.get(id)?;
        let _op = c.op.lock().await;
        Self::invalid(&c, Op::Start)?;
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
        tokio::time::timeout(COMMAND_TIMEOUT, wait)
            .await
            .map_err(|_| Error::Timeout {
                id: c.id.as_str().to_string(),
                what: "start",
            })?
    }

    pub async fn run(self: &Arc<Self>, req: CreateRequest) -> Result<Arc<Container>> {
        let c = self.create(req).await?;
        if let Err(e) = self.start(c.id.as_str()).await {
            let _ = self.delete(c.id.as_str(), true).await;
            return Err(e);
        }
        Ok(c)
    }

    pub async fn pause(&self, id: &str) -> Result<()> {
        let c = self.get(id)?;
        let _op = c.op.lock().await;
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

    pub async fn resume(&self, id: &str) -> Result<()> {
        let c = self.get(id)?;
        let _op = c.op.lock().await;
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

    pub async fn kill(&self, id: &str, signal: i32) -> Result<()> {
        let c = self.get(id)?;
        let _op = c.op.lock().await;
        Self::invalid(&c, Op::Kill)?;
        self.command(&c, ManagerMsg::Kill { signal }).await?;
        if c.status() == Status::Paused && signal == libc::SIGKILL {
            // A v1-frozen task only dies once thawed.
            let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
            blocking(move || cgroups.thaw(&cg)).await?;
        }
        Ok(())
    }

    pub async fn wait(&self, id: &str) -> Result<ContainerRecord> {
        let c = self.get(id)?;
        c.wait_stopped(None).await;
        Ok(c.record())
    }

    pub async fn delete(&self, id: &str, force: bool) -> Result<()> {
        let c = self.get(id)?;
        let _op = c.op.lock().await;
        Self::invalid(&c, Op::Delete { force })?;
        if c.status() != Status::Stopped {
            let paused = c.status() == Status::Paused;
            if let Some(link) = c.link() {
                let _ = link.cmd.send(ManagerMsg::Kill {
                    signal: libc::SIGKILL,
                });
            }
            let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
            if paused {
                let _ = blocking(move || cgroups.thaw(&cg)).await;
            }
            if !c.wait_stopped(Some(Duration::from_secs(5))).await {
                let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
                let _ = blocking(move || cgroups.kill_all(&cg)).await;
                if !c.wait_stopped(Some(Duration::from_secs(5))).await {
                    container::mark_stopped(&self.env, &c, None, Some("killed on delete")).await;
                }
            }
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
        let idc = id.to_string();
        blocking(move || -> Result<()> {
            env.cgroups.remove(&cg)?;
            env.store.remove_dir(&idc)?;
            Ok(())
        })
        .await?;
        self.forget(id);
        Ok(())
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
                eprintln!("zctr: recovery of {name}: {e}");
            }
        }
        Ok(())
    }

    async fn recover_one(self: &Arc<Self>, name: &str) -> Result<()> {
        let Ok(id) = ContainerId::new(name) else {
            eprintln!("zctr: ignoring {name:?} in the state root: not a container id");
            return Ok(());
        };
        let cgroup = self.settings.cgroup_parent.child(id.as_str())?;
        let record: Result<ContainerRecord, _> = self.env.store.load(id.as_str());
        let record = match record {
            Ok(r) if r.status != Status::Creating => r,
            other => {
                // Creation never finished: nothing of it may stay.
                if let Err(e) = &other {
                    eprintln!("zctr: {name}: unusable record ({e}); cleaning up");
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
            let _ = blocking(move || cgroups.remove(&cg)).await;
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
            eprintln!("zctr: {name}: shim alive but its socket does not answer");
            return Ok(());
        }
        container::conclude(&self.env, &c).await;
        if c.status() != Status::Stopped {
            container::mark_stopped(&self.env, &c, None, Some(SHIM_DIED)).await;
        }
        Ok(())
    }
}
