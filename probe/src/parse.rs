//! Pure parsers for the /proc files the probe reads. No I/O here.

use serde::Serialize;
use std::collections::BTreeMap;

/// The fields of /proc/self/status the probe reports, keyed by the kernel's names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Status {
    pub fields: BTreeMap<String, String>,
}

impl Status {
    /// Parse `Key:\tvalue` lines; values are trimmed.
    pub fn parse(text: &str) -> Status {
        let fields = text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Status { fields }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// A numeric field ("NoNewPrivs", "Seccomp", "PPid").
    pub fn number(&self, key: &str) -> Option<i64> {
        self.get(key)?.parse().ok()
    }
}

/// One line of /proc/self/uid_map or gid_map.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct IdMapEntry {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Parse a uid_map/gid_map file; malformed lines are skipped.
pub fn id_map(text: &str) -> Vec<IdMapEntry> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace().map(|f| f.parse::<u32>());
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) => Some(IdMapEntry {
                    inside,
                    outside,
                    count,
                }),
                _ => None,
            }
        })
        .collect()
}

/// One mount from /proc/self/mountinfo.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mount {
    pub mount_id: u32,
    pub parent_id: u32,
    /// "major:minor" of the backing device.
    pub dev: String,
    /// Root of the mount inside its filesystem (bind mounts show a subdirectory).
    pub root: String,
    pub mount_point: String,
    /// Per-mount options ("rw", "nosuid", "nodev", "noexec", "relatime", ...).
    pub options: Vec<String>,
    /// Optional fields ("shared:1", "master:2", ...).
    pub propagation: Vec<String>,
    pub fs_type: String,
    pub source: String,
    /// Per-superblock options.
    pub super_options: Vec<String>,
}

/// Undo the kernel's octal escaping of space, tab, newline and backslash ("\040").
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn split_options(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parse one mountinfo line; `None` if it is malformed.
pub fn mountinfo_line(line: &str) -> Option<Mount> {
    let (pre, post) = line.split_once(" - ")?;
    let mut pre = pre.split(' ');
    let mount_id = pre.next()?.parse().ok()?;
    let parent_id = pre.next()?.parse().ok()?;
    let dev = pre.next()?.to_string();
    let root = unescape(pre.next()?);
    let mount_point = unescape(pre.next()?);
    let options = split_options(pre.next()?);
    let propagation = pre.filter(|f| !f.is_empty()).map(str::to_string).collect();
    let mut post = post.split(' ');
    let fs_type = unescape(post.next()?);
    let source = unescape(post.next()?);
    let super_options = post.next().map(split_options).unwrap_or_default();
    Some(Mount {
        mount_id,
        parent_id,
        dev,
        root,
        mount_point,
        options,
        propagation,
        fs_type,
        source,
        super_options,
    })
}

/// Parse a whole mountinfo file, skipping malformed lines.
pub fn mountinfo(text: &str) -> Vec<Mount> {
    text.lines().filter_map(mountinfo_line).collect()
}

/// One line of /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    pub hierarchy_id: u32,
    /// Empty for the cgroup2 line (`0::/path`); "name=systemd" style names are kept.
    pub controllers: Vec<String>,
    pub path: String,
}

/// Parse /proc/self/cgroup.
pub fn cgroup_lines(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let hierarchy_id = it.next()?.parse().ok()?;
            let controllers = split_options(it.next()?);
            let path = it.next()?.to_string();
            Some(CgroupLine {
                hierarchy_id,
                controllers,
                path,
            })
        })
        .collect()
}

/// Interface names listed in /proc/net/dev (after the two header lines).
pub fn net_dev_names(text: &str) -> Vec<String> {
    text.lines()
        .skip(2)
        .filter_map(|l| l.split_once(':'))
        .map(|(name, _)| name.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Parse a sysfs interface `flags` file ("0x1003") and tell whether IFF_UP is set.
pub fn iff_up(flags: &str) -> Option<bool> {
    let f = flags.trim();
    let f = f.strip_prefix("0x").unwrap_or(f);
    u32::from_str_radix(f, 16).ok().map(|v| v & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tzctr-probe\nUmask:\t0022\nPid:\t1\nPPid:\t0\n\
        Uid:\t1000\t1000\t1000\t1000\nGroups:\t \nCapInh:\t0000000000000000\n\
        CapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n\
        CapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";

    #[test]
    fn parses_status() {
        let s = Status::parse(STATUS);
        assert_eq!(s.get("Name"), Some("zctr-probe"));
        assert_eq!(s.get("CapPrm"), Some("00000000a80425fb"));
        assert_eq!(s.get("Groups"), Some(""));
        assert_eq!(s.get("Uid"), Some("1000\t1000\t1000\t1000"));
        assert_eq!(s.number("NoNewPrivs"), Some(1));
        assert_eq!(s.number("Seccomp"), Some(2));
        assert_eq!(s.number("PPid"), Some(0));
        assert_eq!(s.number("Name"), None);
        assert_eq!(s.get("Missing"), None);
    }

    #[test]
    fn parses_id_maps() {
        let m = id_map("         0       1000          1\n         1     100000      65536\nbad\n");
        assert_eq!(
            m,
            vec![
                IdMapEntry {
                    inside: 0,
                    outside: 1000,
                    count: 1
                },
                IdMapEntry {
                    inside: 1,
                    outside: 100000,
                    count: 65536
                },
            ]
        );
        assert_eq!(
            id_map("         0          0 4294967295\n")[0].count,
            u32::MAX
        );
    }

    #[test]
    fn parses_mountinfo() {
        let text = "22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n\
            36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 shared:3 - ext3 /dev/root rw,errors=continue\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
            garbage line\n";
        let m = mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].mount_point, "/proc");
        assert_eq!(m[0].fs_type, "proc");
        assert_eq!(
            m[0].options,
            vec!["rw", "nosuid", "nodev", "noexec", "relatime"]
        );
        assert_eq!(m[0].propagation, vec!["shared:12"]);
        assert_eq!(m[1].mount_id, 36);
        assert_eq!(m[1].parent_id, 35);
        assert_eq!(m[1].dev, "98:0");
        assert_eq!(m[1].root, "/mnt1");
        assert_eq!(m[1].mount_point, "/mnt with space");
        assert_eq!(m[1].propagation, vec!["master:1", "shared:3"]);
        assert_eq!(m[1].source, "/dev/root");
        assert_eq!(m[1].super_options, vec!["rw", "errors=continue"]);
        assert_eq!(m[2].fs_type, "cgroup2");
        assert!(m[2].propagation.is_empty());
    }

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape("a\\040b"), "a b");
        assert_eq!(unescape("tab\\011x\\134y"), "tab\tx\\y");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
        assert_eq!(unescape("not\\999octal"), "not\\999octal");
        assert_eq!(unescape("end\\"), "end\\");
    }

    #[test]
    fn parses_cgroup_lines() {
        let l = cgroup_lines(
            "9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/x\n0::/a:b\n",
        );
        assert_eq!(l.len(), 4);
        assert_eq!(l[0].controllers, vec!["name=systemd"]);
        assert_eq!(l[1].path, "/process_api/abc");
        assert_eq!(l[2].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(l[3].hierarchy_id, 0);
        assert!(l[3].controllers.is_empty());
        assert_eq!(l[3].path, "/a:b");
    }

    #[test]
    fn parses_net() {
        let dev = "Inter-|   Receive\n face |bytes\n    lo: 0 0 0\n  eth0: 1 2 3\n";
        assert_eq!(net_dev_names(dev), vec!["lo", "eth0"]);
        assert_eq!(iff_up("0x9\n"), Some(true));
        assert_eq!(iff_up("0x1002"), Some(false));
        assert_eq!(iff_up("zz"), None);
    }
}
