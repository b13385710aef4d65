//! Restart policies at work: every container that stops (`Env::stopped`,
//! sent by `container::mark_stopped`, also for exits learned at the daemon's
//! start) is looked at once; if its policy wants it, it is started again
//! after its back-off, under its operation lock, unless meanwhile it was
//! deleted, started, or stopped by the user. A restart builds it anew from
//! its record (bundle, cgroup with its limits, shim) as `create` did, then
//! starts it; the `restarted` event and `restart_count` say so.

use super::Registry;
use crate::model::Status;
use common::config::{backoff, RESET_AFTER};
use common::id::ContainerId;
use std::sync::Arc;
use std::time::Duration;

impl Registry {
    /// Starts acting on stopped containers (the daemon calls it once, after
    /// its recovery; what stopped before is waiting in the channel).
    pub fn start_restarts(self: &Arc<Self>) {
        let Some(mut rx) = self
            .stopped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                let this = this.clone();
                tokio::spawn(async move { this.maybe_restart(id).await });
            }
        });
    }

    async fn maybe_restart(self: Arc<Self>, id: ContainerId) {
        let Ok(c) = self.get(id.as_str()) else { return };
        let r = c.record();
        let code = r.exit.as_ref().map(|e| e.exit_code);
        if r.status != Status::Stopped
            || !r
                .config
                .restart
                .wants_restart(code, r.restart_count, r.stopped_by_user)
        {
            return;
        }
        // A container that ran for a while starts a new row of back-offs.
        let ran = r
            .finished_ms
            .zip(r.started_ms)
            .map_or(0, |(f, s)| f.saturating_sub(s));
        let step = if Duration::from_millis(ran) >= RESET_AFTER {
            0
        } else {
            r.backoff_step
        };
        tokio::time::sleep(backoff(step)).await;
        let this = self.clone();
        // Detached: a restart runs to its end, like any operation.
        let _ = super::detached(async move {
            let (now, _op) = this.locked(id.as_str()).await?;
            let r = now.record();
            if !Arc::ptr_eq(&now, &c) || r.status != Status::Stopped || r.stopped_by_user {
                return Ok(());
            }
            if let Err(e) = this.restart_locked(&now, step + 1).await {
                tracing::warn!(id = %id, "restart by policy {}: {e}", r.config.restart);
            }
            Ok::<_, crate::error::Error>(())
        })
        .await;
    }

    /// Builds and starts the stopped container `c` again; its lock is held.
    async fn restart_locked(
        &self,
        c: &Arc<crate::container::Container>,
        step: u32,
    ) -> crate::error::Result<()> {
        self.prepare(c).await?;
        let count = c.record().restart_count + 1;
        self.launch(c, |r| {
            r.restart_count = count;
            r.backoff_step = step;
            r.exit = None;
            r.stop_reason = None;
            r.finished_ms = None;
            r.started_ms = None;
        })
        .await?;
        let waited = backoff(step - 1).as_millis() as u64;
        self.events().restarted(c.id.as_str(), count, waited);
        super::exchange::start(c, super::exchange::COMMAND_TIMEOUT).await?;
        Ok(())
    }
}
