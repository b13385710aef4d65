//! zctr-shim-core: what both halves of the shim share, and nothing else.
//!
//! The setup half (crate `zctr-shim`) and the monitor half (crate
//! `zctr-shim-monitor`) both depend on this crate; the monitor does not
//! depend on the setup crate, so the compiler keeps the setup code out of it.
//!
//! Modules allowed to use `unsafe`, each for one reason:
//! - [`sys`]: the syscall wrappers both halves call.
//! - [`channel`]: closes an fd that came with an unexpected message.
//! - [`handoff`]: takes ownership of the fds the record names after exec.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod agent;
pub mod cgroup;
#[allow(unsafe_code)]
pub mod channel;
pub mod error;
pub mod exec_report;
#[allow(unsafe_code)]
pub mod handoff;
pub mod logfile;
pub mod say;
pub mod signals;
#[allow(unsafe_code)]
pub mod sys;

pub use error::SetupError;
