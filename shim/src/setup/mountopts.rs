//! fstab-style mount options → mount(2) flags, propagation and data string.

use libc::c_ulong;

/// A parsed option list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags to set.
    pub flags: c_ulong,
    /// Propagation flags (MS_PRIVATE, MS_SLAVE, ... possibly with MS_REC), applied separately.
    pub propagation: c_ulong,
    /// Options the filesystem itself interprets, comma-joined.
    pub data: String,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `rbind` was given.
    pub recursive: bool,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)) was given.
    pub idmap: Option<bool>,
}

impl MountOptions {
    #[cfg(test)]
    pub fn readonly(&self) -> bool {
        self.flags & libc::MS_RDONLY != 0
    }
}

/// Parses an option list. Unknown options go to the filesystem as data.
pub fn parse(options: &[String]) -> MountOptions {
    let mut out = MountOptions::default();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let opt = opt.as_str();
        // (set, clear)
        let flag: Option<(c_ulong, c_ulong)> = match opt {
            "defaults" => Some((0, 0)),
            "ro" => Some((libc::MS_RDONLY, 0)),
            "rw" => Some((0, libc::MS_RDONLY)),
            "suid" => Some((0, libc::MS_NOSUID)),
            "nosuid" => Some((libc::MS_NOSUID, 0)),
            "dev" => Some((0, libc::MS_NODEV)),
            "nodev" => Some((libc::MS_NODEV, 0)),
            "exec" => Some((0, libc::MS_NOEXEC)),
            "noexec" => Some((libc::MS_NOEXEC, 0)),
            "sync" => Some((libc::MS_SYNCHRONOUS, 0)),
            "async" => Some((0, libc::MS_SYNCHRONOUS)),
            "dirsync" => Some((libc::MS_DIRSYNC, 0)),
            "remount" => Some((libc::MS_REMOUNT, 0)),
            "mand" => Some((libc::MS_MANDLOCK, 0)),
            "nomand" => Some((0, libc::MS_MANDLOCK)),
            "atime" => Some((0, libc::MS_NOATIME)),
            "noatime" => Some((libc::MS_NOATIME, 0)),
            "diratime" => Some((0, libc::MS_NODIRATIME)),
            "nodiratime" => Some((libc::MS_NODIRATIME, 0)),
            "relatime" => Some((libc::MS_RELATIME, 0)),
            "norelatime" => Some((0, libc::MS_RELATIME)),
            "strictatime" => Some((libc::MS_STRICTATIME, 0)),
            "nostrictatime" => Some((0, libc::MS_STRICTATIME)),
            "nosymfollow" => Some((256, 0)),
            "symfollow" => Some((0, 256)),
            _ => None,
        };
        if let Some((set, clear)) = flag {
            out.flags = (out.flags | set) & !clear;
            continue;
        }
        let prop = match opt {
            "private" => Some(libc::MS_PRIVATE),
            "rprivate" => Some(libc::MS_PRIVATE | libc::MS_REC),
            "shared" => Some(libc::MS_SHARED),
            "rshared" => Some(libc::MS_SHARED | libc::MS_REC),
            "slave" => Some(libc::MS_SLAVE),
            "rslave" => Some(libc::MS_SLAVE | libc::MS_REC),
            "unbindable" => Some(libc::MS_UNBINDABLE),
            "runbindable" => Some(libc::MS_UNBINDABLE | libc::MS_REC),
            _ => None,
        };
        if let Some(p) = prop {
            out.propagation = p;
            continue;
        }
        match opt {
            "bind" => out.bind = true,
            "rbind" => {
                out.bind = true;
                out.recursive = true;
            }
            "idmap" => out.idmap = Some(out.idmap.unwrap_or(false)),
            "ridmap" => out.idmap = Some(true),
            // A runtime hint with no meaning here.
            "tmpcopyup" => {}
            other => data.push(other),
        }
    }
    out.data = data.join(",");
    out
}

/// Parses a rootfsPropagation value.
pub fn propagation(name: &str) -> Option<c_ulong> {
    Some(match name {
        "private" => libc::MS_PRIVATE,
        "rprivate" => libc::MS_PRIVATE | libc::MS_REC,
        "shared" => libc::MS_SHARED,
        "rshared" => libc::MS_SHARED | libc::MS_REC,
        "slave" => libc::MS_SLAVE,
        "rslave" => libc::MS_SLAVE | libc::MS_REC,
        "unbindable" => libc::MS_UNBINDABLE,
        "runbindable" => libc::MS_UNBINDABLE | libc::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_propagation_are_split() {
        let o = opts(&["nosuid", "noexec", "mode=755", "size=65536k", "rprivate"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_NOEXEC);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert_eq!(o.propagation, libc::MS_PRIVATE | libc::MS_REC);
        assert!(!o.bind);
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = opts(&["ro", "rw", "rbind"]);
        assert!(!o.readonly());
        assert!(o.bind && o.recursive);
        assert!(opts(&["rw", "ro"]).readonly());
    }

    #[test]
    fn idmap_options_are_recognised() {
        assert_eq!(opts(&["rbind"]).idmap, None);
        assert_eq!(opts(&["rbind", "idmap"]).idmap, Some(false));
        assert_eq!(opts(&["bind", "ridmap"]).idmap, Some(true));
        assert_eq!(opts(&["ridmap", "idmap"]).idmap, Some(true));
        assert_eq!(opts(&["idmap"]).data, "");
    }

    #[test]
    fn rootfs_propagation_names() {
        assert_eq!(propagation("rslave"), Some(libc::MS_SLAVE | libc::MS_REC));
        assert_eq!(propagation("bogus"), None);
    }
}
