//! zctr-shim: the per-container shim, as a library shared by its two
//! executables: `zctr-shim` (every mode; sets containers up) and
//! `zctr-shim-monitor` (the monitor loop only, exec'd after setup; see
//! `handoff`). See `zctr-shim --help` and docs/shim.md.
#![deny(unsafe_code)]

pub mod agent;
pub mod app;
pub mod cgroup;
pub mod channel;
pub mod child;
pub mod cli;
pub mod client;
pub mod handoff;
pub mod idmap;
pub mod launch;
pub mod logfile;
pub mod monitor;
pub mod mountopts;
pub mod overlay;
pub mod plan;
pub mod reach;
pub mod readfile;
pub mod say;
pub mod seccomp;
pub mod status;
pub mod sys;
