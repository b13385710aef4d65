//! The client subcommands: thin wrappers over the HTTP API on the daemon's socket.

use crate::create_args::{config_from, CreateArgs};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Subcommand;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::net::UnixStream;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Create and start a container (--wait: until it exits, then exit with
    /// its exit code; --rm: remove it once it exited, implies --wait).
    Run(RunArgs),
    /// Let a created container's process run.
    Start { id: String },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List a container's processes.
    Ps {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Send a signal (default TERM) to a container's init process.
    Kill { id: String, signal: Option<String> },
    /// Remove a stopped or created container (--force: kill it first).
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show everything about a container, as JSON.
    Inspect { id: String },
    /// Block until a container stops; print and exit with its exit code.
    Wait { id: String },
    /// Print a container's output.
    Logs {
        id: String,
        #[arg(short, long)]
        follow: bool,
    },
}

/// `zctr run`: the create arguments, and whether to wait for the exit.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Answer when the container exited; print its exit code (128+signal)
    /// and exit with it. One API call (`POST /v1/containers?wait=true`).
    #[arg(long)]
    pub wait: bool,
    /// Remove the container once it exited (implies --wait). The daemon
    /// removes it even if this client is interrupted.
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// A client of the daemon's socket.
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        Self {
            socket: socket.to_path_buf(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Response<Incoming>> {
        let stream = UnixStream::connect(&self.socket).await.with_context(|| {
            format!("cannot reach the zctr daemon at {}", self.socket.display())
        })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let bytes = body
            .map(|b| serde_json::to_vec(&b))
            .transpose()?
            .unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "zctr")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))?;
        let resp = sender.send_request(req).await?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            match serde_json::from_slice::<Value>(&body) {
                Ok(v) => bail!(
                    "{} ({})",
                    v["message"].as_str().unwrap_or("error"),
                    v["code"].as_str().unwrap_or(status.as_str())
                ),
                Err(_) => bail!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
            }
        }
        Ok(resp)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let resp = self.send(method, path, body).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// Standard output was closed by its reader (`zctr inspect x | head -1`):
/// the command stops there, and `main` ends quietly with
/// [`STDOUT_CLOSED_STATUS`].
#[derive(Debug, thiserror::Error)]
#[error("standard output closed")]
pub struct StdoutClosed;

/// Exit status after [`StdoutClosed`]: 128 + SIGPIPE, what the shell shows
/// for a program killed by SIGPIPE (Rust ignores SIGPIPE, so a closed pipe
/// is a write error here, never a signal).
pub const STDOUT_CLOSED_STATUS: i32 = 128 + libc::SIGPIPE;

/// Maps a stdout write error: a closed pipe becomes [`StdoutClosed`].
fn stdout_error(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(e).context("writing to standard output")
    }
}

/// Writes to stdout, never panicking (`println!` panics on a closed pipe).
fn write_out(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(stdout_error)
}

/// `println!` that returns a closed stdout as an error instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        write_out(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}

fn print_json(v: &Value) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?)
}

/// Runs one client command; returns the process exit code.
pub async fn run(socket: &Path, cmd: Command) -> Result<i32> {
    let c = Client::new(socket);
    let p = |id: &str, what: &str| format!("/v1/containers/{id}/{what}");
    match cmd {
        Command::Create(a) | Command::Run(RunArgs { create: a, .. })
            if a.rootfs.is_none() && a.config.is_none() =>
        {
            bail!("{}: --rootfs or --config is required", a.id)
        }
        Command::Create(a) => create(&c, a, false).await?,
        Command::Run(r) if r.wait || r.rm => return run_wait(&c, r.create, r.rm).await,
        Command::Run(r) => create(&c, r.create, true).await?,
        Command::Start { id } => {
            c.call(Method::POST, &p(&id, "start"), None).await?;
        }
        Command::Pause { id } => {
            c.call(Method::POST, &p(&id, "pause"), None).await?;
        }
        Command::Resume { id } => {
            c.call(Method::POST, &p(&id, "resume"), None).await?;
        }
        Command::Kill { id, signal } => {
            let sig = signal.unwrap_or_else(|| "TERM".into());
            c.call(
                Method::POST,
                &format!("{}?signal={sig}", p(&id, "kill")),
                None,
            )
            .await?;
        }
        Command::Delete { id, force } => {
            let q = if force { "?force=true" } else { "" };
            c.call(Method::DELETE, &format!("/v1/containers/{id}{q}"), None)
                .await?;
        }
        Command::List { json } => {
            let v = c.call(Method::GET, "/v1/containers", None).await?;
            if json {
                print_json(&v)?;
            } else {
                print_list(&v)?;
            }
        }
        Command::Inspect { id } => {
            print_json(
                &c.call(Method::GET, &format!("/v1/containers/{id}"), None)
                    .await?,
            )?;
        }
        Command::Ps { id, json } => {
            let v = c.call(Method::GET, &p(&id, "ps"), None).await?;
            if json {
                print_json(&v)?;
            } else {
                print_ps(&v)?;
            }
        }
        Command::Wait { id } => {
            let v = c.call(Method::POST, &p(&id, "wait"), None).await?;
            return print_exit(&v);
        }
        Command::Logs { id, follow } => {
            let q = if follow { "?follow=true" } else { "" };
            let mut body = c
                .send(Method::GET, &format!("{}{q}", p(&id, "logs")), None)
                .await?
                .into_body();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    write_out(&data)?;
                }
            }
        }
    }
    Ok(0)
}

/// A number, or `-` when the field is null.
fn num_or_dash(v: &Value) -> String {
    v.as_i64()
        .map(|p| p.to_string())
        .unwrap_or_else(|| "-".into())
}

/// `zctr list` as a table.
fn print_list(v: &Value) -> Result<()> {
    outln!("{:<24} {:<9} {:>8} {:>5}", "ID", "STATUS", "PID", "EXIT")?;
    for x in v.as_array().into_iter().flatten() {
        outln!(
            "{:<24} {:<9} {:>8} {:>5}",
            x["id"].as_str().unwrap_or(""),
            x["status"].as_str().unwrap_or(""),
            num_or_dash(&x["pid"]),
            num_or_dash(&x["exit_code"]),
        )?;
    }
    Ok(())
}

/// `zctr ps` as a table (the user's name when the daemon could read it).
fn print_ps(v: &Value) -> Result<()> {
    outln!(
        "{:>8} {:>6} {:<10} {:<5} CMD",
        "PID",
        "NSPID",
        "USER",
        "STATE"
    )?;
    for x in v.as_array().into_iter().flatten() {
        let user = x["user"]
            .as_str()
            .map(str::to_string)
            .or_else(|| x["ns_uid"].as_u64().map(|u| u.to_string()))
            .unwrap_or_else(|| "-".into());
        let cmd: Vec<&str> = x["cmdline"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
            .collect();
        outln!(
            "{:>8} {:>6} {:<10} {:<5} {}",
            num_or_dash(&x["pid"]),
            num_or_dash(&x["ns_pid"]),
            user,
            x["state"].as_str().unwrap_or(""),
            cmd.join(" ")
        )?;
    }
    Ok(())
}

async fn create(c: &Client, a: CreateArgs, start: bool) -> Result<()> {
    let body = json!({"id": a.id, "config": config_from(&a)?});
    let path = if start {
        "/v1/containers?start=true"
    } else {
        "/v1/containers"
    };
    let v = c.call(Method::POST, path, Some(body)).await?;
    if a.json {
        print_json(&v)?;
    } else {
        outln!("{}", v["id"].as_str().unwrap_or(""))?;
    }
    Ok(())
}

/// Prints a wait answer's exit code (with the stop reason, if any) and
/// returns it.
fn print_exit(v: &Value) -> Result<i32> {
    let code = v["exit"]["exit_code"].as_i64().unwrap_or(255) as i32;
    match v["stop_reason"].as_str() {
        Some(r) => outln!("{code} ({r})")?,
        None => outln!("{code}")?,
    }
    Ok(code)
}

/// `zctr run --wait [--rm]`: one call that answers at the exit.
async fn run_wait(c: &Client, a: CreateArgs, rm: bool) -> Result<i32> {
    let body = json!({"id": a.id, "config": config_from(&a)?});
    let path = if rm {
        "/v1/containers?wait=true&rm=true"
    } else {
        "/v1/containers?wait=true"
    };
    print_exit(&c.call(Method::POST, path, Some(body)).await?)
}
