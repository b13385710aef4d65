//! What the host offers for limits: which controllers, on which side, and the
//! few kernel facts the conversions depend on. Read once per create/update.

use super::Side;
use crate::Layout;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub layout: Layout,
    /// Every controller limits can be set with, and its side.
    pub controllers: BTreeMap<String, Side>,
    /// The kernel release (`uname -r`).
    pub release: String,
    /// v1 swap accounting (`memory.memsw.*` exist).
    pub memsw: bool,
    /// The huge page sizes of the kernel, as the cgroup files name them (`2MB`, `1GB`).
    pub hugepage_sizes: Vec<String>,
}

impl Host {
    /// Reads the facts for controllers `v1` (mounted v1 controllers and the
    /// memory hierarchy's mount) and the cgroup2 root (its
    /// `cgroup.controllers` are usable when `v2_root` is given).
    pub fn probe(layout: Layout, v1: &[(&str, &Path)], v2_root: Option<&Path>) -> Self {
        let mut controllers = BTreeMap::new();
        if let Some(root) = v2_root {
            let list = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            for c in list.split_whitespace() {
                controllers.insert(c.to_string(), Side::V2);
            }
        }
        for (c, _) in v1 {
            controllers.insert(c.to_string(), Side::V1);
        }
        let memsw = v1
            .iter()
            .find(|(c, _)| *c == "memory")
            .is_some_and(|(_, m)| m.join("memory.memsw.limit_in_bytes").exists());
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        Self {
            layout,
            controllers,
            release,
            memsw,
            hugepage_sizes: hugepage_sizes(Path::new("/sys/kernel/mm/hugepages")),
        }
    }

    pub fn side(&self, controller: &str) -> Option<Side> {
        self.controllers.get(controller).copied()
    }

    /// Why `controller` cannot be used here.
    pub fn missing(&self, controller: &str) -> String {
        let v1_only = matches!(controller, "net_cls" | "net_prio" | "devices");
        match (self.layout, v1_only) {
            (Layout::V2, true) => {
                format!("needs the v1 {controller} controller, and this host has cgroup2 only")
            }
            (Layout::V2, false) => format!(
                "needs the {controller} controller, not in the cgroup2 root's cgroup.controllers"
            ),
            (Layout::V1, _) => format!("needs the v1 {controller} controller, not mounted"),
            (Layout::Hybrid, true) => format!("needs the v1 {controller} controller, not mounted"),
            (Layout::Hybrid, false) => format!(
                "needs the {controller} controller, neither mounted as v1 nor in the cgroup2 \
                 root's cgroup.controllers"
            ),
        }
    }

    /// (major, minor) of the kernel release; (0, 0) when unreadable.
    pub fn kernel(&self) -> (u32, u32) {
        let mut it = self
            .release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }

    /// The release without its local suffix (`6.18` of `6.18.44-fc`).
    pub fn kernel_short(&self) -> String {
        let (a, b) = self.kernel();
        format!("{a}.{b}")
    }
}

/// `hugepages-2048kB` → `2MB`, `hugepages-1048576kB` → `1GB` (the names of
/// the hugetlb cgroup files).
fn hugepage_sizes(dir: &Path) -> Vec<String> {
    let mut out: Vec<(u64, String)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some((kb, size_name(kb)))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, n)| n).collect()
}

/// A size in kB as the kernel names hugetlb files: the largest unit that
/// divides it (`64KB`, `2MB`, `1GB`).
pub fn size_name(kb: u64) -> String {
    if kb >= 1 << 20 && kb.is_multiple_of(1 << 20) {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb.is_multiple_of(1 << 10) {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_page_sizes_are_named_like_the_kernel_files() {
        assert_eq!(size_name(2048), "2MB");
        assert_eq!(size_name(1_048_576), "1GB");
        assert_eq!(size_name(64), "64KB");
        assert_eq!(size_name(32_768), "32MB");
    }

    #[test]
    fn kernel_versions_parse_from_the_release() {
        let h = super::super::test_hosts::v1();
        assert_eq!(h.kernel(), (6, 18));
        let h = Host {
            release: "5.4.0-150-generic".into(),
            ..h
        };
        assert_eq!(h.kernel(), (5, 4));
        assert_eq!(h.kernel_short(), "5.4");
    }
}
