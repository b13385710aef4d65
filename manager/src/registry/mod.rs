//! The daemon's containers: the table, the operations on them, and recovery
//! of the table from the state root when the daemon starts. One job per
//! module:
//!
//! - `table`: the in-memory table by id.
//! - `create`: build a container (bundle, cgroup, shim) and roll back on failure.
//! - `ops`: the lifecycle operations (start, run, pause, resume, kill, delete).
//! - `exchange`: one request/reply helper for every exchange with a shim.
//! - `recover`: rebuild the table from the state root.
//! - `update`: live changes of a container's limits.
//! - `restart`: restart policies (back-off, restarts after a daemon restart).
//!
//! Shims are reached through [`Shims`] and cgroups through [`Cgroups`].

mod create;
mod exchange;
mod ops;
mod recover;
mod restart;
mod session;
mod table;
mod update;

pub use update::LimitsUpdate;
#[cfg(test)]
mod tests;

use crate::container::{Container, Env};
use crate::error::{Error, Result};
use crate::lifecycle::{check, Op};
use crate::model::{ContainerRecord, Inspect, Summary};
use crate::procfs::{self, ProcessInfo};
use crate::spawn::Shims;
use crate::store::Store;
use common::id::ContainerId;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use table::Table;
use tokio::sync::OwnedMutexGuard;
use zctr_cgroups::{CgroupPath, Cgroups};

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

/// Daemon settings the registry needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub shim: PathBuf,
    pub cgroup_parent: CgroupPath,
}

pub struct Registry {
    env: Arc<Env>,
    settings: Settings,
    table: Table,
    /// The other end of `Env::stopped`, until [`Registry::start_restarts`].
    stopped: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<ContainerId>>>,
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
    pub fn new(
        store: Store,
        cgroups: Arc<dyn Cgroups>,
        shims: Arc<dyn Shims>,
        settings: Settings,
    ) -> Arc<Self> {
        let (stopped_tx, stopped_rx) = tokio::sync::mpsc::unbounded_channel();
        Arc::new(Self {
            env: Arc::new(Env {
                store,
                cgroups,
                shims,
                stopped: stopped_tx,
            }),
            settings,
            table: Table::default(),
            stopped: std::sync::Mutex::new(Some(stopped_rx)),
        })
    }

    pub fn cgroups(&self) -> &Arc<dyn Cgroups> {
        &self.env.cgroups
    }

    pub fn events(&self) -> &crate::events::Events {
        self.env.store.events()
    }

    /// The shim executable the daemon spawns.
    pub fn shim_path(&self) -> &std::path::Path {
        &self.settings.shim
    }

    pub fn shim_cgroup(&self) -> Result<CgroupPath> {
        Ok(self.settings.cgroup_parent.child(SHIM_CGROUP)?)
    }

    pub fn get(&self, id: &str) -> Result<Arc<Container>> {
        self.table
            .get(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))
    }

    pub fn list(&self) -> Vec<Summary> {
        let all = self.table.all();
        all.iter().map(|c| Summary::from(&c.record())).collect()
    }

    pub async fn inspect(&self, id: &str) -> Result<Inspect> {
        let c = self.get(id)?;
        let record = c.record();
        let cgroups = self.env.cgroups.clone();
        let cg = c.cgroup.clone();
        let status_file = c.dir.join(common::layout::STATUS_FILE);
        let (pids, execs) = blocking(move || {
            let execs = crate::store::read_json::<common::state::ShimStatus>(&status_file)
                .map(|s| s.execs)
                .unwrap_or_default();
            (cgroups.pids(&cg).unwrap_or_default(), execs)
        })
        .await;
        let execs = execs
            .iter()
            .map(|x| crate::model::ExecInfo::new(x, record.status))
            .collect();
        Ok(Inspect {
            record,
            pids,
            execs,
        })
    }

    /// What the container uses now (`crate::stats`).
    pub async fn stats(&self, id: &str) -> Result<crate::stats::ContainerStats> {
        let c = self.get(id)?;
        let r = c.record();
        let cg = c.cgroup.clone();
        Ok(blocking(move || {
            crate::stats::read(
                r.id.as_str(),
                r.status,
                &cg,
                &r.config.network,
                r.init.map(|p| p.pid),
            )
        })
        .await)
    }

    pub async fn wait(&self, id: &str) -> Result<ContainerRecord> {
        let c = self.get(id)?;
        c.wait_stopped(None).await;
        Ok(c.record())
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
}

#[cfg(test)]
mod name_tests {
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
