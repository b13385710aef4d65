//! The manager's error: every module's error folds in here, and `api::error`
//! maps each kind to an HTTP status and a machine-readable code.

use crate::bundle::BundleError;
use crate::lifecycle::InvalidTransition;
use crate::shim_conn::ShimConnError;
use crate::spawn::SpawnError;
use crate::store::StoreError;
use zctr_cgroups::CgroupError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("container {0} already exists")]
    AlreadyExists(String),
    #[error("container {id}: {source}")]
    InvalidState {
        id: String,
        source: InvalidTransition,
    },
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unknown signal {0:?}")]
    BadSignal(String),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Shim(#[from] ShimConnError),
    #[error("the shim refused: {message} (errno {errno})")]
    ShimCommand { errno: i32, message: String },
    #[error("container {0}: its shim is not reachable")]
    ShimUnavailable(String),
    #[error("the request body did not arrive within {0:?}")]
    RequestTimeout(std::time::Duration),
    #[error("container {id}: {what} timed out")]
    Timeout { id: String, what: &'static str },
    #[error("container {id}: {source}")]
    Session {
        id: String,
        source: crate::session::SessionError,
    },
    #[error("{0}")]
    Busy(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
