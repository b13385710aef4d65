//! `GET /v1/events[?since=MS][&id=ID][&follow=true]`: the daemon's event log
//! (`crate::events`) as one JSON object per line, oldest first: the kept
//! events from `since` (milliseconds since the Unix epoch; default: all
//! kept), and with `follow` every later one as it happens, until the client
//! goes away. A follower too slow for the broadcast gets one
//! `{"lost": N}` line where N events were dropped for it.

use super::logs::ChannelBody;
use super::Body;
use crate::error::Error;
use crate::events::Event;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Response;
use std::collections::HashMap;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

fn line(e: &Event) -> Bytes {
    let mut v = serde_json::to_vec(e).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

pub fn respond(
    events: &crate::events::Events,
    q: &HashMap<String, String>,
    follow: bool,
) -> Result<Response<Body>, Error> {
    let since = match q.get("since") {
        None => 0,
        Some(s) => s.parse::<u64>().map_err(|_| {
            Error::BadRequest(format!(
                "since: {s:?} is not a time in milliseconds since the Unix epoch"
            ))
        })?,
    };
    let id = q.get("id").cloned();
    let (past, mut rx) = events.since(since, id.as_deref());
    let (tx, body_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for e in &past {
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        if !follow {
            return;
        }
        let last = past.last().map_or(0, |e| e.seq);
        loop {
            let out = match rx.recv().await {
                Ok(e) if e.seq <= last => continue,
                Ok(e) if e.at_ms < since || id.as_deref().is_some_and(|id| e.id != id) => continue,
                Ok(e) => line(&e),
                Err(RecvError::Lagged(n)) => Bytes::from(format!("{{\"lost\": {n}}}\n")),
                Err(RecvError::Closed) => return,
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
    });
    Ok(Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(ChannelBody(body_rx).boxed())
        .expect("valid response"))
}
