//! Sessions (`exec`, `attach`; docs/protocol.md, "Sessions") seen from the
//! daemon. One job per module:
//!
//! - `process`: the exec request and the runtime-spec `process` it becomes;
//! - `users`: user and group names resolved inside the container;
//! - `relay`: an upgraded API connection relayed to the monitor;
//! - this module: opening a session on a new connection to `shim.sock`.

pub mod process;
pub mod relay;
pub mod users;

use crate::shim_conn::{self, ShimReader, ShimWriter};
use common::protocol::{ManagerMsg, ShimMsg};
use std::path::Path;
use std::time::Duration;

/// How long the monitor may take to answer `Exec` or `Attach`.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Process(#[from] process::ProcessError),
    #[error(transparent)]
    Conn(#[from] shim_conn::ShimConnError),
    #[error("the monitor refused: {message} (errno {errno})")]
    Refused { errno: i32, message: String },
    #[error("the monitor closed the connection before answering")]
    Closed,
    #[error("the monitor did not answer within {0:?}")]
    Timeout(Duration),
}

/// A session opened on a connection of its own.
pub struct Opened {
    /// `ExecStarted` or `Attached`, as received.
    pub first: ShimMsg,
    pub session: u32,
    pub pid: Option<i32>,
    pub conn: (ShimReader, ShimWriter),
}

/// Connects to the monitor of the container in `state_dir`, sends `msg`
/// (`Exec` or `Attach`) and waits for its answer; the `Hello` every new
/// connection gets first, and whatever else comes before the answer, is
/// skipped.
pub async fn open(state_dir: &Path, msg: &ManagerMsg) -> Result<Opened, SessionError> {
    let stream = shim_conn::connect(state_dir).await?;
    let (mut r, mut w) = shim_conn::split(stream);
    w.send(msg).await?;
    let answer = async {
        loop {
            match r.next().await? {
                None => return Err(SessionError::Closed),
                Some(m @ ShimMsg::ExecStarted { session, pid }) => {
                    return Ok((m, session, Some(pid)))
                }
                Some(m @ ShimMsg::Attached { session, .. }) => return Ok((m, session, None)),
                Some(ShimMsg::CommandFailed { errno, message }) => {
                    return Err(SessionError::Refused { errno, message })
                }
                Some(_) => {}
            }
        }
    };
    let (first, session, pid) = tokio::time::timeout(OPEN_TIMEOUT, answer)
        .await
        .map_err(|_| SessionError::Timeout(OPEN_TIMEOUT))??;
    Ok(Opened {
        first,
        session,
        pid,
        conn: (r, w),
    })
}
