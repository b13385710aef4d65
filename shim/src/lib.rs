//! zctr-shim: the setup executable `zctr-shim` (every mode; sets containers
//! up) as a library. Once a container is created it hands it to
//! `zctr-shim-monitor` (crate `zctr-shim-monitor`), or serves it in-process
//! with that crate's loop. Both depend on `zctr-shim-core` for what crosses
//! the line; the dependencies point one way: this crate → monitor → core.
//! See `zctr-shim --help` and docs/shim.md.
//!
//! Modules allowed to use `unsafe` (each says why in its header):
//! - [`setup::sys`]: the syscall wrappers of setup (clone, mounts, exec, ...).
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod app;
pub mod cli;
pub mod client;
pub mod setup;
