//! Recovery: rebuilds the table from the state root when the daemon starts.
//! A finished record is listed as it is; a live shim is reconnected; a dead
//! one is concluded (exit from `status.json`, or "shim died"); a creation
//! that never finished is removed; a directory whose name is no container
//! id is left alone.

use super::{blocking, container_cgroup, Registry};
use crate::container::{self, Container, SHIM_DIED};
use crate::error::Result;
use crate::model::{ContainerRecord, Status};
use crate::procfs;
use crate::store;
use common::id::ContainerId;
use common::state::{ShimStatus, STATUS_FILE};
use std::sync::Arc;
use std::time::Duration;
use zctr_cgroups::CgroupPath;

/// How often, and how far apart, recovery tries a live shim's socket.
const CONNECT_TRIES: u32 = 10;
const CONNECT_PAUSE: Duration = Duration::from_millis(100);

impl Registry {
    /// Rebuilds the table from the state root. Safe to run more than once:
    /// every outcome is written back before the next look.
    pub async fn recover(self: &Arc<Self>) -> Result<()> {
        let names = self.env.store.list()?;
        for name in names {
            if self.table.contains(&name) {
                continue;
            }
            if let Err(e) = self.recover_one(&name).await {
                crate::say!("zctr: recovery of {name}: {e}");
            }
            // Execs that started or ended while the daemon was away.
            if let Some(c) = self.table.get(&name) {
                container::sync_exec_events(&self.env, &c);
            }
        }
        Ok(())
    }

    async fn recover_one(self: &Arc<Self>, name: &str) -> Result<()> {
        let Ok(id) = ContainerId::new(name) else {
            crate::say!("zctr: ignoring {name:?} in the state root: not a container id");
            return Ok(());
        };
        let computed = container_cgroup(&self.settings.cgroup_parent, &id)?;
        let record: Result<ContainerRecord, _> = self.env.store.load(id.as_str());
        // The cgroup the container was created in (another build may have
        // named it otherwise), if it lies below the daemon's parent.
        let cgroup = match &record {
            Ok(r) => recorded_cgroup(&self.settings.cgroup_parent, &r.cgroup).unwrap_or(computed),
            Err(_) => computed,
        };
        let record = match record {
            Ok(r) if r.status != Status::Creating => r,
            other => {
                // Creation never finished: nothing of it may stay.
                if let Err(e) = &other {
                    crate::say!("zctr: {name}: unusable record ({e}); cleaning up");
                }
                return self.clean_unfinished(id, cgroup).await;
            }
        };
        let c = Container::recovered(record, cgroup);
        self.table.insert(c.clone());
        if c.status() == Status::Stopped {
            let (cgroups, cg) = (self.env.cgroups.clone(), c.cgroup.clone());
            let _ = blocking(move || {
                let _ = cgroups.kill_all(&cg);
                cgroups.remove(&cg)
            })
            .await;
            // Its policy may still want it (the daemon stopped during a back-off).
            let _ = self.env.stopped.send(c.id.clone());
            return Ok(());
        }
        let shim_alive = c
            .record()
            .shim
            .map(|p| procfs::is_alive(&p))
            .unwrap_or(false);
        if shim_alive {
            for _ in 0..CONNECT_TRIES {
                if let Ok((r, w)) = self.env.shims.connect(&c.dir).await {
                    container::attach(self.env.clone(), c.clone(), r, w);
                    return Ok(());
                }
                tokio::time::sleep(CONNECT_PAUSE).await;
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

    /// Removes what a creation that never finished left: its shim (named
    /// by `status.json`, if it still runs), its cgroup, its state dir.
    async fn clean_unfinished(&self, id: ContainerId, cgroup: CgroupPath) -> Result<()> {
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
        Ok(())
    }
}

/// `recorded` as a cgroup path, if it is a valid path strictly below `parent`.
fn recorded_cgroup(parent: &CgroupPath, recorded: &str) -> Option<CgroupPath> {
    let path = CgroupPath::new(recorded).ok()?;
    let below = path
        .as_str()
        .strip_prefix(parent.as_str())
        .is_some_and(|rest| rest.starts_with('/'));
    below.then_some(path)
}

#[cfg(test)]
mod recorded_tests {
    use super::*;

    #[test]
    fn only_a_valid_path_below_the_parent_is_taken_from_the_record() {
        let parent = CgroupPath::new("zctr").unwrap();
        let take = |r: &str| recorded_cgroup(&parent, r).map(|p| p.as_str().to_string());
        assert_eq!(take("zctr/web.zctr").as_deref(), Some("zctr/web.zctr"));
        assert_eq!(take("zctr/web").as_deref(), Some("zctr/web"));
        assert_eq!(take("zctr"), None);
        assert_eq!(take("zctrx/web"), None);
        assert_eq!(take("other/web"), None);
        assert_eq!(take("zctr/../etc"), None);
        assert_eq!(take(""), None);
    }
}
