//! `linux.resources.hugepageLimits`: `hugetlb.<size>.limit_in_bytes` (v1) or
//! `hugetlb.<size>.max` (cgroup2) for each huge page size the kernel has.

use super::{Ctx, Side};
use oci_spec::runtime::LinuxHugepageLimit;

pub(super) fn plan(limits: &[LinuxHugepageLimit], cx: &mut Ctx) {
    if limits.is_empty() {
        return;
    }
    let Some(side) = cx.side("hugepageLimits", "hugetlb") else {
        return;
    };
    for l in limits {
        let size = l.page_size();
        if !cx.host.hugepage_sizes.iter().any(|s| s == size) {
            let have = cx.host.hugepage_sizes.join(", ");
            cx.refuse(
                "hugepageLimits.pageSize",
                format!("this kernel has no {size:?} huge pages (it has: {have})"),
            );
            continue;
        }
        let value = match (l.limit(), side) {
            (v, _) if v < -1 => {
                cx.refuse(
                    "hugepageLimits.limit",
                    format!("{v} is neither -1 (unlimited) nor a number of bytes"),
                );
                continue;
            }
            (-1, Side::V2) => "max".to_string(),
            (v, _) => v.to_string(),
        };
        let file = match side {
            Side::V1 => format!("hugetlb.{size}.limit_in_bytes"),
            Side::V2 => format!("hugetlb.{size}.max"),
        };
        cx.write("hugepageLimits", "hugetlb", side, &file, value);
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_hosts::{hybrid, v1, v2};
    use super::super::{plan, Host, Target};
    use oci_spec::runtime::{LinuxHugepageLimitBuilder, LinuxResourcesBuilder};

    fn run(size: &str, limit: i64, host: &Host) -> Result<Vec<(String, String, Target)>, String> {
        let r = LinuxResourcesBuilder::default()
            .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
                .page_size(size)
                .limit(limit)
                .build()
                .unwrap()])
            .build()
            .unwrap();
        let p = plan(&r, host).map_err(|e| e.to_string())?;
        Ok(p.writes
            .into_iter()
            .map(|w| (w.choices[0].0.clone(), w.choices[0].1.clone(), w.target))
            .collect())
    }

    #[test]
    fn huge_page_limits_go_where_the_controller_is() {
        assert_eq!(
            run("2MB", 1 << 21, &v1()).unwrap(),
            [(
                "hugetlb.2MB.limit_in_bytes".into(),
                "2097152".into(),
                Target::V1("hugetlb")
            )]
        );
        assert_eq!(
            run("1GB", -1, &v2()).unwrap(),
            [("hugetlb.1GB.max".into(), "max".into(), Target::V2)]
        );
        // This hybrid host has hugetlb on the cgroup2 mount only.
        assert_eq!(
            run("2MB", 1 << 21, &hybrid()).unwrap(),
            [("hugetlb.2MB.max".into(), "2097152".into(), Target::V2)]
        );
        let e = run("4MB", 1, &v2()).unwrap_err();
        assert_eq!(
            e,
            "linux.resources.hugepageLimits.pageSize: this kernel has no \"4MB\" huge pages (it has: 2MB, 1GB)"
        );
        let e = run(
            "2MB",
            1,
            &Host {
                controllers: Default::default(),
                ..v1()
            },
        )
        .unwrap_err();
        assert_eq!(
            e,
            "linux.resources.hugepageLimits: needs the v1 hugetlb controller, not mounted"
        );
    }
}
