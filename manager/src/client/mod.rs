//! The client's sessions (`exec`, `attach`, `run -a`), beside the plain
//! requests of `crate::cli`. One job per module:
//!
//! - `session`: opening an upgraded session and driving it;
//! - `keys`: the detach keys;
//! - `term`: raw mode and the window size of the local terminal.

pub mod commands;
pub mod keys;
pub mod session;
pub mod term;
