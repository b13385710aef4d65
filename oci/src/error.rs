//! The one error of zctr-oci's commands: a message for the user, already
//! naming the step and the object concerned (printed as `zctr-oci: MSG`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error(msg.into())
    }

    /// `what: e` for any displayable cause.
    pub fn at(what: impl fmt::Display, e: impl fmt::Display) -> Self {
        Error(format!("{what}: {e}"))
    }
}

impl From<zctr_shim_core::SetupError> for Error {
    fn from(e: zctr_shim_core::SetupError) -> Self {
        Error(e.to_string())
    }
}

impl From<zctr_cgroups::CgroupError> for Error {
    fn from(e: zctr_cgroups::CgroupError) -> Self {
        Error(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Adds context to io/nix results.
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::at(what(), e))
    }
}
