//! `zctr daemon`: lock the state root, detect cgroups, prepare the shims'
//! cgroup, reconcile what is on disk, then serve the API until SIGTERM/SIGINT.
//! Stopping the daemon never stops containers.

use crate::api;
use crate::error::Error;
use crate::nofile;
use crate::registry::{Registry, Settings};
use crate::spawn::OsShims;
use crate::store::Store;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use zctr_cgroups::{self as cgroups, CgroupPath};

#[derive(Debug, Clone)]
pub struct Options {
    pub root: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    pub shim: PathBuf,
    /// Timeouts and the connection cap of the API (the cap is lowered to
    /// fit the descriptor limit).
    pub limits: api::Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Manager(#[from] Error),
    #[error("socket {path}: {source}")]
    Socket { path: PathBuf, source: io::Error },
    #[error("shim binary {0} does not exist")]
    NoShim(PathBuf),
    #[error("signal handler: {0}")]
    Signal(io::Error),
    #[error("raising RLIMIT_NOFILE: {0}")]
    Nofile(io::Error),
}

pub async fn run(opts: Options) -> Result<(), DaemonError> {
    if !opts.shim.is_file() {
        return Err(DaemonError::NoShim(opts.shim));
    }
    let nofile = nofile::raise().map_err(|e| DaemonError::Nofile(e.into()))?;
    let limits = opts.limits.fit_nofile(nofile);
    let store = Store::open(&opts.root).map_err(Error::from)?;
    let cgroups: Arc<dyn cgroups::Cgroups> = Arc::from(cgroups::detect().map_err(Error::from)?);
    let parent = CgroupPath::new(&opts.cgroup_parent).map_err(Error::from)?;
    let reg = Registry::new(
        store,
        cgroups.clone(),
        Arc::new(OsShims),
        Settings {
            shim: opts.shim.clone(),
            cgroup_parent: parent,
        },
    );
    let shim_cg = reg.shim_cgroup()?;
    tokio::task::spawn_blocking(move || cgroups.create(&shim_cg, None))
        .await
        .expect("blocking task")
        .map_err(Error::from)?;
    // What happened while the daemon was away is published once recovery is
    // over, in the order it happened (crate::events).
    reg.events().hold();
    let recovered = reg.recover().await;
    reg.events().release();
    recovered?;
    // Restart policies, for what stopped while the daemon was away too.
    reg.start_restarts();

    let sock_err = |source| DaemonError::Socket {
        path: opts.socket.clone(),
        source,
    };
    if let Some(dir) = opts.socket.parent() {
        fs::create_dir_all(dir).map_err(sock_err)?;
    }
    // We hold the root's lock, so a socket file left here is a dead daemon's.
    match fs::remove_file(&opts.socket) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(sock_err(e)),
    }
    let listener = UnixListener::bind(&opts.socket).map_err(sock_err)?;
    fs::set_permissions(&opts.socket, fs::Permissions::from_mode(0o600)).map_err(sock_err)?;
    tracing::info!(
        socket = %opts.socket.display(),
        root = %opts.root.display(),
        cgroups = ?reg.cgroups().layout(),
        nofile,
        limits = ?limits,
        "serving"
    );

    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signal)?;
    let shutdown = async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => match crate::logging::reopen() {
                    Ok(()) => tracing::info!("SIGHUP: log file reopened"),
                    Err(e) => tracing::warn!("SIGHUP: {e}; still writing to the old file"),
                },
            }
        }
    };
    api::serve(listener, reg, limits, shutdown).await;
    let _ = fs::remove_file(&opts.socket);
    tracing::info!("stopped; containers keep running");
    Ok(())
}
