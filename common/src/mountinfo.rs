//! `/proc/<pid>/mountinfo` text: its lines, and the cgroup hierarchies among
//! them. Pure: the callers read the file (manager, shim, test helpers).
//!
//! A line is `ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS`
//! (proc(5)); the kernel escapes space, tab, newline and backslash in paths
//! as `\040`, `\011`, `\012` and `\134`.

use std::path::PathBuf;

/// The fields of one mountinfo line that zctr uses. Paths are unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_id: u32,
    /// Root of the mount within its filesystem (`/` for a whole tree).
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
    /// The per-superblock options, split at `,` (empty ones dropped).
    pub super_options: Vec<String>,
}

/// Decodes the kernel's `\NNN` octal escapes; anything else is kept as is.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = digits.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line; `None` when it is malformed.
pub fn parse_line(line: &str) -> Option<Mount> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let mount_id = l.next()?.parse().ok()?;
    let root = unescape(l.nth(2)?);
    let mount_point = PathBuf::from(unescape(l.next()?));
    let mut r = right.split(' ');
    Some(Mount {
        mount_id,
        root,
        mount_point,
        fs_type: r.next()?.to_string(),
        source: unescape(r.next()?),
        super_options: r
            .next()
            .unwrap_or("")
            .split(',')
            .filter(|o| !o.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// Every well-formed line, in order; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// True for cgroup2.
    pub unified: bool,
    /// v1: the super options other than `rw`/`ro` (the controllers, a
    /// `name=`, and flags such as `xattr`); they identify the hierarchy.
    /// Empty for cgroup2.
    pub controllers: Vec<String>,
}

impl CgroupMount {
    /// Below `/sys/fs/cgroup`, where the host mounts its hierarchies.
    fn standard(&self) -> bool {
        self.mount_point.starts_with("/sys/fs/cgroup")
    }
}

/// The cgroup hierarchies of a mountinfo text: one mount per hierarchy (the
/// cgroup2 one, and one per v1 controller set), whole trees only (root `/`:
/// a bind of a sub-cgroup is not a hierarchy's mount), the first one seen
/// unless a later mount of the same hierarchy is below `/sys/fs/cgroup` and
/// the first is not (a container's view of the host's hierarchies, mounted
/// elsewhere, may come first). In order of first appearance.
pub fn cgroup_mounts(text: &str) -> Vec<CgroupMount> {
    let mut found: Vec<CgroupMount> = Vec::new();
    for m in parse(text) {
        let unified = match m.fs_type.as_str() {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        if m.root != "/" {
            continue;
        }
        let controllers = if unified {
            Vec::new()
        } else {
            m.super_options
                .into_iter()
                .filter(|o| o != "rw" && o != "ro")
                .collect()
        };
        let mount = CgroupMount {
            mount_point: m.mount_point,
            unified,
            controllers,
        };
        match found
            .iter_mut()
            .find(|f| f.unified == unified && f.controllers == mount.controllers)
        {
            Some(f) => {
                if mount.standard() && !f.standard() {
                    *f = mount;
                }
            }
            None => found.push(mount),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn points(ms: &[CgroupMount]) -> Vec<String> {
        ms.iter()
            .map(|m| m.mount_point.display().to_string())
            .collect()
    }

    #[test]
    fn lines_are_parsed_and_unescaped() {
        let m = parse(
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory\n\
             90 27 0:50 /sub\\134x /tmp/a\\040b\\011c rw - tmpfs my\\040src rw,size=10k\n\
             bad\n\
             1 2 3 - x\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_id, 35);
        assert_eq!(m[0].mount_point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(m[0].fs_type, "cgroup");
        assert_eq!(m[0].super_options, ["rw", "memory"]);
        assert_eq!(m[1].mount_id, 90);
        assert_eq!(m[1].root, "/sub\\x");
        assert_eq!(m[1].mount_point, Path::new("/tmp/a b\tc"));
        assert_eq!(m[1].source, "my src");
    }

    #[test]
    fn unescape_keeps_what_is_not_an_escape() {
        assert_eq!(unescape("a\\012b"), "a\nb");
        assert_eq!(unescape("a\\08"), "a\\08");
        assert_eq!(unescape("a\\"), "a\\");
        assert_eq!(unescape("\\777"), "\\777"); // above a byte
        assert_eq!(unescape("plain"), "plain");
    }

    /// A systemd host with the unified layout.
    const V2: &str = "\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
31 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
";

    /// A systemd host with the hybrid layout (v1 controllers + cgroup2 at unified).
    const HYBRID: &str = "\
25 24 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:5 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:6 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,xattr,name=systemd
28 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,memory
29 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
32 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,pids
33 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
";

    #[test]
    fn v2_host_has_one_unified_mount() {
        let m = cgroup_mounts(V2);
        assert_eq!(
            m,
            [CgroupMount {
                mount_point: "/sys/fs/cgroup".into(),
                unified: true,
                controllers: vec![],
            }]
        );
    }

    #[test]
    fn hybrid_host_has_every_v1_hierarchy_and_the_unified_mount() {
        let m = cgroup_mounts(HYBRID);
        assert_eq!(
            points(&m),
            [
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/pids"
            ]
        );
        assert!(m[0].unified && m[1..].iter().all(|m| !m.unified));
        assert_eq!(m[1].controllers, ["xattr", "name=systemd"]);
        assert_eq!(m[3].controllers, ["cpu", "cpuacct"]);
    }

    #[test]
    fn v1_host_has_no_unified_mount() {
        let v1: String = HYBRID
            .lines()
            .filter(|l| !l.contains(" cgroup2 "))
            .map(|l| format!("{l}\n"))
            .collect();
        let m = cgroup_mounts(&v1);
        assert_eq!(m.len(), 4);
        assert!(m.iter().all(|m| !m.unified));
        assert_eq!(m[1].controllers, ["memory"]);
    }

    #[test]
    fn escaped_mount_points_are_unescaped() {
        let m = cgroup_mounts(
            "28 25 0:26 / /sys/fs/cgroup/cpu\\040x rw - cgroup cgroup rw,cpu\n\
             29 25 0:27 / /mnt/a\\134b\\011c rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(points(&m), ["/sys/fs/cgroup/cpu x", "/mnt/a\\b\tc"]);
    }

    #[test]
    fn one_mount_per_hierarchy_and_whole_trees_only() {
        // A container's view of the host's hierarchies mounted elsewhere
        // first, then the standard ones, then a second mount of pids and a
        // bind of a sub-cgroup; a read-only view is the same hierarchy.
        let text = "\
40 1 0:25 / /tmp/c/rootfs/sys/fs/cgroup/memory ro - cgroup cgroup ro,memory
41 1 0:24 / /tmp/c/rootfs/sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
26 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
27 25 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
28 25 0:26 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
29 1 0:26 / /mnt/pids-again rw - cgroup cgroup rw,pids
50 1 0:25 /zctr/c1 /mnt/c1-memory rw - cgroup cgroup rw,memory
51 1 0:24 /zctr/c1 /mnt/c1-unified rw - cgroup2 cgroup2 rw
";
        let m = cgroup_mounts(text);
        assert_eq!(
            points(&m),
            [
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/pids"
            ]
        );
        // Neither standard: the first stays.
        let m = cgroup_mounts(
            "1 1 0:24 / /a rw - cgroup2 cgroup2 rw\n2 1 0:24 / /b rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(points(&m), ["/a"]);
    }

    #[test]
    fn no_cgroup_mounted_gives_nothing() {
        assert!(cgroup_mounts("31 22 0:5 / /proc rw - proc proc rw\n").is_empty());
        assert!(cgroup_mounts("").is_empty());
    }
}
