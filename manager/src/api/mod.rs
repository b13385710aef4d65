//! HTTP/1.1 + JSON over the daemon's Unix socket. Routes are listed in
//! `docs/api.md`; errors are `{"code", "message"}` (see [`error`]).

pub mod conn;
pub mod error;
pub mod events;
pub mod logs;
pub mod logwatch;
pub mod session;

pub use conn::Limits;

use crate::error::Error;
use crate::model::{ContainerRecord, CreateRequest, ErrorBody, WaitResponse};
use crate::registry::Registry;
use bytes::Bytes;
use common::id::ContainerId;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;

pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// Serves connections until `shutdown` completes, within `limits` (see [`conn`]).
pub async fn serve(
    listener: UnixListener,
    reg: Arc<Registry>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    // The daemon's one inotify instance, for every log follower.
    let watcher = logwatch::Watcher::start();
    // Sessions (exec, attach) outlive their request: an upgraded connection
    // leaves the connection cap, so they have a cap of their own, the
    // long polls' (see `session`).
    let sessions = session::Slots::new(limits.long_poll_cap());
    let handler = move |req| {
        let ctx = Ctx {
            watcher: watcher.clone(),
            sessions: sessions.clone(),
            body_timeout: limits.body_timeout,
        };
        handle(reg.clone(), ctx, req)
    };
    conn::serve(listener, limits, is_long_poll, handler, shutdown).await
}

/// The requests that stay in flight while a container runs: `wait` and
/// `logs?follow` (held to [`Limits::long_poll_cap`], see [`conn`]).
fn is_long_poll(req: &Request<Incoming>) -> bool {
    let path = req.uri().path().trim_end_matches('/');
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    match (req.method(), parts.as_slice()) {
        (&Method::POST, ["v1", "containers", _, "wait" | "stop"]) => true,
        (&Method::POST, ["v1", "containers"]) => flag(&query(req), "wait"),
        (&Method::GET, ["v1", "containers", _, "logs"]) => flag(&query(req), "follow"),
        (&Method::GET, ["v1", "events"]) => flag(&query(req), "follow"),
        (&Method::GET, ["v1", "containers", _, "stats"]) => flag(&query(req), "stream"),
        _ => false,
    }
}

/// What every request handler shares.
struct Ctx {
    watcher: logwatch::Watcher,
    sessions: session::Slots,
    body_timeout: Duration,
}

async fn handle(reg: Arc<Registry>, ctx: Ctx, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    match route(reg, ctx, req).await {
        Ok(r) => {
            tracing::debug!(%method, path, status = r.status().as_u16(), "request");
            r
        }
        Err(e) => {
            let r = error_response(&e);
            let status = r.status().as_u16();
            // A client's mistake is its own business; a failure of ours is not.
            if r.status().is_server_error() {
                tracing::warn!(%method, path, status, error = %e, "request failed");
            } else {
                tracing::debug!(%method, path, status, error = %e, "request refused");
            }
            r
        }
    }
}

pub fn error_response(e: &Error) -> Response<Body> {
    let (status, code) = error::classify(e);
    json(
        status,
        &ErrorBody {
            code: code.to_string(),
            message: e.to_string(),
        },
    )
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("valid response")
}

fn no_content() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()).boxed())
        .expect("valid response")
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), "true".to_string()),
        })
        .collect()
}

fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("1" | "true" | "yes"))
}

/// `stats?stream=true`: one JSON line now, then one a second until the
/// container has stopped (its last line says so) or the client hangs up.
fn stats_stream(
    reg: Arc<Registry>,
    id: String,
    first: crate::stats::ContainerStats,
) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let mut next = Ok(first);
        loop {
            let Ok(s) = next else { return };
            let mut line = serde_json::to_vec(&s).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err()
                || s.status == crate::model::Status::Stopped
            {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            next = reg.stats(&id).await;
        }
    });
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(logs::ChannelBody(rx).boxed())
        .expect("valid response")
}

/// The answer of `wait`, `stop` and a waited `run`.
fn wait_response(r: ContainerRecord) -> WaitResponse {
    WaitResponse {
        id: r.id.as_str().to_string(),
        exit: r.exit,
        stop_reason: r.stop_reason,
    }
}

/// Parses a create request: not JSON → `bad_request`; a bad id → `invalid_id`
/// style message; any other shape error names the field.
pub fn parse_create(body: &[u8]) -> Result<CreateRequest, Error> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("request body is not JSON: {e}")))?;
    if let Some(id) = value.get("id").and_then(|v| v.as_str()) {
        ContainerId::new(id).map_err(|e| Error::BadRequest(format!("id: {e}")))?;
    }
    serde_json::from_value(value).map_err(|e| Error::BadRequest(format!("create request: {e}")))
}

/// The request body: at most [`MAX_BODY`] bytes, all within `timeout`.
async fn read_body(req: Request<Incoming>, timeout: Duration) -> Result<Bytes, Error> {
    let collect = Limited::new(req.into_body(), MAX_BODY).collect();
    tokio::time::timeout(timeout, collect)
        .await
        .map_err(|_| Error::RequestTimeout(timeout))?
        .map(|c| c.to_bytes())
        .map_err(|e| Error::BadRequest(format!("request body: {e}")))
}

async fn route(
    reg: Arc<Registry>,
    ctx: Ctx,
    req: Request<Incoming>,
) -> Result<Response<Body>, Error> {
    let Ctx {
        watcher,
        sessions,
        body_timeout,
    } = ctx;
    let q = query(&req);
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let method = req.method().clone();
    match (method, parts.as_slice()) {
        (Method::GET, ["v1", "ping"]) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({"ok": true, "cgroups": reg.cgroups().layout()}),
        )),
        (Method::GET, ["v1", "version"]) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "daemon": crate::version::line(),
                "shim": crate::version::shim(reg.shim_path()).await,
            }),
        )),
        (Method::GET, ["v1", "containers"]) => Ok(json(StatusCode::OK, &reg.list())),
        (Method::GET, ["v1", "events"]) => events::respond(reg.events(), &q, flag(&q, "follow")),
        (Method::POST, ["v1", "containers"]) => {
            let (wait, rm) = (flag(&q, "wait"), flag(&q, "rm"));
            if rm && !wait {
                return Err(Error::BadRequest(
                    "rm=true needs wait=true (the container is removed when it exits)".into(),
                ));
            }
            let body = read_body(req, body_timeout).await?;
            let create = parse_create(&body)?;
            if wait {
                let r = reg.run_wait(create, rm).await?;
                return Ok(json(StatusCode::OK, &wait_response(r)));
            }
            let c = if flag(&q, "start") {
                reg.run(create).await?
            } else {
                reg.create(create).await?
            };
            Ok(json(
                StatusCode::CREATED,
                &reg.inspect(c.id.as_str()).await?,
            ))
        }
        (Method::POST, ["v1", "containers", id, "update"]) => {
            let body = read_body(req, body_timeout).await?;
            let update: crate::registry::LimitsUpdate = serde_json::from_slice(&body)
                .map_err(|e| Error::BadRequest(format!("update: {e}")))?;
            reg.update(id, update).await?;
            Ok(json(StatusCode::OK, &reg.inspect(id).await?))
        }
        (Method::GET, ["v1", "containers", id, "stats"]) => {
            let first = reg.stats(id).await?;
            if !flag(&q, "stream") {
                return Ok(json(StatusCode::OK, &first));
            }
            Ok(stats_stream(reg.clone(), id.to_string(), first))
        }
        (Method::GET, ["v1", "containers", id]) => {
            Ok(json(StatusCode::OK, &reg.inspect(id).await?))
        }
        (Method::DELETE, ["v1", "containers", id]) => {
            reg.delete(id, flag(&q, "force")).await?;
            Ok(no_content())
        }
        (Method::POST, ["v1", "containers", id, "start"]) => {
            reg.start(id).await?;
            Ok(no_content())
        }
        (Method::POST, ["v1", "containers", id, "pause"]) => {
            reg.pause(id).await?;
            Ok(no_content())
        }
        (Method::POST, ["v1", "containers", id, "resume"]) => {
            reg.resume(id).await?;
            Ok(no_content())
        }
        (Method::POST, ["v1", "containers", id, "kill"]) => {
            let name = q.get("signal").map(String::as_str).unwrap_or("TERM");
            let signal =
                common::signal::parse(name).ok_or_else(|| Error::BadSignal(name.to_string()))?;
            reg.kill(id, signal).await?;
            Ok(no_content())
        }
        (Method::POST, ["v1", "containers", id, "stop"]) => {
            let grace = match q.get("timeout") {
                None => Duration::from_secs(10),
                Some(t) => t
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.0..=3600.0).contains(s))
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        Error::BadRequest(format!(
                            "timeout: {t:?} is not a number of seconds in [0, 3600]"
                        ))
                    })?,
            };
            Ok(json(
                StatusCode::OK,
                &wait_response(reg.stop(id, grace).await?),
            ))
        }
        (Method::POST, ["v1", "containers", id, "wait"]) => {
            Ok(json(StatusCode::OK, &wait_response(reg.wait(id).await?)))
        }
        (Method::POST, ["v1", "containers", id, "exec"]) => {
            session::exec(reg.clone(), id, req, body_timeout, &sessions).await
        }
        (Method::POST, ["v1", "containers", id, "attach"]) => {
            session::attach(reg.clone(), id, req, &sessions).await
        }
        (Method::GET, ["v1", "containers", id, "ps"]) => {
            Ok(json(StatusCode::OK, &reg.ps(id).await?))
        }
        (Method::GET, ["v1", "containers", id, "logs"]) => {
            let c = reg.get(id)?;
            Ok(logs::response(c, flag(&q, "follow"), watcher).await)
        }
        _ => Ok(json(
            StatusCode::NOT_FOUND,
            &ErrorBody {
                code: "no_route".into(),
                message: format!("no route for {} {}", req.method(), req.uri().path()),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_are_checked() {
        assert!(
            matches!(parse_create(b"not json"), Err(Error::BadRequest(m)) if m.contains("not JSON"))
        );
        let e = parse_create(br#"{"id":"../x","config":{"rootfs":"/r"}}"#).unwrap_err();
        assert!(e.to_string().contains("id:"), "{e}");
        let e = parse_create(br#"{"id":"a","config":{"rootfs":"/r","profile":"superuser"}}"#)
            .unwrap_err();
        assert!(e.to_string().contains("superuser"), "{e}");
        let e = parse_create(br#"{"id":"a","config":{"rootfs":"/r"},"x":1}"#).unwrap_err();
        assert!(e.to_string().contains('x'), "{e}");
        let ok = parse_create(br#"{"id":"a","config":{"rootfs":"/r"}}"#).unwrap();
        assert_eq!(ok.id.as_str(), "a");
    }
}
