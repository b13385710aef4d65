//! `linux.resources.rdma`: `rdma.max` lines, `<device> hca_handle=N
//! hca_object=M`, the same file on v1 and cgroup2.

use super::{Ctx, Restore};
use oci_spec::runtime::LinuxRdma;
use std::collections::HashMap;

/// The `rdma.max` line for `dev`; `None` when it limits nothing.
pub fn rdma_line(dev: &str, r: &LinuxRdma) -> Option<String> {
    let mut s = dev.to_string();
    if let Some(h) = r.hca_handles() {
        s.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = r.hca_objects() {
        s.push_str(&format!(" hca_object={o}"));
    }
    (s.len() > dev.len()).then_some(s)
}

pub(super) fn plan(devices: &HashMap<String, LinuxRdma>, cx: &mut Ctx) {
    if devices.is_empty() {
        return;
    }
    let Some(side) = cx.side("rdma", "rdma") else {
        return;
    };
    let mut names: Vec<&String> = devices.keys().collect();
    names.sort();
    for dev in names {
        if dev.is_empty() || dev.contains(|c: char| c.is_whitespace() || c == '\0') {
            cx.refuse("rdma", format!("{dev:?} is not an RDMA device name"));
            continue;
        }
        let Some(line) = rdma_line(dev, &devices[dev]) else {
            cx.refuse(
                "rdma",
                format!("{dev}: neither hcaHandles nor hcaObjects is given"),
            );
            continue;
        };
        let restore = Restore::Line {
            key: dev.clone(),
            reset: format!("{dev} hca_handle=max hca_object=max"),
        };
        cx.write_with(
            "rdma",
            "rdma",
            side,
            vec![("rdma.max".into(), line)],
            restore,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan;
    use super::super::test_hosts::{hybrid, v2};
    use oci_spec::runtime::{LinuxRdma, LinuxRdmaBuilder, LinuxResourcesBuilder};
    use std::collections::HashMap;

    fn one(r: LinuxRdma) -> HashMap<String, LinuxRdma> {
        [("mlx5_0".to_string(), r)].into()
    }

    #[test]
    fn rdma_limits_are_rdma_max_lines_or_refused() {
        let r = LinuxResourcesBuilder::default()
            .rdma(one(LinuxRdmaBuilder::default()
                .hca_handles(2u32)
                .hca_objects(100u32)
                .build()
                .unwrap()))
            .build()
            .unwrap();
        let p = plan(&r, &v2()).unwrap();
        assert_eq!(
            p.writes[0].choices[0].1,
            "mlx5_0 hca_handle=2 hca_object=100"
        );
        assert_eq!(p.v2_controllers, ["rdma"]);
        assert_eq!(
            plan(&r, &hybrid()).unwrap_err().to_string(),
            "linux.resources.rdma: needs the rdma controller, neither mounted as v1 nor in the cgroup2 root's cgroup.controllers"
        );
        let empty = LinuxResourcesBuilder::default()
            .rdma(one(LinuxRdmaBuilder::default().build().unwrap()))
            .build()
            .unwrap();
        assert_eq!(
            plan(&empty, &v2()).unwrap_err().to_string(),
            "linux.resources.rdma: mlx5_0: neither hcaHandles nor hcaObjects is given"
        );
    }
}
