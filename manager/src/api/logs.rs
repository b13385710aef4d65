//! `GET /v1/containers/{id}/logs[?follow=true]`: the shim's log files
//! (`container.log.1` then `container.log`), and with `follow` everything
//! written after, across rotations, until the shim has stopped writing (the
//! container stopped and its shim exited, or its output drain is over) or the
//! client goes away. Output lost to rotation before this follower could read
//! it is replaced by one marker line ([`crate::logtail::gap_marker`]); see
//! `crate::logtail` for how it keeps up.

use super::logwatch::Watch;
use super::Body;
use crate::container::Container;
use crate::logtail::{self, gap_marker, Chunk, LogTail};
use crate::model::{now_ms, Status};
use bytes::Bytes;
use common::state::LOG_DRAIN_MS;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::Response;
use std::convert::Infallible;
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
struct ChannelBody(mpsc::Receiver<Bytes>);

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

/// Sends everything readable now, keeping up with rotations while the client
/// is slow to take it. `Err` when the client is gone.
async fn pump(
    tail: &mut LogTail,
    watch: Option<&Watch>,
    tx: &mpsc::Sender<Bytes>,
    buf: &mut [u8],
    last_newline: &mut bool,
) -> Result<(), ()> {
    let inotify = watch.map(Watch::inotify);
    loop {
        let _ = tail.refresh(inotify);
        let bytes = match tail.read(buf) {
            Ok(Chunk::Data(n)) => {
                *last_newline = buf[n - 1] == b'\n';
                Bytes::copy_from_slice(&buf[..n])
            }
            Ok(Chunk::Gap(n)) => {
                let mut line = if *last_newline { "" } else { "\n" }.to_string();
                line.push_str(&gap_marker(n));
                *last_newline = true;
                Bytes::from(line)
            }
            Ok(Chunk::Idle) | Err(_) => return Ok(()),
        };
        // While the client is slow, new generations are still opened.
        let permit = loop {
            match watch {
                Some(w) => tokio::select! {
                    p = tx.reserve() => break p.map_err(|_| ())?,
                    _ = w.wait(|i| { let _ = tail.refresh(Some(i)); }) => {}
                },
                None => break tx.reserve().await.map_err(|_| ())?,
            }
        };
        permit.send(bytes);
    }
}

pub async fn response(c: Arc<Container>, follow: bool) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        // The watch first: nothing the shim does after the first look is missed.
        let watch = if follow {
            logtail::watch(&c.dir).and_then(Watch::register)
        } else {
            None
        };
        let Ok(mut tail) = LogTail::open(&c.dir, watch.as_ref().map(Watch::inotify)) else {
            return;
        };
        let mut buf = vec![0u8; CHUNK];
        let mut last_newline = true;
        loop {
            if pump(&mut tail, watch.as_ref(), &tx, &mut buf, &mut last_newline)
                .await
                .is_err()
                || !follow
            {
                break;
            }
            if writer_done(&c) {
                // Whatever came between the last look and the end.
                let _ = pump(&mut tail, watch.as_ref(), &tx, &mut buf, &mut last_newline).await;
                break;
            }
            match &watch {
                Some(w) => tokio::select! {
                    _ = w.wait(|i| { let _ = tail.refresh(Some(i)); }) => {}
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
