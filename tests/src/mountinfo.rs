//! A minimal reader of /proc/self/mountinfo for the helpers (unmounting scratch
//! dirs, finding cgroup hierarchies).

use std::path::PathBuf;

/// The fields of a mountinfo line the helpers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    /// Root of the mount within its filesystem.
    pub root: String,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
    pub super_options: Vec<String>,
}

/// Decode the kernel's `\NNN` octal escapes.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = b[i + 1..i + 4]
                .iter()
                .fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let mut post = post.split(' ');
            Some(MountEntry {
                mount_id: pre.first()?.parse().ok()?,
                root: unescape(pre.get(3)?),
                mount_point: PathBuf::from(unescape(pre.get(4)?)),
                fs_type: post.next()?.to_string(),
                source: unescape(post.next()?),
                super_options: post
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The mounts of the calling process.
pub fn read_own() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let m = parse(
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:5 - cgroup cgroup rw,memory\n\
             90 27 0:50 /sub /tmp/a\\040b rw - tmpfs none rw,size=10k\nbad\n",
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(m[0].super_options, vec!["rw", "memory"]);
        assert_eq!(m[1].mount_id, 90);
        assert_eq!(m[1].root, "/sub");
        assert_eq!(m[1].mount_point, PathBuf::from("/tmp/a b"));
        assert_eq!(m[1].source, "none");
    }
}
