//! The client side of a session (`zctr exec`, `zctr attach`, `zctr run
//! -a`): the upgraded connection's frames to the local stdout and stderr,
//! stdin to `Input` frames (from a thread of its own: a blocked read of a
//! terminal must never hold the process at its exit), `Resize` at the start
//! and on every `SIGWINCH`, the detach keys, and how it ended.

use super::keys::Scanner;
use super::term;
use anyhow::{Context, Result};
use bytes::Bytes;
use common::protocol::{
    encode_frame_vec, FrameBuffer, ManagerMsg, ShimMsg, Stream, INIT_SESSION, MAX_CHUNK, MAX_FRAME,
};
use http_body_util::Full;
use hyper::header::{CONNECTION, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// The exit status of a client that lost its daemon connection mid-session
/// (the process goes on): 125, as docker uses for its own failures.
pub const LOST_STATUS: i32 = 125;

/// Opens a session: `POST path` with `body`, answered `101` and upgraded.
pub async fn open(socket: &Path, path: &str, body: Option<Value>) -> Result<TokioIo<Upgraded>> {
    let stream = UnixStream::connect(socket)
        .await
        .with_context(|| format!("cannot reach the zctr daemon at {}", socket.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let bytes = body
        .map(|b| serde_json::to_vec(&b))
        .transpose()?
        .unwrap_or_default();
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("host", "zctr")
        .header("content-type", "application/json")
        .header(CONNECTION, "upgrade")
        .header(UPGRADE, "zctr-frames")
        .body(Full::new(Bytes::from(bytes)))?;
    let resp = sender.send_request(req).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(crate::cli::api_error(resp).await);
    }
    Ok(TokioIo::new(hyper::upgrade::on(resp).await?))
}

/// How a session is driven.
#[derive(Debug, Default)]
pub struct Options {
    /// Forward stdin as `Input` (then `CloseInput` at its end).
    pub stdin: bool,
    /// The session is a terminal: raw mode for a local terminal, and its
    /// size sent at the start and on `SIGWINCH`. `None`: as the monitor's
    /// `Attached` says.
    pub tty: Option<bool>,
    /// Detach when these bytes are typed (attach only).
    pub detach_keys: Option<Vec<u8>>,
    /// Forward SIGINT and SIGTERM to container `id` through the kill API
    /// (`run -a` without a terminal).
    pub forward_signals: Option<(std::path::PathBuf, String)>,
}

/// How a session ended for this client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The process ended: its status in the shell's convention.
    Exit(i32),
    /// The detach keys were typed; the process goes on.
    Detached,
    /// The daemon's connection ended first; the process goes on.
    Lost,
    /// This client got SIGTERM or SIGHUP (not forwarded): it leaves, its
    /// terminal restored; the process goes on.
    Killed(i32),
}

enum Local {
    Input(Vec<u8>),
    Eof,
    Detach,
}

/// Reads stdin on a thread of its own into `tx` (see the module's doc).
fn stdin_thread(tx: mpsc::Sender<Local>, mut scanner: Option<Scanner>) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; MAX_CHUNK];
        let mut stdin = std::io::stdin().lock();
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(Local::Eof);
                    return;
                }
                Ok(n) => n,
            };
            let (data, detach) = match scanner.as_mut() {
                Some(s) => s.feed(&buf[..n]),
                None => (buf[..n].to_vec(), false),
            };
            if !data.is_empty() && tx.blocking_send(Local::Input(data)).is_err() {
                return;
            }
            if detach {
                let _ = tx.blocking_send(Local::Detach);
                return;
            }
        }
    });
}

fn write_local(stream: Stream, data: &[u8]) {
    // A closed stdout or stderr costs the output, never the session.
    let _ = match stream {
        Stream::Stdout => {
            let mut o = std::io::stdout().lock();
            o.write_all(data).and_then(|()| o.flush())
        }
        Stream::Stderr => {
            let mut e = std::io::stderr().lock();
            e.write_all(data).and_then(|()| e.flush())
        }
    };
}

async fn kill(socket: &Path, id: &str, sig: &str) {
    let c = crate::cli::Client::new(socket);
    let path = format!("/v1/containers/{id}/kill?signal={sig}");
    if let Err(e) = c.call(Method::POST, &path, None).await {
        eprintln!("zctr: forwarding SIG{sig} to {id}: {e:#}");
    }
}

/// The name of the next forwarded signal (never, when none is caught).
async fn next_signal(
    int: &mut Option<tokio::signal::unix::Signal>,
    term: &mut Option<tokio::signal::unix::Signal>,
) -> Option<&'static str> {
    match (int, term) {
        (Some(i), Some(t)) => tokio::select! {
            _ = i.recv() => Some("INT"),
            _ = t.recv() => Some("TERM"),
        },
        _ => std::future::pending().await,
    }
}

/// Drives a session on `io` until it ends.
pub async fn drive(io: TokioIo<Upgraded>, opts: Options) -> Result<End> {
    let (mut rd, mut wr) = tokio::io::split(io);
    let (to_daemon, mut out_rx) = mpsc::channel::<ManagerMsg>(8);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            let Ok(bytes) = encode_frame_vec(&m) else {
                continue;
            };
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut frames = FrameBuffer::new();
    let mut chunk = vec![0u8; MAX_FRAME];
    let mut local_rx: Option<mpsc::Receiver<Local>> = None;
    let mut raw: Option<term::RawMode> = None;
    let mut winch = signal(SignalKind::window_change())?;
    // Only caught when forwarded: otherwise they end this client as usual.
    let forwarding = opts.forward_signals.is_some();
    let mut sigint = forwarding
        .then(|| signal(SignalKind::interrupt()))
        .transpose()?;
    let mut sigterm = forwarding
        .then(|| signal(SignalKind::terminate()))
        .transpose()?;
    // Caught so that the terminal is restored on the way out.
    let mut sighup = signal(SignalKind::hangup())?;
    let mut own_term = (!forwarding)
        .then(|| signal(SignalKind::terminate()))
        .transpose()?;
    let mut started = false;
    let mut input_refused = false;
    let end = loop {
        tokio::select! {
            n = rd.read(&mut chunk) => {
                let n = match n {
                    Ok(0) | Err(_) => break End::Lost,
                    Ok(n) => n,
                };
                frames.extend(&chunk[..n]);
                let mut ended = None;
                while let Some(m) = frames.next_frame::<ShimMsg>().context("a frame from the daemon")? {
                    match m {
                        ShimMsg::ExecStarted { .. } | ShimMsg::Attached { .. } if !started => {
                            started = true;
                            let tty = match (&m, opts.tty) {
                                (_, Some(t)) => t,
                                (ShimMsg::Attached { tty, .. }, None) => *tty,
                                _ => false,
                            };
                            if tty && opts.stdin {
                                raw = term::RawMode::enter().context("raw mode for the terminal")?;
                            }
                            if tty {
                                if let Some((rows, cols)) = term::size() {
                                    let _ = to_daemon.send(ManagerMsg::Resize { session: INIT_SESSION, rows, cols }).await;
                                }
                            }
                            if opts.stdin {
                                let (tx, rx) = mpsc::channel(4);
                                stdin_thread(tx, opts.detach_keys.clone().map(Scanner::new));
                                local_rx = Some(rx);
                            }
                        }
                        ShimMsg::Output { stream, data, .. } => write_local(stream, &data),
                        ShimMsg::ExecExited { status, .. } | ShimMsg::Exited { status, .. } => {
                            ended = Some(End::Exit(status.code()));
                            break;
                        }
                        ShimMsg::CommandFailed { message, .. } => {
                            // Input the session cannot take: said once, then stdin is dropped.
                            if !input_refused {
                                drop(raw.take());
                                eprintln!("zctr: {message}");
                            }
                            input_refused = true;
                        }
                        _ => {}
                    }
                }
                if let Some(e) = ended {
                    break e;
                }
            }
            local = async { match local_rx.as_mut() { Some(rx) => rx.recv().await, None => std::future::pending().await } } => {
                match local {
                    Some(Local::Input(data)) if !input_refused => {
                        let _ = to_daemon.send(ManagerMsg::Input { session: INIT_SESSION, data }).await;
                    }
                    Some(Local::Input(_)) => {}
                    Some(Local::Eof) | None => {
                        local_rx = None;
                        if !input_refused {
                            let _ = to_daemon.send(ManagerMsg::CloseInput { session: INIT_SESSION }).await;
                        }
                    }
                    Some(Local::Detach) => break End::Detached,
                }
            }
            _ = winch.recv() => {
                if raw.is_some() || opts.tty == Some(true) {
                    if let Some((rows, cols)) = term::size() {
                        let _ = to_daemon.send(ManagerMsg::Resize { session: INIT_SESSION, rows, cols }).await;
                    }
                }
            }
            _ = sighup.recv() => break End::Killed(libc::SIGHUP),
            _ = async { match own_term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {
                break End::Killed(libc::SIGTERM)
            }
            Some(sig) = next_signal(&mut sigint, &mut sigterm) => {
                if let Some((socket, id)) = &opts.forward_signals {
                    kill(socket, id, sig).await;
                }
            }
        }
    };
    drop(raw);
    drop(to_daemon);
    writer.abort();
    Ok(end)
}

/// The exit status for `end`, with the one line a lost connection or a
/// detach is worth.
pub fn status(end: End, what: &str) -> i32 {
    match end {
        End::Exit(code) => code,
        End::Detached => {
            eprintln!("zctr: detached from {what}; it goes on");
            0
        }
        End::Killed(sig) => 128 + sig,
        End::Lost => {
            eprintln!("zctr: lost the connection to the daemon; {what} goes on (its output goes to the container's log)");
            LOST_STATUS
        }
    }
}
