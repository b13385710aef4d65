//! Harnesses for driving an OCI runtime (zctr-oci, or runc for comparison)
//! through real clients: podman and containerd.
//!
//! - [`runtime`]: the runtime binary the client tests hand to the clients.
//! - [`image`]: an OCI image layout tar built from a root filesystem.
//! - [`podman`]: podman with private storage, config and cgroup parent.
//! - [`containerd`]: a private containerd daemon and its `ctr` client.

pub mod containerd;
pub mod image;
pub mod podman;
pub mod runtime;

use crate::Error;
use std::process::{Command, Output};
use std::time::Duration;

/// Time limit of one client command.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a client command with [`CLIENT_TIMEOUT`], panicking (with what it
/// printed) only if it hangs: the caller checks the exit status.
pub(crate) fn run_client(cmd: &mut Command) -> Output {
    match crate::run_cmd(cmd, CLIENT_TIMEOUT) {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    }
}

/// `Err` naming `what` and showing `out` unless the command succeeded.
pub(crate) fn check(what: &str, out: Output) -> Result<Output, Error> {
    if out.status.success() {
        return Ok(out);
    }
    Err(Error::Io {
        context: format!("{what}: {}", crate::describe(&out)),
        source: std::io::Error::other("command failed"),
    })
}
