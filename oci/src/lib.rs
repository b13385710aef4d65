//! zctr-oci: a runc-compatible OCI runtime command line (create, start,
//! state, kill, delete, run, list, ps, pause, resume, update, exec,
//! features, spec) over zctr-shim's setup code. No process of its own stays
//! once a command returns: the container init is reparented to the caller's
//! subreaper (containerd's shim, conmon), and `start` goes through a FIFO in
//! the state directory. See docs/oci.md.
//!
//! Modules allowed to use `unsafe`: [`sys`] only (pidfd, terminal ioctls).
#![deny(unsafe_code)]

pub mod app;
pub mod cgroup;
pub mod cli;
pub mod console;
pub mod create;
pub mod error;
pub mod exec;
pub mod features;
pub mod log;
pub mod manage;
pub mod proc;
pub mod spec;
pub mod state;
#[allow(unsafe_code)]
pub mod sys;
pub mod update;
