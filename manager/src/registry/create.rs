//! Creating a container: list it as `creating`, build it (bundle, cgroup,
//! shim), and roll back everything built when a step fails.

use super::{blocking, container_cgroup, Registry};
use crate::bundle;
use crate::container::{self, Container};
use crate::error::{Error, Result};
use crate::model::{now_ms, ContainerRecord, CreateRequest, Status};
use crate::procfs;
use crate::spawn;
use crate::store::StoreError;
use std::sync::Arc;
use tokio::sync::OwnedMutexGuard;
use zctr_cgroups::CgroupPath;

impl Registry {
    /// Creates the container; returns it still locked, so that `run` starts
    /// it before any other operation can come in between.
    pub(super) async fn create_now(
        self: &Arc<Self>,
        req: CreateRequest,
    ) -> Result<(Arc<Container>, OwnedMutexGuard<()>)> {
        let id = req.id.clone();
        let cgroup = container_cgroup(&self.settings.cgroup_parent, &id)?;
        let dir = self.env.store.dir(id.as_str());
        let bundle_dir = common::layout::bundle_dir(&dir);
        // The tmpfs taking the container's writes to / is as big as its
        // memory limit (docs/shim.md, "Writes and the host").
        let overlay_size =
            common::spec::profile::memory_limit(req.config.profile, &req.config.limits);
        let mut shim_command = spawn::shim_command(
            &self.settings.shim,
            &bundle_dir,
            id.as_str(),
            &dir,
            overlay_size,
            req.config.stdin,
        );
        if req.config.init {
            shim_command.push(spawn::INIT_FLAG.into());
        }
        let record = ContainerRecord {
            id: id.clone(),
            config: req.config,
            status: Status::Creating,
            cgroup: cgroup.to_string(),
            state_dir: dir.clone(),
            bundle: bundle_dir.clone(),
            shim_command,
            shim: None,
            init: None,
            exposed_ports: Vec::new(),
            created_ms: now_ms(),
            started_ms: None,
            finished_ms: None,
            exit: None,
            stop_reason: None,
            restart_count: 0,
            stopped_by_user: false,
            backoff_step: 0,
        };
        let c = Container::new(record, cgroup.clone());
        // Held until the container is built or rolled back: an operation on
        // a `creating` container (delete --force) waits for the outcome.
        let op = c.op.clone().lock_owned().await;
        if !self.table.reserve(&c) {
            return Err(Error::AlreadyExists(id.as_str().to_string()));
        }
        match self.env.store.create_dir(id.as_str()) {
            Ok(_) => {}
            Err(StoreError::Exists { .. }) => {
                self.table.forget(id.as_str());
                return Err(Error::AlreadyExists(id.as_str().to_string()));
            }
            Err(e) => {
                self.table.forget(id.as_str());
                return Err(e.into());
            }
        }
        match self.build(&c).await {
            Ok(()) => Ok((c, op)),
            Err(e) => {
                self.roll_back(&c, cgroup).await;
                Err(e)
            }
        }
    }

    /// Undoes a failed creation: whatever runs in the cgroup, the cgroup,
    /// the state dir, the table entry.
    async fn roll_back(&self, c: &Container, cgroup: CgroupPath) {
        let env = self.env.clone();
        let id = c.id.clone();
        let (cg, dir) = blocking(move || {
            let killed = env.cgroups.kill_all(&cgroup);
            let removed = env.cgroups.remove(&cgroup);
            let dir = env.store.remove_dir(id.as_str());
            (killed.and(removed), dir)
        })
        .await;
        if let Err(ce) = &cg {
            crate::say!("zctr: {}: rollback of the cgroup: {ce}", c.id);
        }
        if let Err(de) = &dir {
            crate::say!("zctr: {}: rollback of the state dir: {de}", c.id);
        }
        self.table.forget(c.id.as_str());
    }

    /// Bundle, cgroup and shim of the `creating` container `c`.
    async fn build(self: &Arc<Self>, c: &Arc<Container>) -> Result<()> {
        let exposed_ports = self.prepare(c).await?;
        // Persisted before the shim exists, so a crash from here on is seen
        // (and cleaned) by recovery.
        c.update(&self.env.store, |r| r.exposed_ports = exposed_ports)?;
        self.launch(c, |_| {}).await
    }

    /// Writes `c`'s bundle from its record's config and creates its cgroup
    /// with the limits; returns the image's exposed ports.
    pub(super) async fn prepare(&self, c: &Arc<Container>) -> Result<Vec<String>> {
        let env = self.env.clone();
        let (rec, cg) = (c.record(), c.cgroup.clone());
        let prepared = blocking(move || -> Result<bundle::Prepared> {
            let prepared = bundle::prepare(&rec.state_dir, &rec.id, &rec.config, cg.as_str())?;
            env.cgroups.create(&cg, prepared.resources.as_ref())?;
            Ok(prepared)
        })
        .await?;
        Ok(prepared.exposed_ports)
    }

    /// Spawns `c`'s shim (which creates the container), records it created
    /// (with `more` changes to the record) and attaches to the shim.
    pub(super) async fn launch(
        &self,
        c: &Arc<Container>,
        more: impl FnOnce(&mut ContainerRecord),
    ) -> Result<()> {
        let record = c.record();
        let procs = self.env.cgroups.procs_files(&self.shim_cgroup()?);
        let spawned = self
            .env
            .shims
            .spawn(
                &record.shim_command,
                &record.state_dir.join(common::layout::SHIM_LOG),
                &procs,
            )
            .await?;
        let updated = c.update(&self.env.store, |r| {
            r.shim = Some(spawned.shim);
            r.init = procfs::proc_id(spawned.init_pid);
            r.status = Status::Created;
            more(r);
        });
        if let Err(e) = updated {
            // The shim runs: end its container (the shim then exits) before
            // reporting the failure; the rollback clears the cgroup. (Never
            // pid 0 or -1: those name process groups, the daemon's own.)
            if spawned.init_pid > 0 {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(spawned.init_pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return Err(e.into());
        }
        container::attach(self.env.clone(), c.clone(), spawned.reader, spawned.writer);
        Ok(())
    }
}
