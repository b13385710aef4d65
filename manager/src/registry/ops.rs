//! The lifecycle operations on a listed container: start, run, pause,
//! resume, kill, stop, delete. Each runs detached (a client that hangs up does not
//! cancel it) under the container's operation lock.

use super::exchange::{self, COMMAND_TIMEOUT};
use super::{blocking, detached, Registry};
use crate::container::{self, Container};
use crate::error::{Error, Result};
use crate::lifecycle::Op;
use crate::model::{ContainerRecord, CreateRequest, Status};
use crate::procfs;
use common::protocol::ManagerMsg;
use std::sync::Arc;
use std::time::Duration;

impl Registry {
    /// Creates a container: bundle, cgroup, shim; leaves nothing behind on
    /// failure, whether or not the client is still there.
    pub async fn create(self: &Arc<Self>, req: CreateRequest) -> Result<Arc<Container>> {
        let this = self.clone();
        detached(async move { this.create_now(req).await.map(|(c, _op)| c) }).await
    }

    pub async fn start(self: &Arc<Self>, id: &str) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move {
            let (c, _op) = this.locked(&id).await?;
            this.start_locked(&c).await
        })
        .await
    }

    /// Starts `c`, whose operation lock the caller holds.
    async fn start_locked(&self, c: &Arc<Container>) -> Result<()> {
        Self::invalid(c, Op::Start)?;
        exchange::start(c, COMMAND_TIMEOUT).await
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

    /// Create, start, wait for the exit and (with `rm`) delete, as one
    /// detached operation: a client that hangs up after the request was
    /// accepted still gets the container run and, with `rm`, removed once it
    /// exits. Returns the record as it was at the exit.
    pub async fn run_wait(
        self: &Arc<Self>,
        req: CreateRequest,
        rm: bool,
    ) -> Result<ContainerRecord> {
        let this = self.clone();
        detached(async move {
            let c = {
                let (c, _op) = this.create_now(req).await?;
                if let Err(e) = this.start_locked(&c).await {
                    if let Err(de) = this.delete_locked(&c, true).await {
                        crate::say!("zctr: {}: delete after a failed start: {de}", c.id);
                    }
                    return Err(e);
                }
                c
            };
            // The lock is released while the container runs: kill, pause,
            // inspect or a delete by another client work as usual.
            c.wait_stopped(None).await;
            let record = c.record();
            if rm {
                let (c, _op) = match this.locked(c.id.as_str()).await {
                    Ok(locked) => locked,
                    // Deleted by someone else meanwhile: nothing left to remove.
                    Err(Error::NotFound(_)) => return Ok(record),
                    Err(e) => return Err(e),
                };
                this.delete_locked(&c, false).await?;
            }
            Ok(record)
        })
        .await
    }

    pub async fn pause(self: &Arc<Self>, id: &str) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move {
            let (c, _op) = this.locked(&id).await?;
            Self::invalid(&c, Op::Pause)?;
            let (cgroups, cg) = (this.env.cgroups.clone(), c.cgroup.clone());
            blocking(move || cgroups.freeze(&cg)).await?;
            c.update(&this.env.store, |r| {
                if r.status == Status::Running {
                    r.status = Status::Paused
                }
            })?;
            Ok(())
        })
        .await
    }

    pub async fn resume(self: &Arc<Self>, id: &str) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move {
            let (c, _op) = this.locked(&id).await?;
            Self::invalid(&c, Op::Resume)?;
            let (cgroups, cg) = (this.env.cgroups.clone(), c.cgroup.clone());
            blocking(move || cgroups.thaw(&cg)).await?;
            c.update(&this.env.store, |r| {
                if r.status == Status::Paused {
                    r.status = Status::Running
                }
            })?;
            Ok(())
        })
        .await
    }

    pub async fn kill(self: &Arc<Self>, id: &str, signal: i32) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move { this.kill_now(&id, signal).await }).await
    }

    async fn kill_now(&self, id: &str, signal: i32) -> Result<()> {
        let (c, _op) = self.locked(id).await?;
        Self::invalid(&c, Op::Kill)?;
        // A signal meant to end it: its restart policy must not undo that.
        let ending = [libc::SIGKILL, libc::SIGTERM, libc::SIGINT, libc::SIGQUIT];
        if ending.contains(&signal) && !c.record().stopped_by_user {
            c.update(&self.env.store, |r| r.stopped_by_user = true)?;
        }
        let sent = exchange::command(&c, ManagerMsg::Kill { signal }, COMMAND_TIMEOUT).await;
        if signal == libc::SIGKILL {
            // Every process of its cgroup, in every hierarchy, thawed first:
            // a paused (frozen) container dies too, and so does one whose
            // shim is gone (the shim's link then reports how it ended).
            let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
            blocking(move || cgroups.kill_all(&cg)).await?;
            // Every process is dead now: a shim that is gone or did not
            // answer in time does not make the kill a failure.
            if matches!(sent, Err(Error::ShimUnavailable(_) | Error::Timeout { .. })) {
                return Ok(());
            }
        }
        sent.map(drop)
    }

    /// Stops a container: TERM to its init, then, if it has not stopped
    /// after `grace`, KILL to every process of its cgroup (a paused one is
    /// thawed by that kill; its TERM would wait for the thaw, so it gets the
    /// KILL at once). Stopping a stopped container changes nothing, as in
    /// docker and podman. Returns the record once it is stopped.
    pub async fn stop(self: &Arc<Self>, id: &str, grace: Duration) -> Result<ContainerRecord> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move {
            let c = this.get(&id)?;
            let stopped_meanwhile = |r: Result<()>, c: &Container| match r {
                Err(Error::InvalidState { .. }) if c.status() == Status::Stopped => Ok(()),
                r => r,
            };
            let status = c.status();
            if status != Status::Stopped {
                let term_first = status != Status::Paused;
                if term_first {
                    stopped_meanwhile(this.kill_now(&id, libc::SIGTERM).await, &c)?;
                }
                if !term_first || !c.wait_stopped(Some(grace)).await {
                    stopped_meanwhile(this.kill_now(&id, libc::SIGKILL).await, &c)?;
                    c.wait_stopped(None).await;
                }
            }
            Ok(c.record())
        })
        .await
    }

    pub async fn delete(self: &Arc<Self>, id: &str, force: bool) -> Result<()> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move {
            let (c, _op) = this.locked(&id).await?;
            this.delete_locked(&c, force).await
        })
        .await
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
            env.store.events().deleted(&idc);
            Ok(())
        })
        .await?;
        self.table.forget(&id);
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
}
