//! Shared by the zctr manager and shim. No async runtime, no syscalls.
#![forbid(unsafe_code)]

pub mod capability;
pub mod cgroup_files;
pub mod config;
pub mod id;
pub mod layout;
pub mod meta;
pub mod mountinfo;
pub mod protocol;
pub mod rules;
pub mod seccomp;
pub mod signal;
pub mod spec;
pub mod state;
