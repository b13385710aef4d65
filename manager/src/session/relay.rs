//! One upgraded API connection (`exec`, `attach`) relayed to a connection of
//! its own to the container's monitor, in the same bincode frames
//! (docs/protocol.md, "Sessions"):
//!
//! - monitor → client: the session's `Output`, its `ExecExited` (an exec
//!   ends there), `CommandFailed`, and for an attach to the container's own
//!   process its `Exited` (the attach ends there); nothing else;
//! - client → monitor: `Input`, `CloseInput`, `Resize` only, their session
//!   forced to the relayed one; any other frame is answered with
//!   `CommandFailed` (`EPERM`) and not sent on.
//!
//! Nothing is buffered beyond one frame each way: while the client does not
//! read, the monitor's connection is not read either (the monitor sends a
//! session's output to the log when a connection cannot take it), and while
//! the monitor does not read, the client's input waits in its socket.
//!
//! An attach ends when the monitor's connection ends after the container's
//! `Exited` (its last output relayed first), or [`DRAIN_WAIT`] after it.
//! When the monitor's connection ends first (the container stopped and its
//! monitor exited), the end is taken from `status.json` and sent.

use crate::shim_conn::{self, ShimReader};
use crate::store;
use common::layout::STATUS_FILE;
use common::protocol::{
    encode_frame_vec, FrameBuffer, ManagerMsg, ShimMsg, INIT_SESSION, MAX_FRAME,
};
use common::state::ShimStatus;
use std::path::PathBuf;
use std::time::Duration;

/// How long after the container's `Exited` its last output may still come
/// (the monitor drains for [`common::state::LOG_DRAIN_MS`]), before the
/// attach ends anyway; the monitor's connection ending ends it sooner.
const DRAIN_WAIT: Duration = Duration::from_millis(common::state::LOG_DRAIN_MS + 500);
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What is relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An exec'd process: ends with its `ExecExited`.
    Exec,
    /// The container's own process: ends with the container's `Exited`.
    Attach,
}

/// What to do with one frame from the monitor.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Forward {
    Skip,
    Send,
    SendAndEnd,
}

pub(crate) fn forward(msg: &ShimMsg, session: u32, mode: Mode) -> Forward {
    match msg {
        ShimMsg::Output { session: s, .. } if *s == session => Forward::Send,
        ShimMsg::ExecExited { session: s, .. } if *s == session && mode == Mode::Exec => {
            Forward::SendAndEnd
        }
        ShimMsg::Exited { .. } if mode == Mode::Attach => Forward::SendAndEnd,
        ShimMsg::CommandFailed { .. } => Forward::Send,
        _ => Forward::Skip,
    }
}

/// A client's frame as it goes to the monitor (its session forced), or
/// `None`: not a kind a client may send.
pub(crate) fn rewrite(msg: ManagerMsg, session: u32) -> Option<ManagerMsg> {
    match msg {
        ManagerMsg::Input { data, .. } => Some(ManagerMsg::Input { session, data }),
        ManagerMsg::CloseInput { .. } => Some(ManagerMsg::CloseInput { session }),
        ManagerMsg::Resize { rows, cols, .. } => Some(ManagerMsg::Resize {
            session,
            rows,
            cols,
        }),
        _ => None,
    }
}

/// The end of `session` as `status.json` keeps it, as a frame.
fn end_from_status(dir: &std::path::Path, session: u32, mode: Mode) -> Option<ShimMsg> {
    let s: ShimStatus = store::read_json(&dir.join(STATUS_FILE)).ok()?;
    match mode {
        Mode::Attach => s.exit.map(|e| ShimMsg::Exited {
            status: e.status(),
            oom_killed: e.oom_killed,
            at_ms: e.at_ms,
        }),
        Mode::Exec => s.execs.iter().find(|x| x.session == session).and_then(|x| {
            x.exit.map(|e| ShimMsg::ExecExited {
                session,
                pid: x.pid,
                status: e.status(),
                at_ms: e.at_ms,
            })
        }),
    }
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, msg: &ShimMsg) -> bool {
    match encode_frame_vec(msg) {
        Ok(bytes) => w.write_all(&bytes).await.is_ok() && w.flush().await.is_ok(),
        Err(_) => false,
    }
}

/// Relays until the session ends or either side hangs up. `first` (the
/// `ExecStarted` or `Attached` already read) is sent first.
pub async fn run<C>(
    client: C,
    shim: (ShimReader, shim_conn::ShimWriter),
    first: ShimMsg,
    session: u32,
    mode: Mode,
    state_dir: PathBuf,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = shim;
    if !send(&mut cw, &first).await {
        return;
    }
    let mut inbuf = FrameBuffer::new();
    let mut chunk = vec![0u8; MAX_FRAME];
    // The container's `Exited`, held back while its last output drains.
    let mut held: Option<ShimMsg> = None;
    let drained = tokio::time::sleep(Duration::from_secs(365 * 86400));
    tokio::pin!(drained);
    // The client closed its sending half (its input ended): it still gets
    // the session's output and its end.
    let mut client_done = false;
    // The monitor takes no more input (its container ended): what the client
    // sends is read and dropped, and the monitor's last frames still come.
    let mut takes_input = true;
    loop {
        tokio::select! {
            msg = sr.next() => match msg {
                Ok(Some(m)) => match forward(&m, session, mode) {
                    Forward::Skip => {}
                    Forward::Send => if !send(&mut cw, &m).await { return },
                    // The monitor tells the init's exit before it copied the
                    // init's last output (it drains for up to LOG_DRAIN_MS):
                    // that output comes first, then the exit.
                    Forward::SendAndEnd if mode == Mode::Attach => {
                        held = Some(m);
                        drained.as_mut().reset(tokio::time::Instant::now() + DRAIN_WAIT);
                    }
                    Forward::SendAndEnd => {
                        send(&mut cw, &m).await;
                        let _ = cw.shutdown().await;
                        return;
                    }
                },
                Ok(None) | Err(_) => {
                    let end = match held.take() {
                        Some(m) => Some(m),
                        None => {
                            let dir = state_dir.clone();
                            tokio::task::spawn_blocking(move || end_from_status(&dir, session, mode))
                                .await
                                .ok()
                                .flatten()
                        }
                    };
                    if let Some(end) = end {
                        send(&mut cw, &end).await;
                    }
                    let _ = cw.shutdown().await;
                    return;
                }
            },
            () = &mut drained, if held.is_some() => {
                if let Some(m) = held.take() {
                    send(&mut cw, &m).await;
                }
                let _ = cw.shutdown().await;
                return;
            }
            n = cr.read(&mut chunk), if !client_done => {
                let n = match n {
                    Ok(0) => {
                        client_done = true;
                        continue;
                    }
                    Err(_) => return,
                    Ok(n) => n,
                };
                inbuf.extend(&chunk[..n]);
                loop {
                    match inbuf.next_frame::<ManagerMsg>() {
                        Ok(None) => break,
                        Ok(Some(m)) => match rewrite(m, session) {
                            Some(m) => if takes_input && sw.send(&m).await.is_err() {
                                takes_input = false;
                            },
                            None => {
                                let refused = ShimMsg::CommandFailed {
                                    errno: libc::EPERM,
                                    message: "only Input, CloseInput and Resize may be sent on a session".into(),
                                };
                                if !send(&mut cw, &refused).await { return }
                            }
                        },
                        Err(e) => {
                            let bad = ShimMsg::CommandFailed {
                                errno: libc::EPROTO,
                                message: format!("malformed frame: {e}"),
                            };
                            send(&mut cw, &bad).await;
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// The session an attach relays.
pub const ATTACH_SESSION: u32 = INIT_SESSION;

#[cfg(test)]
mod tests {
    use super::*;
    use common::protocol::{decode_frame, ExitStatus, Stream};
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixStream;

    #[test]
    fn only_the_sessions_frames_go_to_the_client() {
        let out = |s| ShimMsg::Output {
            session: s,
            stream: Stream::Stdout,
            data: vec![1],
        };
        let exited = |s| ShimMsg::ExecExited {
            session: s,
            pid: 1,
            status: ExitStatus::Code(0),
            at_ms: 0,
        };
        let init_exit = ShimMsg::Exited {
            status: ExitStatus::Code(3),
            oom_killed: false,
            at_ms: 0,
        };
        assert_eq!(forward(&out(2), 2, Mode::Exec), Forward::Send);
        assert_eq!(forward(&out(3), 2, Mode::Exec), Forward::Skip);
        assert_eq!(forward(&exited(2), 2, Mode::Exec), Forward::SendAndEnd);
        assert_eq!(forward(&exited(3), 2, Mode::Exec), Forward::Skip);
        assert_eq!(forward(&exited(1), 0, Mode::Attach), Forward::Skip);
        assert_eq!(forward(&init_exit, 0, Mode::Attach), Forward::SendAndEnd);
        assert_eq!(forward(&init_exit, 2, Mode::Exec), Forward::Skip);
        assert_eq!(forward(&ShimMsg::Started, 0, Mode::Attach), Forward::Skip);
    }

    #[test]
    fn client_frames_get_the_session_forced_and_others_are_refused() {
        assert_eq!(
            rewrite(
                ManagerMsg::Input {
                    session: 9,
                    data: b"x".to_vec()
                },
                2
            ),
            Some(ManagerMsg::Input {
                session: 2,
                data: b"x".to_vec()
            })
        );
        assert_eq!(
            rewrite(ManagerMsg::CloseInput { session: 0 }, 2),
            Some(ManagerMsg::CloseInput { session: 2 })
        );
        assert_eq!(
            rewrite(
                ManagerMsg::Resize {
                    session: 7,
                    rows: 1,
                    cols: 2
                },
                2
            ),
            Some(ManagerMsg::Resize {
                session: 2,
                rows: 1,
                cols: 2
            })
        );
        assert_eq!(rewrite(ManagerMsg::Kill { signal: 9 }, 2), None);
        assert_eq!(rewrite(ManagerMsg::Start, 2), None);
        assert_eq!(rewrite(ManagerMsg::Attach { session: 0 }, 2), None);
    }

    /// A fake monitor and a fake client on socketpairs: input is rewritten,
    /// a refused frame is answered, output flows, `ExecExited` ends it.
    #[tokio::test]
    async fn frames_cross_both_ways() {
        let (client, mut client_peer) = UnixStream::pair().unwrap();
        let (shim, shim_peer) = UnixStream::pair().unwrap();
        let dir = std::env::temp_dir();
        let task = tokio::spawn(run(
            client,
            shim_conn::split(shim),
            ShimMsg::ExecStarted {
                session: 4,
                pid: 10,
            },
            4,
            Mode::Exec,
            dir,
        ));
        let (mut mon_r, mut mon_w) = shim_peer.into_split();
        let mut got = Vec::new();
        let read_client = async |peer: &mut UnixStream, got: &mut Vec<u8>| -> ShimMsg {
            loop {
                if let Ok((m, used)) = decode_frame::<ShimMsg>(got) {
                    got.drain(..used);
                    return m;
                }
                let mut b = [0u8; 4096];
                let n = peer.read(&mut b).await.unwrap();
                assert!(n > 0, "client side closed early");
                got.extend_from_slice(&b[..n]);
            }
        };
        assert_eq!(
            read_client(&mut client_peer, &mut got).await,
            ShimMsg::ExecStarted {
                session: 4,
                pid: 10
            }
        );
        client_peer
            .write_all(
                &encode_frame_vec(&ManagerMsg::Input {
                    session: 0,
                    data: b"hi".to_vec(),
                })
                .unwrap(),
            )
            .await
            .unwrap();
        client_peer
            .write_all(&encode_frame_vec(&ManagerMsg::Kill { signal: 9 }).unwrap())
            .await
            .unwrap();
        let mut fb = Vec::new();
        let m = loop {
            if let Ok((m, _)) = decode_frame::<ManagerMsg>(&fb) {
                break m;
            }
            let mut b = [0u8; 4096];
            let n = mon_r.read(&mut b).await.unwrap();
            fb.extend_from_slice(&b[..n]);
        };
        assert_eq!(
            m,
            ManagerMsg::Input {
                session: 4,
                data: b"hi".to_vec()
            }
        );
        assert!(matches!(
            read_client(&mut client_peer, &mut got).await,
            ShimMsg::CommandFailed { errno, .. } if errno == libc::EPERM
        ));
        for m in [
            ShimMsg::Output {
                session: 5,
                stream: Stream::Stdout,
                data: b"other".to_vec(),
            },
            ShimMsg::Output {
                session: 4,
                stream: Stream::Stderr,
                data: b"mine".to_vec(),
            },
            ShimMsg::ExecExited {
                session: 4,
                pid: 10,
                status: ExitStatus::Code(7),
                at_ms: 1,
            },
        ] {
            mon_w
                .write_all(&encode_frame_vec(&m).unwrap())
                .await
                .unwrap();
        }
        assert_eq!(
            read_client(&mut client_peer, &mut got).await,
            ShimMsg::Output {
                session: 4,
                stream: Stream::Stderr,
                data: b"mine".to_vec(),
            }
        );
        assert!(matches!(
            read_client(&mut client_peer, &mut got).await,
            ShimMsg::ExecExited {
                status: ExitStatus::Code(7),
                ..
            }
        ));
        task.await.unwrap();
        let mut rest = Vec::new();
        client_peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    /// The monitor no longer reads (its container ended: it shut its
    /// socket's reading side) when the client closes its input: the client
    /// still gets the last output and the exit (a regression: the relay
    /// used to end there, and the client said it lost the daemon).
    #[tokio::test]
    async fn input_the_monitor_cannot_take_does_not_cost_the_client_its_end() {
        let (client, mut client_peer) = UnixStream::pair().unwrap();
        let (shim, shim_peer) = UnixStream::pair().unwrap();
        let task = tokio::spawn(run(
            client,
            shim_conn::split(shim),
            ShimMsg::ExecStarted { session: 1, pid: 9 },
            1,
            Mode::Exec,
            std::env::temp_dir(),
        ));
        let std_peer = shim_peer.into_std().unwrap();
        std_peer.shutdown(std::net::Shutdown::Read).unwrap();
        let mut shim_peer = UnixStream::from_std(std_peer).unwrap();
        // Several writes: one of them meets the closed side (EPIPE).
        for _ in 0..4 {
            client_peer
                .write_all(&encode_frame_vec(&ManagerMsg::CloseInput { session: 1 }).unwrap())
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for m in [
            ShimMsg::Output {
                session: 1,
                stream: Stream::Stdout,
                data: b"last".to_vec(),
            },
            ShimMsg::ExecExited {
                session: 1,
                pid: 9,
                status: ExitStatus::Code(4),
                at_ms: 1,
            },
        ] {
            shim_peer
                .write_all(&encode_frame_vec(&m).unwrap())
                .await
                .unwrap();
        }
        drop(shim_peer);
        task.await.unwrap();
        let mut all = Vec::new();
        client_peer.read_to_end(&mut all).await.unwrap();
        let mut msgs = Vec::new();
        let mut at = 0;
        while at < all.len() {
            let (m, used) = decode_frame::<ShimMsg>(&all[at..]).unwrap();
            msgs.push(m);
            at += used;
        }
        assert!(
            matches!(
                msgs.last(),
                Some(ShimMsg::ExecExited {
                    status: ExitStatus::Code(4),
                    ..
                })
            ),
            "{msgs:?}"
        );
    }
}
