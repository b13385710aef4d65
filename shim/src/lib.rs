//! zctr-shim: the setup executable `zctr-shim` (every mode; sets containers
//! up) as a library. Once a container is created it hands it to
//! `zctr-shim-monitor` (crate `zctr-shim-monitor`), or serves it in-process
//! with that crate's loop. Both depend on `zctr-shim-core` for what crosses
//! the line; the dependencies point one way: this crate → monitor → core.
//! See `zctr-shim --help` and docs/shim.md.
//!
//! Modules allowed to use `unsafe`, each for one reason (every block says
//! why it is sound in a `SAFETY:` comment):
//! - [`app`]: forks `create` into the background, adopts `--control-fd`.
//! - [`setup::sys`]: the syscall wrappers of setup (clone, mounts, exec, ...).
//! - [`setup::launch`]: clones the container process.
//! - [`setup::child`]: closes the raw fds it opens (it allocates nothing,
//!   so no owning wrapper), execs.
//! - `setup::exec::child`: the same for a process exec'd into a running
//!   container (and the fork of its helper).
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

#[allow(unsafe_code)]
pub mod app;
pub mod cli;
pub mod client;
pub mod log;
pub mod setup;
