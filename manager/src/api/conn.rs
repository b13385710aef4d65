//! The accept loop and what bounds each connection (see `docs/api.md`,
//! "Limits and timeouts"):
//!
//! - a request head must arrive within `header_timeout` of the connection's
//!   accept or of the end of its previous response (hyper's
//!   `header_read_timeout`): this closes slow-header clients and idle
//!   keep-alive connections alike; a response that is still streaming
//!   (`logs?follow`, `wait`) is not idle and is never cut;
//! - a request body must arrive within `body_timeout` (`408`);
//! - at most `max_connections` connections are open. When a new one arrives
//!   at the cap, the oldest connection with no request in flight is closed to
//!   make room (idle connections cannot starve clients); when every slot
//!   has a request in flight, the new connection gets `503 busy` and is
//!   closed at once;
//! - long-polling requests (`wait`, `logs?follow`: they stay in flight for as
//!   long as the container runs) have a cap of their own,
//!   [`Limits::long_poll_cap`] (a quarter of the connection cap). Beyond it
//!   such a request gets `503 busy` at once (its connection stays open). The
//!   other three quarters of the connections can only be held by short
//!   requests or be idle (and so be closed for a new one): long polls never
//!   make a short request (`list`, `inspect`, `create`, ...) get `503 busy`;
//! - `accept` failing for lack of descriptors or memory (EMFILE, ENFILE,
//!   ENOBUFS, ENOMEM) frees an idle connection and waits `ACCEPT_BACKOFF`
//!   before the next try: never a busy loop.

use super::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

/// Pause after `accept` failed for lack of a resource.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Descriptors kept for everything but API connections (state files, shim
/// sockets, logs): the connection cap is at most half of what is left of
/// the soft `RLIMIT_NOFILE` after these.
pub const FD_RESERVE: u64 = 64;

/// What bounds the API's connections; the defaults are the daemon's flags'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

impl Limits {
    /// Most long-polling requests (`wait`, `logs?follow`) in flight at once:
    /// a quarter of the connection cap (at least 1), so that three quarters
    /// stay for short requests.
    pub fn long_poll_cap(&self) -> usize {
        (self.max_connections / 4).max(1)
    }

    /// The connection cap lowered to fit a soft descriptor limit of `nofile`.
    pub fn fit_nofile(mut self, nofile: u64) -> Self {
        let fit = (nofile.saturating_sub(FD_RESERVE) / 2).max(1);
        self.max_connections = self.max_connections.min(fit as usize).max(1);
        self
    }
}

/// One open connection: how many of its requests are in flight (a request
/// counts until its response body is dropped) and how to close it.
#[derive(Default)]
struct ConnState {
    in_flight: AtomicUsize,
    close: Notify,
}

/// The open connections in accept order (the key), oldest first.
struct Tracker {
    max: usize,
    conns: Mutex<(u64, BTreeMap<u64, Arc<ConnState>>)>,
}

impl Tracker {
    fn new(max: usize) -> Self {
        Self {
            max,
            conns: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// A slot for a new connection, closing the oldest idle one when at the
    /// cap; `None` when every connection has a request in flight.
    fn admit(&self) -> Option<(u64, Arc<ConnState>)> {
        let mut guard = self.conns.lock().expect("tracker lock");
        let (next, conns) = &mut *guard;
        if conns.len() >= self.max && !Self::evict_idle(conns) {
            return None;
        }
        let id = *next;
        *next += 1;
        let state = Arc::new(ConnState::default());
        conns.insert(id, state.clone());
        Some((id, state))
    }

    /// Closes the oldest connection with no request in flight.
    fn close_one_idle(&self) -> bool {
        Self::evict_idle(&mut self.conns.lock().expect("tracker lock").1)
    }

    fn evict_idle(conns: &mut BTreeMap<u64, Arc<ConnState>>) -> bool {
        let idle = conns
            .iter()
            .find(|(_, s)| s.in_flight.load(Ordering::SeqCst) == 0)
            .map(|(id, _)| *id);
        match idle.and_then(|id| conns.remove(&id)) {
            Some(state) => {
                // A stored permit: the connection's task sees it even if it
                // is not waiting yet.
                state.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn release(&self, id: u64) {
        self.conns.lock().expect("tracker lock").1.remove(&id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.conns.lock().expect("tracker lock").1.len()
    }
}

/// The long-polling requests in flight, under their own cap.
struct LongPolls {
    max: usize,
    count: AtomicUsize,
}

impl LongPolls {
    fn new(max: usize) -> Self {
        Self {
            max,
            count: AtomicUsize::new(0),
        }
    }

    /// A slot for one more long poll, `None` at the cap.
    fn acquire(self: &Arc<Self>) -> Option<LongSlot> {
        self.count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| LongSlot(self.clone()))
    }
}

/// One long poll's slot, given back on drop.
struct LongSlot(Arc<LongPolls>);

impl Drop for LongSlot {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts one request as in flight for as long as it lives.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn new(state: Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request in flight until hyper drops it
/// (fully written, or the connection closed).
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
    _long: Option<LongSlot>,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer to a connection beyond the cap when no slot can be freed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 72\r\nconnection: close\r\n\r\n\
{\"code\":\"busy\",\"message\":\"too many connections with requests in flight\"}";

/// The answer to a long poll beyond [`Limits::long_poll_cap`].
fn long_poll_busy(max: usize) -> Response<Body> {
    let body = serde_json::json!({
        "code": "busy",
        "message": format!(
            "too many long-polling requests (wait, logs --follow) in flight: at most {max}; \
             try again later"
        ),
    });
    let mut bytes = serde_json::to_vec_pretty(&body).unwrap_or_default();
    bytes.push(b'\n');
    Response::builder()
        .status(hyper::StatusCode::SERVICE_UNAVAILABLE)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(bytes)).boxed())
        .expect("valid response")
}

/// Whether an `accept` error means the process ran out of something.
fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Tells a long-polling request (see the module's doc) from a short one.
pub type IsLongPoll = fn(&Request<hyper::body::Incoming>) -> bool;

/// Serves connections with `handler` until `shutdown` completes; requests
/// `is_long` picks are held to [`Limits::long_poll_cap`].
pub async fn serve<H, F>(
    listener: UnixListener,
    limits: Limits,
    is_long: IsLongPoll,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let tracker = Arc::new(Tracker::new(limits.max_connections));
    let long = Arc::new(LongPolls::new(limits.long_poll_cap()));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if out_of_resources(&e) => {
                    tracing::debug!(error = %e, "accept: out of descriptors; closing an idle connection");
                    tracker.close_one_idle();
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
                // Per-connection failures (ECONNABORTED, ...): next one.
                Err(e) => {
                    tracing::debug!(error = %e, "accept");
                    tokio::task::yield_now().await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        match tracker.admit() {
            Some((id, state)) => {
                let tracker = tracker.clone();
                let handler = handler.clone();
                let long = long.clone();
                tokio::spawn(async move {
                    connection(stream, limits, state, (is_long, long), handler).await;
                    tracker.release(id);
                });
            }
            None => {
                tracing::debug!(
                    max = limits.max_connections,
                    "connection limit reached: busy"
                );
                // Best effort, never waits: the socket buffer of a new
                // connection has room for these few bytes.
                let _ = stream.try_write(BUSY);
            }
        }
    }
}

async fn connection<H, F>(
    stream: UnixStream,
    limits: Limits,
    state: Arc<ConnState>,
    (is_long, long): (IsLongPoll, Arc<LongPolls>),
    handler: H,
) where
    H: Fn(Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let st = state.clone();
    let svc = service_fn(move |req| {
        let in_flight = InFlight::new(st.clone());
        let call = match is_long(&req).then(|| long.acquire()) {
            // A long poll at its cap.
            Some(None) => Err(long.max),
            slot => Ok((handler(req), slot.flatten())),
        };
        async move {
            let (resp, slot) = match call {
                Ok((fut, slot)) => (fut.await, slot),
                Err(max) => (long_poll_busy(max), None),
            };
            Ok::<_, Infallible>(resp.map(|inner| {
                Tracked {
                    inner,
                    _in_flight: in_flight,
                    _long: slot,
                }
                .boxed()
            }))
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(TokioIo::new(stream), svc)
        // `exec` and `attach` continue as frames on the upgraded connection.
        .with_upgrades();
    tokio::select! {
        _ = conn => {}
        // Evicted: dropping the connection closes its socket.
        _ = state.close.notified() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_descriptor_limit() {
        let l = Limits::default();
        assert_eq!(l.fit_nofile(1 << 20).max_connections, 512);
        assert_eq!(l.fit_nofile(1024).max_connections, 480);
        assert_eq!(l.fit_nofile(128).max_connections, 32);
        assert_eq!(l.fit_nofile(10).max_connections, 1);
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let t = Tracker::new(2);
        let (a, sa) = t.admit().unwrap();
        let (_b, sb) = t.admit().unwrap();
        let _busy_a = InFlight::new(sa.clone());
        // a is busy, b is idle: b goes.
        let (_c, sc) = t.admit().unwrap();
        assert_eq!(t.len(), 2);
        let _busy_c = InFlight::new(sc);
        // b was told to close (a stored permit).
        let notified = sb.close.notified();
        futures_lite_poll(notified);
        // Both busy: no room.
        assert!(t.admit().is_none());
        t.release(a);
        assert!(t.admit().is_some());
    }

    #[test]
    fn long_polls_have_a_quarter_of_the_slots() {
        let l = Limits::default();
        assert_eq!(l.long_poll_cap(), 128);
        assert_eq!(l.fit_nofile(128).long_poll_cap(), 8);
        assert_eq!(l.fit_nofile(10).long_poll_cap(), 1);
        let polls = Arc::new(LongPolls::new(2));
        let a = polls.acquire().unwrap();
        let _b = polls.acquire().unwrap();
        assert!(polls.acquire().is_none());
        drop(a);
        assert!(polls.acquire().is_some());
    }

    #[test]
    fn busy_reply_is_well_formed() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{body}"
        );
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }

    /// Polls a `Notified` once; panics unless it is ready.
    fn futures_lite_poll(n: tokio::sync::futures::Notified<'_>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_millis(100), n)
                .await
                .expect("notified");
        });
    }
}
