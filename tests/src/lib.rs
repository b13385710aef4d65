//! Shared helpers for zctr's end-to-end tests (run as root on a real kernel).
//!
//! - [`bins`]: find the static `zctr-probe`, `zctr-shim` and `zctr` binaries.
//! - [`TempDir`]: scratch directory, unmounted and removed on drop.
//! - [`Rootfs`]: minimal root filesystem with the probe (and optionally busybox).
//! - [`bundle::write`]: write an OCI `config.json`.
//! - [`TestCgroup`]: a cgroup below the test's own, in every hierarchy, cleaned up on drop.
//! - [`run_cmd`] / [`wait_until`]: commands with a time limit, polling.
//! - [`seccomp_agent`]: a seccomp agent for `SCMP_ACT_NOTIFY` tests.
//! - [`oci`]: podman and containerd harnesses driving an OCI runtime (zctr-oci), OCI image tars.
//! - [`skip`]: the one way a test that cannot run here says so (fails under `CI=true`).
#![deny(unsafe_code)]

pub mod bins;
pub mod bundle;
pub mod cgroup;
mod cmd;
mod error;
pub mod mountinfo;
pub mod oci;
pub mod procs;
pub mod rootfs;
#[allow(unsafe_code)]
pub mod seccomp_agent;
pub mod skip;
#[allow(unsafe_code)]
mod sys;
mod tempdir;

pub use cgroup::{CgroupDir, CgroupVersion, Hierarchy, TestCgroup};
pub use cmd::{describe, run_cmd, wait_until};
pub use error::Error;
pub use rootfs::{busybox_path, Rootfs, BUSYBOX_APPLETS};
pub use sys::kill as signal;
pub use sys::{openpty, recv_fd, set_winsize, subreaper_before_exec};
pub use tempdir::{mounts_below, remove_tree, unmount_below, TempDir};

/// Whether the tests run with effective uid 0 (most helpers need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_string();
            line.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}
