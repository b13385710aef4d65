//! Shared by the zctr manager and shim. No async runtime, no syscalls.
#![forbid(unsafe_code)]

pub mod protocol;
pub mod state;
