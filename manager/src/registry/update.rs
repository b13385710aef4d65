//! `update`: new cpu, memory or pids limits for a live container (created,
//! running or paused), validated like create (the whole config with the new
//! limits), written through `Cgroups::update` (all or none: on a failure
//! midway the old values are written back), then recorded. A failed update
//! changes nothing, in the cgroup or in the record.

use super::{blocking, detached, Registry};
use crate::error::{Error, Result};
use crate::model::{ContainerRecord, Status};
use common::config::Limits;
use std::sync::Arc;

/// The limits a request changes (`None`: unchanged).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsUpdate {
    pub cpus: Option<f64>,
    pub memory_bytes: Option<u64>,
    pub pids: Option<i64>,
}

impl LimitsUpdate {
    fn apply(&self, mut l: Limits) -> Limits {
        l.cpus = self.cpus.or(l.cpus);
        l.memory_bytes = self.memory_bytes.or(l.memory_bytes);
        l.pids = self.pids.or(l.pids);
        l
    }
}

impl Registry {
    pub async fn update(self: &Arc<Self>, id: &str, req: LimitsUpdate) -> Result<ContainerRecord> {
        let (this, id) = (self.clone(), id.to_string());
        detached(async move {
            let (c, _op) = this.locked(&id).await?;
            let r = c.record();
            if !matches!(r.status, Status::Created | Status::Running | Status::Paused) {
                return Err(Error::BadRequest(format!(
                    "{id} is {}: only a created, running or paused container's limits can change",
                    r.status.as_str()
                )));
            }
            if req.cpus.is_none() && req.memory_bytes.is_none() && req.pids.is_none() {
                return Err(Error::BadRequest(
                    "nothing to update: give cpus, memory_bytes or pids".into(),
                ));
            }
            let mut config = r.config.clone();
            config.limits = req.apply(config.limits);
            config
                .validate()
                .map_err(|e| Error::BadRequest(e.to_string()))?;
            let resources = common::spec::profile::limit_resources(config.profile, &config.limits)
                .map_err(|e| Error::BadRequest(e.to_string()))?;
            let (cgroups, cg) = (this.env.cgroups.clone(), c.cgroup.clone());
            blocking(move || cgroups.update(&cg, &resources)).await?;
            c.update(&this.env.store, |r| r.config.limits = config.limits)?;
            Ok(c.record())
        })
        .await
    }
}
