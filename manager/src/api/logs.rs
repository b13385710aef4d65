//! `GET /v1/containers/{id}/logs[?follow=true]`: the shim's log files
//! (`container.log.1` then `container.log`), and with `follow` everything
//! written after, across rotations, until the shim has stopped writing (the
//! container stopped and its shim exited, or its output drain is over) or the
//! client goes away. Output lost to rotation before this follower could read
//! it is replaced by one marker line ([`crate::logtail::gap_marker`]); see
//! `crate::logtail` for how it keeps up.

use super::logwatch::{Cursor, Wake, Watcher};
use super::Body;
use crate::container::Container;
use crate::logtail::{gap_marker, Chunk, Events, LogTail};
use crate::model::{now_ms, Status};
use bytes::Bytes;
use common::state::LOG_DRAIN_MS;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::Response;
use std::convert::Infallible;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Largest chunk sent at once.
const CHUNK: usize = 64 * 1024;
/// How often a follower looks without being woken (the container's state,
/// and the log itself when there is no inotify watch).
const POLL: Duration = Duration::from_millis(100);

/// A response body fed by a channel.
pub(super) struct ChannelBody(pub(super) mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// Whether the shim writes no more to the log: the container stopped, and
/// its shim is gone or the drain after the exit is over.
fn writer_done(c: &Container) -> bool {
    let r = c.record();
    if r.status != Status::Stopped {
        return false;
    }
    let shim_gone = r.shim.map(|p| !crate::procfs::is_alive(&p)).unwrap_or(true);
    let drained = r
        .finished_ms
        .is_some_and(|t| now_ms() >= t + LOG_DRAIN_MS + 500);
    shim_gone || drained
}

/// A follower's open log and its place in the watch's events. All its
/// file I/O is blocking: it is moved to the blocking pool for every step
/// ([`blocking`]) and back.
struct Reader {
    tail: LogTail,
    cursor: Option<Cursor>,
    buf: Vec<u8>,
    /// Whether the last byte sent ended a line (a gap marker starts one).
    last_newline: bool,
}

impl Reader {
    /// The watch first (when following): nothing the shim does after the
    /// first look is missed. Blocking.
    fn open(dir: &Path, watcher: Option<&Watcher>) -> io::Result<(Box<Reader>, Option<Wake>)> {
        let (mut cursor, wake) = match watcher.and_then(|w| w.follow(dir)) {
            Some((c, w)) => (Some(c), Some(w)),
            None => (None, None),
        };
        let tail = LogTail::open(dir, cursor.as_mut().map(|c| c as &mut dyn Events))?;
        let reader = Reader {
            tail,
            cursor,
            buf: vec![0u8; CHUNK],
            last_newline: true,
        };
        Ok((Box::new(reader), wake))
    }

    /// Opens the generations created since the last look. Blocking.
    fn refresh(&mut self) {
        let _ = self
            .tail
            .refresh(self.cursor.as_mut().map(|c| c as &mut dyn Events));
    }

    /// The next bytes to send (data or a gap marker), `None` when there is
    /// nothing now. Blocking.
    fn next(&mut self) -> Option<Bytes> {
        self.refresh();
        match self.tail.read(&mut self.buf) {
            Ok(Chunk::Data(n)) => {
                self.last_newline = self.buf[n - 1] == b'\n';
                Some(Bytes::copy_from_slice(&self.buf[..n]))
            }
            Ok(Chunk::Gap(n)) => {
                let mut line = if self.last_newline { "" } else { "\n" }.to_string();
                line.push_str(&gap_marker(n));
                self.last_newline = true;
                Some(Bytes::from(line))
            }
            Ok(Chunk::Idle) | Err(_) => None,
        }
    }
}

/// Runs `step` on `r` on the blocking pool; gives `r` back with the result
/// (`None` if the pool is shutting down).
async fn blocking<R: Send + 'static>(
    mut r: Box<Reader>,
    step: fn(&mut Reader) -> R,
) -> Option<(Box<Reader>, R)> {
    tokio::task::spawn_blocking(move || {
        let out = step(&mut r);
        (r, out)
    })
    .await
    .ok()
}

/// Sends everything readable now, keeping up with rotations while the client
/// is slow to take it. `Err` when the client is gone.
async fn pump(
    mut r: Box<Reader>,
    wake: &mut Option<Wake>,
    tx: &mpsc::Sender<Bytes>,
) -> Result<Box<Reader>, ()> {
    loop {
        let (back, bytes) = blocking(r, Reader::next).await.ok_or(())?;
        r = back;
        let Some(bytes) = bytes else {
            return Ok(r);
        };
        // While the client is slow, new generations are still opened.
        let permit = loop {
            match wake {
                Some(w) => tokio::select! {
                    p = tx.reserve() => break p.map_err(|_| ())?,
                    _ = w.changed() => {
                        r = blocking(r, Reader::refresh).await.ok_or(())?.0;
                    }
                },
                None => break tx.reserve().await.map_err(|_| ())?,
            }
        };
        permit.send(bytes);
    }
}

/// The response for `c`'s log; `watcher` is the daemon's log watcher.
pub async fn response(c: Arc<Container>, follow: bool, watcher: Watcher) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let dir = c.dir.clone();
        let opened =
            tokio::task::spawn_blocking(move || Reader::open(&dir, follow.then_some(&watcher)))
                .await;
        let Ok(Ok((mut r, mut wake))) = opened else {
            return;
        };
        loop {
            r = match pump(r, &mut wake, &tx).await {
                Ok(r) => r,
                Err(()) => break,
            };
            if !follow {
                break;
            }
            if writer_done(&c) {
                // Whatever came between the last look and the end.
                let _ = pump(r, &mut wake, &tx).await;
                break;
            }
            match &mut wake {
                Some(w) => tokio::select! {
                    _ = w.changed() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = tx.closed() => break,
                },
                None => tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = tx.closed() => break,
                },
            }
        }
    });
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(ChannelBody(rx).boxed())
        .expect("valid response")
}
