//! The names on disk: the daemon's state root and each container's state
//! directory, shared by the manager, the shim and the tests. Pure path
//! arithmetic; nothing here touches the file system.
//!
//! Layout of `<state-root>/` and `<state-root>/<id>/`:
//!
//! | name                 | written by | content                                           |
//! |----------------------|------------|---------------------------------------------------|
//! | `daemon.lock`        | manager    | held under `flock` while a daemon owns the root   |
//! | `<id>/container.json`| manager    | the create request and manager-side record        |
//! | `<id>/bundle/`       | manager    | OCI bundle: `config.json` (root.path absolute)    |
//! | `<id>/rootfs-overlay/`| shim      | upper and work dirs of the container's root overlay|
//! | `<id>/shim.log`      | shim       | the shim's own diagnostics (its stdout/stderr)    |
//! | `<id>/status.json`   | shim       | [`crate::state::ShimStatus`], replaced atomically |
//! | `<id>/shim.sock`     | shim       | control socket: frames of [`crate::protocol`]     |
//! | `<id>/container.log` | shim       | the container's stdout and stderr                 |
//! | `<id>/container.log.1`| shim      | the previous log file after rotation              |

use std::path::{Path, PathBuf};

/// The daemon's event log in the state root (`events.jsonl.1` when rotated).
pub const EVENTS_FILE: &str = "events.jsonl";
/// The daemon's lock file inside the state root.
pub const LOCK_FILE: &str = "daemon.lock";
/// The manager's record inside a container's directory.
pub const RECORD_FILE: &str = "container.json";
/// The bundle directory inside a container's directory.
pub const BUNDLE_DIR: &str = "bundle";
/// The OCI runtime spec inside a bundle.
pub const CONFIG_FILE: &str = "config.json";
/// The directory inside a container's directory that holds its rootfs
/// overlay's upper and work dirs: every write of the container to its root.
pub const ROOTFS_OVERLAY_DIR: &str = "rootfs-overlay";
/// The shim's own diagnostics (stdout and stderr of a shim the manager started).
pub const SHIM_LOG: &str = "shim.log";
/// The shim's status file.
pub const STATUS_FILE: &str = "status.json";
/// The shim's control socket.
pub const SOCKET_FILE: &str = "shim.sock";
/// The container's log file (its stdout and stderr).
pub const LOG_FILE: &str = "container.log";
/// The rotated log file.
pub const LOG_FILE_OLD: &str = "container.log.1";

/// The bundle directory of the container whose state directory is `state_dir`.
pub fn bundle_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(BUNDLE_DIR)
}

/// The spec file of a bundle.
pub fn config_file(bundle: &Path) -> PathBuf {
    bundle.join(CONFIG_FILE)
}

/// The rootfs overlay directory of the container whose state directory is `state_dir`.
pub fn rootfs_overlay_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(ROOTFS_OVERLAY_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_a_state_dir() {
        let d = Path::new("/run/zctr/web");
        assert_eq!(bundle_dir(d), Path::new("/run/zctr/web/bundle"));
        assert_eq!(
            config_file(&bundle_dir(d)),
            Path::new("/run/zctr/web/bundle/config.json")
        );
        assert_eq!(
            rootfs_overlay_dir(d),
            Path::new("/run/zctr/web/rootfs-overlay")
        );
    }

    /// Every name is one plain component, and no two collide.
    #[test]
    fn names_are_single_distinct_components() {
        let names = [
            EVENTS_FILE,
            LOCK_FILE,
            RECORD_FILE,
            BUNDLE_DIR,
            ROOTFS_OVERLAY_DIR,
            SHIM_LOG,
            STATUS_FILE,
            SOCKET_FILE,
            LOG_FILE,
            LOG_FILE_OLD,
        ];
        for (i, n) in names.iter().enumerate() {
            assert!(
                !n.is_empty() && !n.contains('/') && !n.starts_with('.'),
                "{n}"
            );
            assert!(!names[..i].contains(n), "{n}");
        }
        assert!(!CONFIG_FILE.contains('/'));
    }
}
