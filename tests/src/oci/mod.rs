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
use std::path::{Path, PathBuf};
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

/// The parent of process `pid` (`PPid` in /proc/<pid>/status).
pub fn parent_of(pid: i32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}

/// The executable process `pid` runs (/proc/<pid>/exe).
pub fn exe_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The processes among `pids` that run `binary` (compared after resolving
/// symlinks): how a test sees that no runtime process stayed behind.
pub fn running(binary: &Path, pids: &[u32]) -> Vec<u32> {
    let want = binary
        .canonicalize()
        .unwrap_or_else(|_| binary.to_path_buf());
    pids.iter()
        .copied()
        .filter(|&p| exe_of(p as i32).is_some_and(|e| e == want))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_running_its_own_binary_with_its_parent() {
        let me = std::process::id();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(running(&exe, &[me, 1]), vec![me]);
        assert_eq!(
            parent_of(me as i32),
            Some(std::os::unix::process::parent_id() as i32)
        );
        assert_eq!(exe_of(me as i32).unwrap(), exe.canonicalize().unwrap());
    }
}
