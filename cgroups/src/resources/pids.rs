//! `linux.resources.pids`: `pids.max` on both sides (0 or less: "max").

use super::Ctx;
use oci_spec::runtime::LinuxPids;

pub fn pids_max(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    }
}

pub(super) fn plan(p: &LinuxPids, cx: &mut Ctx) {
    if let Some(side) = cx.side("pids", "pids") {
        cx.write("pids.limit", "pids", side, "pids.max", pids_max(p.limit()));
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_hosts::{v1, v2};
    use super::super::{plan, Host};
    use super::*;
    use oci_spec::runtime::{LinuxPidsBuilder, LinuxResourcesBuilder};

    #[test]
    fn pids_limits_convert_and_need_the_controller() {
        assert_eq!(pids_max(32), "32");
        assert_eq!(pids_max(0), "max");
        assert_eq!(pids_max(-1), "max");
        let r = LinuxResourcesBuilder::default()
            .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
            .build()
            .unwrap();
        for host in [v1(), v2()] {
            let p = plan(&r, &host).unwrap();
            assert_eq!(
                p.writes[0].choices,
                [("pids.max".to_string(), "32".to_string())]
            );
        }
        let none = Host {
            controllers: Default::default(),
            ..v2()
        };
        let e = plan(&r, &none).unwrap_err().to_string();
        assert_eq!(
            e,
            "linux.resources.pids: needs the pids controller, not in the cgroup2 root's cgroup.controllers"
        );
    }
}
