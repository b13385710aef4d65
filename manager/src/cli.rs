//! The client subcommands: thin wrappers over the HTTP API on the daemon's socket.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::net::UnixStream;

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Container id: letters, digits, '_', '.', '-' (at most 64).
    pub id: String,
    /// Root filesystem directory.
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
    /// Image meta file (args, env, exposed ports, ...).
    #[arg(long)]
    pub meta: Option<PathBuf>,
    /// A JSON container config to start from (flags override its fields).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Volume SOURCE:DEST[:OPTS], OPTS a comma list of ro and idmap (repeatable).
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Privilege profile: unprivileged or privileged.
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// Network: private, host, or the path of a network namespace to join.
    #[arg(long)]
    pub network: Option<String>,
    /// CPU limit in CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory limit in bytes.
    #[arg(long)]
    pub memory: Option<u64>,
    /// Limit on the number of processes.
    #[arg(long)]
    pub pids: Option<i64>,
    /// Security option (repeatable): seccomp=default, seccomp=unconfined, or
    /// seccomp=PATH of an OCI linux.seccomp JSON profile (read here, by the
    /// client, and sent inline).
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Print the whole container as JSON.
    #[arg(long)]
    pub json: bool,
    /// Command and arguments (after `--`); default: the meta's args.
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Create and start a container.
    Run(CreateArgs),
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

fn config_from(a: &CreateArgs) -> Result<Value> {
    let mut cfg: Value = match &a.config {
        Some(p) => serde_json::from_slice(
            &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        )
        .with_context(|| format!("{} is not JSON", p.display()))?,
        None => json!({}),
    };
    let obj = cfg
        .as_object_mut()
        .context("the --config file must hold a JSON object")?;
    if let Some(r) = &a.rootfs {
        obj.insert("rootfs".into(), json!(absolute(r)?));
    }
    if let Some(m) = &a.meta {
        obj.insert("meta".into(), json!(absolute(m)?));
    }
    if !a.env.is_empty() {
        let env = obj.entry("env").or_insert_with(|| json!({}));
        for kv in &a.env {
            let (k, v) = kv.split_once('=').context("--env takes KEY=VALUE")?;
            env[k] = json!(v);
        }
    }
    if !a.volume.is_empty() {
        let vols = obj.entry("volumes").or_insert_with(|| json!([]));
        for v in &a.volume {
            let usage = "--volume takes SOURCE:DEST[:OPTS], OPTS a comma list of ro and idmap";
            let parts: Vec<&str> = v.split(':').collect();
            let (src, dst, opts) = match parts.as_slice() {
                [s, d] => (*s, *d, ""),
                [s, d, o] => (*s, *d, *o),
                _ => bail!("{usage}"),
            };
            let (mut ro, mut idmap) = (false, false);
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                match o {
                    "ro" => ro = true,
                    "idmap" => idmap = true,
                    _ => bail!("{usage}: unknown option {o:?}"),
                }
            }
            vols.as_array_mut()
                .context("volumes must be a list")?
                .push(json!({
                    "source": absolute(Path::new(src))?,
                    "destination": dst,
                    "readonly": ro,
                    "idmap": idmap,
                }));
        }
    }
    if let Some(p) = &a.profile {
        obj.insert("profile".into(), json!(p));
    }
    if let Some(h) = &a.hostname {
        obj.insert("hostname".into(), json!(h));
    }
    if let Some(n) = &a.network {
        let net = match n.as_str() {
            "private" | "host" => json!({"mode": n}),
            path => json!({"mode": "join", "path": path}),
        };
        obj.insert("network".into(), net);
    }
    let limits = obj.entry("limits").or_insert_with(|| json!({}));
    if let Some(c) = a.cpus {
        limits["cpus"] = json!(c);
    }
    if let Some(m) = a.memory {
        limits["memory_bytes"] = json!(m);
    }
    if let Some(p) = a.pids {
        limits["pids"] = json!(p);
    }
    if !a.args.is_empty() {
        obj.insert("args".into(), json!(a.args));
    }
    for o in &a.security_opt {
        let (key, value) = o
            .split_once('=')
            .with_context(|| format!("--security-opt {o:?}: expected seccomp=VALUE"))?;
        match key {
            "seccomp" => obj.insert("seccomp".into(), seccomp_opt(value)?),
            _ => bail!("--security-opt {o:?}: unsupported option {key:?} (supported: seccomp)"),
        };
    }
    Ok(cfg)
}

/// Largest seccomp profile file the client reads.
const MAX_SECCOMP_FILE: u64 = 1 << 20;

/// `--security-opt seccomp=VALUE`: a name, or the path of a profile file the
/// client reads itself (the daemon never opens client-named paths for this),
/// through [`crate::safe_open`]: a regular file of at most
/// [`MAX_SECCOMP_FILE`] bytes, opened without side effects.
fn seccomp_opt(value: &str) -> Result<Value> {
    if value == "default" || value == "unconfined" {
        return Ok(json!(value));
    }
    let text = crate::safe_open::read_host_file(Path::new(value), MAX_SECCOMP_FILE)
        .with_context(|| format!("seccomp profile {value}"))?;
    serde_json::from_slice(&text).with_context(|| format!("seccomp profile {value} is not JSON"))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
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
        Command::Create(a) | Command::Run(a) if a.rootfs.is_none() && a.config.is_none() => {
            bail!("{}: --rootfs or --config is required", a.id)
        }
        Command::Create(a) => create(&c, a, false).await?,
        Command::Run(a) => create(&c, a, true).await?,
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
                outln!("{:<24} {:<9} {:>8} {:>5}", "ID", "STATUS", "PID", "EXIT")?;
                for x in v.as_array().into_iter().flatten() {
                    outln!(
                        "{:<24} {:<9} {:>8} {:>5}",
                        x["id"].as_str().unwrap_or(""),
                        x["status"].as_str().unwrap_or(""),
                        x["pid"]
                            .as_i64()
                            .map(|p| p.to_string())
                            .unwrap_or("-".into()),
                        x["exit_code"]
                            .as_i64()
                            .map(|p| p.to_string())
                            .unwrap_or("-".into()),
                    )?;
                }
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
                        x["pid"]
                            .as_i64()
                            .map(|p| p.to_string())
                            .unwrap_or("-".into()),
                        x["ns_pid"]
                            .as_i64()
                            .map(|p| p.to_string())
                            .unwrap_or("-".into()),
                        user,
                        x["state"].as_str().unwrap_or(""),
                        cmd.join(" ")
                    )?;
                }
            }
        }
        Command::Wait { id } => {
            let v = c.call(Method::POST, &p(&id, "wait"), None).await?;
            let code = v["exit"]["exit_code"].as_i64().unwrap_or(255) as i32;
            match v["stop_reason"].as_str() {
                Some(r) => outln!("{code} ({r})")?,
                None => outln!("{code}")?,
            }
            return Ok(code);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn seccomp_profile_files_are_read_safely() {
        let t = TempDir::new("cli-seccomp");
        let ok = t.path().join("ok.json");
        std::fs::write(&ok, br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        let v = seccomp_opt(ok.to_str().unwrap()).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(seccomp_opt("default").unwrap(), json!("default"));
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = format!("{:#}", seccomp_opt(fifo.to_str().unwrap()).unwrap_err());
        assert!(e.contains("FIFO"), "{e}");
        let big = t.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_SECCOMP_FILE as usize + 1]).unwrap();
        let e = format!("{:#}", seccomp_opt(big.to_str().unwrap()).unwrap_err());
        assert!(e.contains("larger than"), "{e}");
    }
}
