//! Opening sessions (`exec`, `attach`) on a container: the state checks,
//! the exec's process file, and the `exec_started` event.

use super::{blocking, detached, Registry};
use crate::error::{Error, Result};
use crate::lifecycle::Op;
use crate::model::now_ms;
use crate::session::process::{self, ExecRequest};
use crate::session::relay::ATTACH_SESSION;
use crate::session::users::ContainerDb;
use crate::session::{self, Opened, SessionError};
use common::layout::CONFIG_FILE;
use common::protocol::ManagerMsg;

fn session_err(id: &str) -> impl Fn(SessionError) -> Error + '_ {
    move |source| Error::Session {
        id: id.to_string(),
        source,
    }
}

impl Registry {
    /// Starts `req` in running container `id` on a connection of its own
    /// to the monitor (the caller relays it, or drops it for `detach`).
    pub async fn exec(&self, id: &str, req: ExecRequest) -> Result<Opened> {
        let c = self.get(id)?;
        Self::invalid(&c, Op::Exec)?;
        let rec = c.record();
        let init = rec
            .init
            .map(|p| p.pid)
            .ok_or_else(|| Error::ShimUnavailable(id.to_string()))?;
        // The monitor takes absolute paths only (a daemon given relative ones).
        let absolute = |p: &std::path::Path| {
            std::path::absolute(p)
                .map_err(|e| Error::BadRequest(format!("{}: no absolute path: {e}", p.display())))
        };
        let shim = absolute(&self.settings.shim)?
            .to_str()
            .ok_or_else(|| Error::BadRequest("the daemon's --shim path is not UTF-8".into()))?
            .to_string();
        let (dir, config) = (absolute(&c.dir)?, rec.bundle.join(CONFIG_FILE));
        let env = self.env.clone();
        let name = id.to_string();
        detached(async move {
            let err = session_err(&name);
            let (tty, stdin, detach, size) = (req.tty, req.stdin, req.detach, req.size);
            let wdir = dir.clone();
            let file = blocking(move || {
                let p = process::build(&req, &config, &ContainerDb(init))?;
                process::write(&wdir, &p)
            })
            .await
            .map_err(|e| err(e.into()))?;
            let msg = ManagerMsg::Exec {
                shim,
                process: file.path.to_string_lossy().into_owned(),
                tty,
                stdin,
                detach,
                size,
            };
            let opened = session::open(&dir, &msg).await;
            // `zctr-shim exec` has read it (or will never).
            drop(file);
            let opened = opened.map_err(&err)?;
            if let Some(pid) = opened.pid {
                // What ended before it first (the monitor's connection to
                // the daemon may not have told it yet), so events stay in
                // order; then this start, if status.json did not have it.
                crate::container::sync_exec_events(&env, &c);
                env.store
                    .events()
                    .exec_started(&name, opened.session, pid, now_ms());
            }
            Ok(opened)
        })
        .await
    }

    /// Attaches a connection of its own to container `id`'s own process.
    pub async fn attach(&self, id: &str) -> Result<Opened> {
        let c = self.get(id)?;
        Self::invalid(&c, Op::Attach)?;
        let dir = c.dir.clone();
        let name = id.to_string();
        detached(async move {
            let msg = ManagerMsg::Attach {
                session: ATTACH_SESSION,
            };
            session::open(&dir, &msg).await.map_err(session_err(&name))
        })
        .await
    }
}
