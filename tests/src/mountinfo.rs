//! /proc/self/mountinfo for the helpers (unmounting scratch dirs, finding
//! cgroup hierarchies): the parser is `common::mountinfo`, the one the
//! manager and the shim use.

pub use common::mountinfo::{parse, unescape, Mount as MountEntry};

/// The mounts of the calling process.
pub fn read_own() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}
