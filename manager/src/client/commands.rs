//! `zctr exec`, `zctr attach` and `zctr run -a`: the commands that drive a
//! session (`super::session`).

use super::keys;
use super::session::{self, End, Options};
use crate::cli::Client;
use crate::create_args::{config_from, CreateArgs};
use anyhow::{Context, Result};
use hyper::Method;
use serde_json::json;
use std::path::Path;

/// `zctr exec`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Give the process a terminal; this client's terminal goes into raw
    /// mode (restored at the end) and its size follows the window.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Forward this client's stdin to the process (its end closes the
    /// process's input).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Do not wait: print the session number and return; the output goes
    /// to the container's log.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// KEY=VALUE added to (or replacing in) the container's environment.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// User inside the container: uid[:gid] or name[:group] (looked up in
    /// the container's /etc/passwd and /etc/group).
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container (absolute).
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// The running container.
    pub id: String,
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub cmd: Vec<String>,
}

/// `zctr exec`: its exit status (the process's, 128+N for signal N,
/// [`session::LOST_STATUS`] if the daemon went away).
pub async fn exec(socket: &Path, a: ExecArgs) -> Result<i32> {
    let size = if a.tty { super::term::size() } else { None };
    let body = json!({
        "cmd": a.cmd,
        "env": a.env,
        "user": a.user,
        "workdir": a.workdir,
        "tty": a.tty,
        "stdin": a.interactive,
        "detach": a.detach,
        "size": size.map(|(r, c)| [r, c]),
    });
    let path = format!("/v1/containers/{}/exec", a.id);
    if a.detach {
        let v = Client::new(socket)
            .call(Method::POST, &path, Some(body))
            .await?;
        println!("{}", v["session"]);
        return Ok(0);
    }
    let io = session::open(socket, &path, Some(body)).await?;
    let end = session::drive(
        io,
        Options {
            stdin: a.interactive,
            tty: Some(a.tty),
            ..Options::default()
        },
    )
    .await?;
    Ok(session::status(end, "the process"))
}

/// `zctr attach`: the container's exit status if it exits while attached.
pub async fn attach(socket: &Path, id: &str, detach_keys: &str, no_stdin: bool) -> Result<i32> {
    let keys = keys::parse(detach_keys).map_err(anyhow::Error::msg)?;
    let io = session::open(socket, &format!("/v1/containers/{id}/attach"), None).await?;
    let end = session::drive(
        io,
        Options {
            stdin: !no_stdin,
            tty: None,
            detach_keys: Some(keys),
            forward_signals: None,
        },
    )
    .await?;
    Ok(session::status(end, &format!("container {id}")))
}

/// `zctr run -a` (and `run -t -i`): create, attach, then start, so that no
/// output is missed; its exit status is the container's. Without a
/// terminal, SIGINT and SIGTERM go to the container through the kill API
/// (with one, ^C is a byte for its terminal).
pub async fn run_attached(socket: &Path, a: CreateArgs, rm: bool) -> Result<i32> {
    let c = Client::new(socket);
    let id = a.id.clone();
    let body = json!({"id": a.id, "config": config_from(&a)?});
    c.call(Method::POST, "/v1/containers", Some(body)).await?;
    let attached = async {
        let io = session::open(socket, &format!("/v1/containers/{id}/attach"), None).await?;
        c.call(Method::POST, &format!("/v1/containers/{id}/start"), None)
            .await?;
        anyhow::Ok(io)
    }
    .await;
    let io = match attached {
        Ok(io) => io,
        Err(e) => {
            // Nothing of it ran: it does not stay behind.
            let _ = c
                .call(
                    Method::DELETE,
                    &format!("/v1/containers/{id}?force=true"),
                    None,
                )
                .await;
            return Err(e);
        }
    };
    let end = session::drive(
        io,
        Options {
            stdin: a.interactive,
            tty: Some(a.tty),
            detach_keys: a
                .interactive
                .then(|| keys::parse(keys::DEFAULT).expect("default keys")),
            forward_signals: (!a.tty).then(|| (socket.to_path_buf(), id.clone())),
        },
    )
    .await?;
    if rm && matches!(end, End::Exit(_)) {
        // The exit came over the session, maybe before the daemon recorded
        // it: wait for that, then remove.
        c.call(Method::POST, &format!("/v1/containers/{id}/wait"), None)
            .await
            .with_context(|| format!("waiting for {id}"))?;
        c.call(Method::DELETE, &format!("/v1/containers/{id}"), None)
            .await
            .with_context(|| format!("removing {id}"))?;
    }
    Ok(session::status(end, &format!("container {id}")))
}
