//! `GET /v1/containers/{id}/logs[?follow=true]`: the shim's log files
//! (`container.log.1` then `container.log`), and with `follow` everything
//! written after, across rotations, until the container stopped and the
//! file is drained or the client goes away.

use super::Body;
use crate::container::Container;
use crate::model::Status;
use bytes::Bytes;
use common::state::{LOG_FILE, LOG_FILE_OLD};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::Response;
use std::convert::Infallible;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

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

fn read_rest(f: &mut File) -> Vec<u8> {
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    buf
}

fn inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

pub async fn response(c: Arc<Container>, follow: bool) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let dir = c.dir.clone();
    tokio::spawn(async move {
        let old = std::fs::read(dir.join(LOG_FILE_OLD)).unwrap_or_default();
        if !old.is_empty() && tx.send(Bytes::from(old)).await.is_err() {
            return;
        }
        let path = dir.join(LOG_FILE);
        let mut file = File::open(&path).ok();
        loop {
            if let Some(f) = file.as_mut() {
                let chunk = read_rest(f);
                if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
            }
            if !follow {
                return;
            }
            // Rotated (or created): drain the old handle above, then switch.
            let current = file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map(|m| m.ino());
            let on_disk = inode(&path);
            if on_disk.is_some() && on_disk != current {
                if let Some(f) = file.as_mut() {
                    let chunk = read_rest(f);
                    if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                        return;
                    }
                }
                file = File::open(&path).ok();
                continue;
            }
            if c.status() == Status::Stopped {
                let shim_gone = c
                    .record()
                    .shim
                    .map(|p| !crate::procfs::is_alive(&p))
                    .unwrap_or(true);
                if shim_gone {
                    if let Some(f) = file.as_mut() {
                        let chunk = read_rest(f);
                        if !chunk.is_empty() {
                            let _ = tx.send(Bytes::from(chunk)).await;
                        }
                    }
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Response::builder()
        .header("content-type", "application/octet-stream")
        .body(ChannelBody(rx).boxed())
        .expect("valid response")
}
