//! `POST /v1/containers/{id}/exec` and `/attach`: the request is answered
//! `101 Switching Protocols` (`Upgrade: zctr-frames`) once the monitor
//! accepted the session, and the connection then carries the monitor's
//! bincode frames both ways (`crate::session::relay`). A detached exec is
//! answered `201 {"session", "pid"}` instead.
//!
//! The session is opened in a task of its own (`Registry::exec`); the relay
//! runs in another, so a client that hangs up only ends its relay: the
//! monitor then sends the session's output to the container's log.

use super::{json, read_body, Body};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::session::process::ExecRequest;
use crate::session::relay::{self, Mode};
use crate::session::Opened;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The sessions relayed at once, under a cap (an upgraded connection no
/// longer counts against the connection cap).
#[derive(Clone)]
pub struct Slots(Arc<tokio::sync::Semaphore>, usize);

impl Slots {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(max)), max)
    }

    /// A slot for one more session, or `503 busy`.
    fn take(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().map_err(|_| {
            Error::Busy(format!(
                "too many sessions (exec, attach) relayed at once: at most {}; try again later",
                self.1
            ))
        })
    }
}

/// The protocol named in `Upgrade`.
pub const PROTOCOL: &str = "zctr-frames";

/// Whether the request asks for an upgrade to [`PROTOCOL`].
fn asks_upgrade<B>(req: &Request<B>) -> bool {
    let has = |name, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(CONNECTION, "upgrade") && has(UPGRADE, PROTOCOL)
}

fn needs_upgrade(what: &str) -> Error {
    Error::BadRequest(format!(
        "{what} streams frames: send Connection: Upgrade and Upgrade: {PROTOCOL} \
         (or detach: true for an exec)"
    ))
}

fn switching() -> Response<Body> {
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, PROTOCOL)
        .body(Full::new(Bytes::new()).boxed())
        .expect("valid response")
}

/// Relays `opened` on the upgraded connection once hyper hands it over.
fn relay_after_upgrade(
    on_upgrade: hyper::upgrade::OnUpgrade,
    opened: Opened,
    mode: Mode,
    dir: PathBuf,
    slot: tokio::sync::OwnedSemaphorePermit,
) {
    tokio::spawn(async move {
        let _slot = slot;
        match on_upgrade.await {
            Ok(up) => {
                relay::run(
                    TokioIo::new(up),
                    opened.conn,
                    opened.first,
                    opened.session,
                    mode,
                    dir,
                )
                .await
            }
            // The client went away: dropping `opened` closes the monitor's
            // connection (the output goes to the log).
            Err(e) => tracing::debug!(error = %e, "session upgrade failed"),
        }
    });
}

pub async fn exec(
    reg: Arc<Registry>,
    id: &str,
    mut req: Request<Incoming>,
    body_timeout: Duration,
    slots: &Slots,
) -> Result<Response<Body>> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let upgrade = asks_upgrade(&req);
    let body = read_body(req, body_timeout).await?;
    let exec: ExecRequest = serde_json::from_slice(&body)
        .map_err(|e| Error::BadRequest(format!("exec request: {e}")))?;
    if !exec.detach && !upgrade {
        return Err(needs_upgrade("exec"));
    }
    let detach = exec.detach;
    let dir = reg.get(id)?.dir.clone();
    let slot = if detach { None } else { Some(slots.take()?) };
    let opened = reg.exec(id, exec).await?;
    if detach {
        return Ok(json(
            StatusCode::CREATED,
            &serde_json::json!({"session": opened.session, "pid": opened.pid}),
        ));
    }
    if let Some(slot) = slot {
        relay_after_upgrade(on_upgrade, opened, Mode::Exec, dir, slot);
    }
    Ok(switching())
}

pub async fn attach(
    reg: Arc<Registry>,
    id: &str,
    mut req: Request<Incoming>,
    slots: &Slots,
) -> Result<Response<Body>> {
    if !asks_upgrade(&req) {
        return Err(needs_upgrade("attach"));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let dir = reg.get(id)?.dir.clone();
    let slot = slots.take()?;
    let opened = reg.attach(id).await?;
    relay_after_upgrade(on_upgrade, opened, Mode::Attach, dir, slot);
    Ok(switching())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_upgrade_to_zctr_frames_is_taken() {
        let req = |conn: &str, up: &str| {
            Request::builder()
                .header(CONNECTION, conn)
                .header(UPGRADE, up)
                .body(())
                .unwrap()
        };
        assert!(asks_upgrade(&req("Upgrade", "zctr-frames")));
        assert!(asks_upgrade(&req("keep-alive, upgrade", "ZCTR-FRAMES")));
        assert!(!asks_upgrade(&req("keep-alive", "zctr-frames")));
        assert!(!asks_upgrade(&req("upgrade", "websocket")));
        assert!(!asks_upgrade(&Request::builder().body(()).unwrap()));
    }
}
