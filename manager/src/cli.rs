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
    /// Stop a container: TERM to its init, then KILL to all its processes
    /// after the grace period; prints its exit code. A stopped container
    /// stays as it is.
    Stop {
        id: String,
        /// Seconds between TERM and KILL (0: KILL at once).
        #[arg(short = 't', long = "time", default_value = "10")]
        time: f64,
    },
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
    /// The builds of this client, of the daemon and of the shim it spawns;
    /// warns when they differ (after a partial upgrade).
    Version {
        #[arg(long)]
        json: bool,
    },
    /// Change a live container's limits (all or none), validated like create.
    Update {
        id: String,
        /// CPU limit in CPUs (e.g. 0.5).
        #[arg(long)]
        cpus: Option<f64>,
        /// Memory limit: bytes, or with a suffix k, m, g or t (512m, 1g).
        #[arg(long, value_parser = crate::units::parse_size)]
        memory: Option<u64>,
        /// Limit on the number of processes.
        #[arg(long)]
        pids: Option<i64>,
    },
    /// What containers use: CPU, memory, pids, network and block I/O. No ID:
    /// every running container.
    Stats {
        ids: Vec<String>,
        /// Refresh every second until interrupted.
        #[arg(long)]
        stream: bool,
        /// The API's objects (one JSON line per container and sample).
        #[arg(long)]
        json: bool,
    },
    /// Print the daemon's events (created, started, paused, resumed, oom,
    /// exited, died_while_away, restarted, deleted, exec_started,
    /// exec_exited), oldest first, then follow new ones until interrupted.
    Events {
        /// From this time on: seconds since the Unix epoch, or a duration
        /// ago (30s, 5m, 2h, 1d). Default: every event the daemon keeps.
        #[arg(long)]
        since: Option<String>,
        /// Only these events; `id=ID` (one container).
        #[arg(long)]
        filter: Option<String>,
        /// Print the kept events and stop instead of following.
        #[arg(long)]
        no_follow: bool,
        /// One JSON object per line, as the API gives them.
        #[arg(long)]
        json: bool,
    },
    /// Run a command in a running container: its stdout and stderr here,
    /// this client's stdin with -i, a terminal with -t; exits with its exit
    /// code (128+N when signal N killed it). -d prints the session number
    /// and returns (the output goes to the container's log). Exit 125: the
    /// connection to the daemon was lost (the process goes on).
    Exec(crate::client::commands::ExecArgs),
    /// Attach to a container's own process: its output here, this client's
    /// stdin to it (if created with -i). Typing the detach keys leaves it
    /// running; if it exits meanwhile, exits with its exit code.
    Attach {
        /// The detach sequence: comma-separated ctrl-<x> and characters.
        #[arg(long, default_value = crate::client::keys::DEFAULT)]
        detach_keys: String,
        /// Do not forward stdin (output only).
        #[arg(long)]
        no_stdin: bool,
        /// The container (created, running or paused).
        id: String,
    },
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
    /// Remove the container once it exited (implies --wait, or comes
    /// after --attach). The daemon removes it even if this client is
    /// interrupted (with --wait).
    #[arg(long)]
    pub rm: bool,
    /// Stay attached in the foreground: attached before it starts (no
    /// output is lost), exit with its exit code. Without -t, SIGINT and
    /// SIGTERM are forwarded to it; -t -i implies --attach (ctrl-p,ctrl-q
    /// detaches).
    #[arg(short = 'a', long, conflicts_with = "wait")]
    pub attach: bool,
    /// Start it and return, printing nothing but errors: the default, also
    /// with -t -i (the container keeps its terminal; `zctr attach` later).
    #[arg(short = 'd', long, conflicts_with_all = ["wait", "rm", "attach"])]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// The error an API answer carries: its one-line `message (code)`, or the
/// HTTP status and body when it is not the API's JSON.
pub async fn api_error(resp: hyper::Response<hyper::body::Incoming>) -> anyhow::Error {
    let status = resp.status();
    let body = match resp.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return e.into(),
    };
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => anyhow::anyhow!(
            "{} ({})",
            v["message"].as_str().unwrap_or("error"),
            v["code"].as_str().unwrap_or(status.as_str())
        ),
        Err(_) => anyhow::anyhow!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
    }
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
            return Err(api_error(resp).await);
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
        Command::Run(r) if !r.detach && (r.attach || (r.create.tty && r.create.interactive)) => {
            return crate::client::commands::run_attached(socket, r.create, r.rm).await
        }
        Command::Run(r) if r.wait || r.rm => return run_wait(&c, r.create, r.rm).await,
        Command::Exec(a) => return crate::client::commands::exec(socket, a).await,
        Command::Attach {
            detach_keys,
            no_stdin,
            id,
        } => return crate::client::commands::attach(socket, &id, &detach_keys, no_stdin).await,
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
        Command::Version { json } => return version(&c, json).await,
        Command::Stop { id, time } => {
            if !(0.0..=3600.0).contains(&time) {
                bail!("--time: {time} is not a number of seconds in [0, 3600]");
            }
            let path = format!("{}?timeout={time}", p(&id, "stop"));
            // The exit code is printed; `stop` itself succeeded.
            print_exit(&c.call(Method::POST, &path, None).await?)?;
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
        Command::Update {
            id,
            cpus,
            memory,
            pids,
        } => {
            let body = json!({"cpus": cpus, "memory_bytes": memory, "pids": pids});
            c.call(Method::POST, &p(&id, "update"), Some(body)).await?;
        }
        Command::Stats { ids, stream, json } => stats(&c, ids, stream, json).await?,
        Command::Events {
            since,
            filter,
            no_follow,
            json,
        } => events(&c, since, filter, !no_follow, json).await?,
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

/// `zctr version`: client, daemon and shim builds; exit 1 with a warning on
/// stderr when they differ. The client's line is printed even when the daemon
/// cannot be reached (and then the error).
async fn version(c: &Client, as_json: bool) -> Result<i32> {
    let client = crate::version::line();
    let v = match c.call(Method::GET, "/v1/version", None).await {
        Ok(v) => v,
        Err(e) => {
            outln!("client: {client}")?;
            return Err(e);
        }
    };
    let daemon = v["daemon"].as_str().unwrap_or("?").to_string();
    let shim = v["shim"]["version"].as_str().map(str::to_string);
    if as_json {
        outln!(
            "{}",
            json!({"client": client, "daemon": daemon, "shim": v["shim"]})
        )?;
    } else {
        outln!("client: {client}")?;
        outln!("daemon: {daemon}")?;
        match &shim {
            Some(s) => outln!(
                "shim:   {s} ({})",
                v["shim"]["path"].as_str().unwrap_or("?")
            )?,
            None => outln!(
                "shim:   {} cannot run: {}",
                v["shim"]["path"].as_str().unwrap_or("?"),
                v["shim"]["error"].as_str().unwrap_or("?")
            )?,
        }
    }
    let mine = crate::version::version_part(&client);
    let differ = crate::version::version_part(&daemon) != mine
        || shim
            .as_deref()
            .is_none_or(|s| crate::version::version_part(s) != mine);
    if differ {
        eprintln!("zctr: warning: the client, the daemon and the shim are not the same build (a partial upgrade?)");
        return Ok(1);
    }
    Ok(0)
}

/// `zctr events`: the API's lines, as they are (`--json`) or as text.
async fn events(
    c: &Client,
    since: Option<String>,
    filter: Option<String>,
    follow: bool,
    as_json: bool,
) -> Result<()> {
    let mut q = vec![format!("follow={follow}")];
    if let Some(s) = since {
        let ms = crate::units::parse_since(&s, crate::model::now_ms())
            .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
        q.push(format!("since={ms}"));
    }
    if let Some(f) = filter {
        match f.split_once('=') {
            Some(("id", id)) if common::id::ContainerId::new(id).is_ok() => {
                q.push(format!("id={id}"))
            }
            _ => bail!("--filter: {f:?} is not id=ID"),
        }
    }
    let mut body = c
        .send(Method::GET, &format!("/v1/events?{}", q.join("&")), None)
        .await?
        .into_body();
    let mut pending = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        if as_json {
            write_out(&data)?;
            continue;
        }
        pending.extend_from_slice(&data);
        while let Some(n) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=n).collect();
            if let Ok(v) = serde_json::from_slice::<Value>(&line) {
                outln!("{}", event_text(&v))?;
            }
        }
    }
    Ok(())
}

/// `2026-12-02T14:04:05.123Z web exited exit_code=3`
fn event_text(v: &Value) -> String {
    if let Some(n) = v["lost"].as_u64() {
        return format!("({n} events lost: this client was too slow)");
    }
    let mut s = format!(
        "{} {} {}",
        crate::units::utc(v["at_ms"].as_u64().unwrap_or(0)),
        v["id"].as_str().unwrap_or("?"),
        v["kind"].as_str().unwrap_or("?")
    );
    for k in ["session", "pid", "exit_code", "signal", "reason"] {
        match &v[k] {
            Value::Null => {}
            Value::String(x) => s.push_str(&format!(" {k}={x:?}")),
            x => s.push_str(&format!(" {k}={x}")),
        }
    }
    s
}

/// `zctr stats`: two samples half a second apart give the CPU share; with
/// `--stream` one table (or JSON lines) a second.
async fn stats(c: &Client, ids: Vec<String>, stream: bool, as_json: bool) -> Result<()> {
    let ids = if ids.is_empty() {
        let all = c.call(Method::GET, "/v1/containers", None).await?;
        all.as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["status"] == "running")
            .filter_map(|x| x["id"].as_str().map(str::to_string))
            .collect()
    } else {
        ids
    };
    let mut before = stats_sample(c, &ids).await?;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(if stream {
            1000
        } else {
            500
        }))
        .await;
        let now = stats_sample(c, &ids).await?;
        if as_json {
            for v in &now {
                outln!("{}", serde_json::to_string(v)?)?;
            }
        } else {
            outln!(
                "{:<20} {:>7} {:>21} {:>6} {:>5} {:>19} {:>19}",
                "ID",
                "CPU %",
                "MEM USAGE / LIMIT",
                "MEM %",
                "PIDS",
                "NET RX / TX",
                "BLOCK R / W"
            )?;
            for (a, b) in before.iter().zip(&now) {
                outln!("{}", stats_row(a, b))?;
            }
        }
        if !stream {
            return Ok(());
        }
        before = now;
    }
}

/// One `GET .../stats` per container.
async fn stats_sample(c: &Client, ids: &[String]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for id in ids {
        let path = format!("/v1/containers/{id}/stats");
        out.push(c.call(Method::GET, &path, None).await?);
    }
    Ok(out)
}

fn size_text(v: &Value) -> String {
    let Some(n) = v.as_u64() else {
        return "-".into();
    };
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1024.0 && u < UNITS.len() - 1 {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{x:.1}{}", UNITS[u])
    }
}

/// One line of the stats table from two samples of one container.
fn stats_row(a: &Value, b: &Value) -> String {
    let cpu = match (
        a["cpu"]["usage_ns"].as_u64(),
        b["cpu"]["usage_ns"].as_u64(),
        b["read_ms"].as_u64().zip(a["read_ms"].as_u64()),
    ) {
        (Some(u0), Some(u1), Some((t1, t0))) if t1 > t0 => format!(
            "{:.1}",
            u1.saturating_sub(u0) as f64 / ((t1 - t0) as f64 * 1e6) * 100.0
        ),
        _ => "-".into(),
    };
    let m = &b["memory"];
    let mem_pct = match (m["usage"].as_u64(), m["limit"].as_u64()) {
        (Some(u), Some(l)) if l > 0 => format!("{:.1}", u as f64 * 100.0 / l as f64),
        _ => "-".into(),
    };
    let limit = if m["limit"].is_null() {
        "-".to_string()
    } else {
        size_text(&m["limit"])
    };
    format!(
        "{:<20} {:>7} {:>21} {:>6} {:>5} {:>19} {:>19}",
        b["id"].as_str().unwrap_or("?"),
        cpu,
        format!("{} / {limit}", size_text(&m["usage"])),
        mem_pct,
        num_or_dash(&b["pids"]["current"]),
        format!(
            "{} / {}",
            size_text(&b["network"]["rx_bytes"]),
            size_text(&b["network"]["tx_bytes"])
        ),
        format!(
            "{} / {}",
            size_text(&b["io"]["read_bytes"]),
            size_text(&b["io"]["write_bytes"])
        ),
    )
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
