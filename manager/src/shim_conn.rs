//! Async frames on a shim's control socket: the end of the socketpair handed
//! to a fresh shim, or a new connection to `<state-dir>/shim.sock` after a
//! daemon restart.

use common::layout::SOCKET_FILE;
use common::protocol::{encode_frame_vec, FrameBuffer, FrameError, ManagerMsg, ShimMsg};
use std::io;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ShimConnError {
    #[error("connecting to shim socket {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },
    #[error("shim connection: {0}")]
    Io(#[from] io::Error),
    #[error("shim connection: {0}")]
    Frame(#[from] FrameError),
}

/// Reads whole frames from a shim.
#[derive(Debug)]
pub struct ShimReader {
    half: OwnedReadHalf,
    buf: FrameBuffer,
}

impl ShimReader {
    /// The next message; `Ok(None)` when the shim closed the connection.
    pub async fn next(&mut self) -> Result<Option<ShimMsg>, ShimConnError> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(msg) = self.buf.next_frame::<ShimMsg>()? {
                return Ok(Some(msg));
            }
            let n = self.half.read(&mut chunk).await?;
            if n == 0 {
                if self.buf.pending() > 0 {
                    return Err(ShimConnError::Frame(FrameError::Truncated {
                        needed: common::protocol::HEADER_LEN,
                        got: self.buf.pending(),
                    }));
                }
                return Ok(None);
            }
            self.buf.extend(&chunk[..n]);
        }
    }
}

/// Writes frames to a shim.
#[derive(Debug)]
pub struct ShimWriter {
    half: OwnedWriteHalf,
}

impl ShimWriter {
    pub async fn send(&mut self, msg: &ManagerMsg) -> Result<(), ShimConnError> {
        let bytes = encode_frame_vec(msg)?;
        self.half.write_all(&bytes).await?;
        Ok(())
    }
}

/// Splits a connected stream into its reading and writing sides.
pub fn split(stream: UnixStream) -> (ShimReader, ShimWriter) {
    let (r, w) = stream.into_split();
    (
        ShimReader {
            half: r,
            buf: FrameBuffer::new(),
        },
        ShimWriter { half: w },
    )
}

/// Connects to the listening socket of the shim whose state dir is `state_dir`.
pub async fn connect(state_dir: &Path) -> Result<UnixStream, ShimConnError> {
    let path = state_dir.join(SOCKET_FILE);
    UnixStream::connect(&path)
        .await
        .map_err(|source| ShimConnError::Connect { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::protocol::{ShimState, MAX_FRAME};

    #[tokio::test]
    async fn frames_cross_a_socketpair_in_pieces() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut reader, _w) = split(a);
        let (_r, mut b_w) = b.into_split();
        let hello = encode_frame_vec(&ShimMsg::Hello {
            shim_pid: 1,
            init_pid: 2,
            state: ShimState::Created,
        })
        .unwrap();
        let created = encode_frame_vec(&ShimMsg::Created { pid: 2 }).unwrap();
        let mut all = hello.clone();
        all.extend(&created);
        assert!(all.len() < MAX_FRAME);
        let task = tokio::spawn(async move {
            for b in all {
                b_w.write_all(&[b]).await.unwrap();
            }
        });
        assert!(matches!(
            reader.next().await.unwrap(),
            Some(ShimMsg::Hello { init_pid: 2, .. })
        ));
        assert_eq!(
            reader.next().await.unwrap(),
            Some(ShimMsg::Created { pid: 2 })
        );
        task.await.unwrap();
        assert_eq!(reader.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn writer_sends_whole_frames_and_garbage_is_an_error() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut reader, mut w) = split(a);
        w.send(&ManagerMsg::Kill { signal: 15 }).await.unwrap();
        let (mut b_r, mut b_w) = b.into_split();
        let mut got = [0u8; 12];
        b_r.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [b'Z', b'C', b'T', b'R', 1, 0, 2, 0, 0, 0, 1, 30]);
        b_w.write_all(b"garbage-garbage").await.unwrap();
        assert!(reader.next().await.is_err());
    }
}
