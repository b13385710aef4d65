//! Requests to a shim and their replies: one helper, [`exchange`], that
//! sends, then waits for the first frame that answers, within a limit, and
//! notices at once when the connection ends; and the two exchanges the
//! registry makes with it (`start`, and a command followed by `Status`).

use crate::container::{Container, ShimLink};
use crate::error::{Error, Result};
use common::protocol::{ManagerMsg, ShimMsg, ShimState};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// How long a request to a shim may take.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an exchange ended without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExchangeError {
    /// The request could not be sent: the link's writer is gone.
    NotSent,
    /// The connection ended before a reply (the shim died or hung up).
    Gone,
    /// No reply within the limit.
    TimedOut,
}

/// Sends `requests` in order on `link`, then waits at most `limit` for the
/// first frame `reply` answers (`Some`); other frames are ignored.
///
/// Takes the link by value and keeps only a subscription and the command
/// sender: a copy of the event sender held here would keep the channel open
/// after the connection ended, and a dead shim would look like a slow one
/// (a `start` whose shim died reported a timeout after the full limit).
pub(super) async fn exchange<T>(
    link: ShimLink,
    requests: &[ManagerMsg],
    limit: Duration,
    mut reply: impl FnMut(&ShimMsg) -> Option<T>,
) -> Result<T, ExchangeError> {
    let ShimLink { cmd, events, .. } = link;
    let mut rx = events.subscribe();
    drop(events);
    for r in requests {
        cmd.send(r.clone()).map_err(|_| ExchangeError::NotSent)?;
    }
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(msg) => {
                    if let Some(t) = reply(&msg) {
                        return Ok(t);
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Err(ExchangeError::Gone),
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .unwrap_or(Err(ExchangeError::TimedOut))
}

fn link(c: &Container) -> Result<ShimLink> {
    c.link()
        .ok_or_else(|| Error::ShimUnavailable(c.id.as_str().to_string()))
}

/// Sends `cmd` then `Status`; the shim answers in order, so a
/// `CommandFailed` before the `Hello` belongs to `cmd`. `None`: the
/// connection ended first.
pub(super) async fn command(
    c: &Container,
    cmd: ManagerMsg,
    limit: Duration,
) -> Result<Option<ShimState>> {
    let replied = exchange(link(c)?, &[cmd, ManagerMsg::Status], limit, |m| {
        Some(match m {
            ShimMsg::CommandFailed { errno, message } => Err(Error::ShimCommand {
                errno: *errno,
                message: message.clone(),
            }),
            ShimMsg::Hello { state, .. } => Ok(Some(*state)),
            ShimMsg::Exited { .. } => Ok(Some(ShimState::Stopped)),
            _ => return None,
        })
    })
    .await;
    match replied {
        Ok(r) => r,
        Err(ExchangeError::Gone) => Ok(None),
        Err(ExchangeError::NotSent) => Err(Error::ShimUnavailable(c.id.as_str().to_string())),
        Err(ExchangeError::TimedOut) => Err(Error::Timeout {
            id: c.id.as_str().to_string(),
            what: "shim command",
        }),
    }
}

/// Sends `Start` and waits for `Started` (or `Exited`: it ran and ended).
pub(super) async fn start(c: &Container, limit: Duration) -> Result<()> {
    let replied = exchange(link(c)?, &[ManagerMsg::Start], limit, |m| match m {
        ShimMsg::Started | ShimMsg::Exited { .. } => Some(Ok(())),
        ShimMsg::CommandFailed { errno, message } => Some(Err(Error::ShimCommand {
            errno: *errno,
            message: message.clone(),
        })),
        _ => None,
    })
    .await;
    match replied {
        Ok(r) => r,
        Err(ExchangeError::NotSent | ExchangeError::Gone) => {
            Err(Error::ShimUnavailable(c.id.as_str().to_string()))
        }
        // The shim resumes an init stopped before `start`; should one still
        // not exec in time, the state stays `created` (true: nothing of the
        // container ran yet) and turns `running` when the exec happens.
        Err(ExchangeError::TimedOut) => Err(Error::Timeout {
            id: c.id.as_str().to_string(),
            what: "start (the container's process did not exec; it stays created)",
        }),
    }
}
