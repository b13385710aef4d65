//! `linux.resources.cpu`: the cpu controller (shares, CFS quota/period/burst,
//! realtime, idle) and the cpuset controller (cpus, mems). cgroup2 takes a
//! weight for shares and `cpu.max` = "quota period" (runc's conversions).

use super::{Ctx, Side};
use oci_spec::runtime::LinuxCpu;

/// cpu.shares (2..262144) to cpu.weight (1..10000), the conversion runc uses.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// cgroup2 `cpu.max` from the spec's quota and period, as runc writes it:
/// "max" unless the quota is positive, the period appended when given.
pub fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let (q, p) = (quota.unwrap_or(0), period.unwrap_or(0));
    if q == 0 && p == 0 {
        return None;
    }
    let mut s = if q > 0 { q.to_string() } else { "max".into() };
    if p != 0 {
        s.push_str(&format!(" {p}"));
    }
    Some(s)
}

pub(super) fn plan(c: &LinuxCpu, cx: &mut Ctx) {
    let cpu_fields = c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.realtime_runtime().is_some()
        || c.realtime_period().is_some()
        || c.idle().is_some();
    if cpu_fields {
        if let Some(side) = cx.side("cpu", "cpu") {
            plan_cpu(c, side, cx);
        }
    }
    let cpus = c.cpus().as_deref().filter(|s| !s.trim().is_empty());
    let mems = c.mems().as_deref().filter(|s| !s.trim().is_empty());
    if cpus.is_some() || mems.is_some() {
        if let Some(side) = cx.side("cpu.cpus", "cpuset") {
            for (part, file, v) in [
                ("cpu.cpus", "cpuset.cpus", cpus),
                ("cpu.mems", "cpuset.mems", mems),
            ] {
                let Some(v) = v else { continue };
                if !v
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
                {
                    cx.refuse(part, format!("{v:?} is not a list such as 0-2,4"));
                    continue;
                }
                cx.write(part, "cpuset", side, file, v.to_string());
            }
        }
    }
}

fn plan_cpu(c: &LinuxCpu, side: Side, cx: &mut Ctx) {
    let v1 = side == Side::V1;
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        if v1 {
            cx.write("cpu.shares", "cpu", side, "cpu.shares", s.to_string());
        } else {
            cx.write(
                "cpu.shares",
                "cpu",
                side,
                "cpu.weight",
                shares_to_weight(s).to_string(),
            );
        }
    }
    let mut bandwidth_ok = true;
    if let Some(q) = c.quota() {
        if q < -1 || (q > 0 && q < 1000) {
            cx.refuse(
                "cpu.quota",
                format!("{q} is neither -1 (unlimited) nor at least 1000 µs"),
            );
            bandwidth_ok = false;
        }
    }
    if let Some(p) = c.period().filter(|p| *p != 0) {
        if !(1000..=1_000_000).contains(&p) {
            cx.refuse(
                "cpu.period",
                format!("{p} is not between 1000 and 1000000 µs"),
            );
            bandwidth_ok = false;
        }
    }
    if bandwidth_ok {
        if v1 {
            // The period first: the quota is checked against it.
            if let Some(p) = c.period().filter(|p| *p != 0) {
                cx.write(
                    "cpu.period",
                    "cpu",
                    side,
                    "cpu.cfs_period_us",
                    p.to_string(),
                );
            }
            if let Some(q) = c.quota().filter(|q| *q != 0) {
                cx.write("cpu.quota", "cpu", side, "cpu.cfs_quota_us", q.to_string());
            }
        } else if let Some(v) = cpu_max(c.quota(), c.period()) {
            let part = if c.quota().is_some() {
                "cpu.quota"
            } else {
                "cpu.period"
            };
            cx.write(part, "cpu", side, "cpu.max", v);
        }
    }
    if let Some(b) = c.burst() {
        let file = if v1 {
            "cpu.cfs_burst_us"
        } else {
            "cpu.max.burst"
        };
        cx.write("cpu.burst", "cpu", side, file, b.to_string());
    }
    if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
        if !v1 {
            let part = if c.realtime_runtime().is_some() {
                "cpu.realtimeRuntime"
            } else {
                "cpu.realtimePeriod"
            };
            cx.refuse(part, "cgroup2 has no realtime group scheduling (cpu.rt_*)");
        } else {
            // The period first, as runc: the runtime must fit in it.
            if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
                cx.write(
                    "cpu.realtimePeriod",
                    "cpu",
                    side,
                    "cpu.rt_period_us",
                    p.to_string(),
                );
            }
            match c.realtime_runtime() {
                Some(r) if r < -1 => cx.refuse(
                    "cpu.realtimeRuntime",
                    format!("{r} is neither -1 (unlimited) nor a number of µs"),
                ),
                Some(r) => cx.write(
                    "cpu.realtimeRuntime",
                    "cpu",
                    side,
                    "cpu.rt_runtime_us",
                    r.to_string(),
                ),
                None => {}
            }
        }
    }
    match c.idle() {
        Some(i @ (0 | 1)) => cx.write("cpu.idle", "cpu", side, "cpu.idle", i.to_string()),
        Some(i) => cx.refuse("cpu.idle", format!("{i} is neither 0 nor 1")),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_hosts::{hybrid, v1, v2};
    use super::super::{plan, Host, Plan, Target};
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxResourcesBuilder};

    fn run(c: LinuxCpuBuilder, host: &Host) -> Result<Plan, String> {
        let r = LinuxResourcesBuilder::default()
            .cpu(c.build().unwrap())
            .build()
            .unwrap();
        plan(&r, host).map_err(|e| e.to_string())
    }

    fn files(p: &Plan) -> Vec<(&str, &str)> {
        p.writes
            .iter()
            .map(|w| (w.choices[0].0.as_str(), w.choices[0].1.as_str()))
            .collect()
    }

    fn full() -> LinuxCpuBuilder {
        LinuxCpuBuilder::default()
            .shares(1024u64)
            .quota(50_000)
            .period(100_000u64)
            .burst(10_000u64)
            .cpus("0")
            .mems("0")
            .idle(0)
    }

    #[test]
    fn shares_and_quota_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(
            cpu_max(Some(50_000), Some(100_000)).unwrap(),
            "50000 100000"
        );
        assert_eq!(cpu_max(Some(-1), Some(100_000)).unwrap(), "max 100000");
        assert_eq!(cpu_max(Some(20_000), None).unwrap(), "20000");
        assert_eq!(cpu_max(None, None), None);
    }

    #[test]
    fn cpu_fields_convert_for_v1_and_v2() {
        let p = run(
            full().realtime_period(1_000_000u64).realtime_runtime(0),
            &v1(),
        )
        .unwrap();
        assert_eq!(
            files(&p),
            [
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.cfs_burst_us", "10000"),
                ("cpu.rt_period_us", "1000000"),
                ("cpu.rt_runtime_us", "0"),
                ("cpu.idle", "0"),
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
            ]
        );
        assert_eq!(p.writes[7].target, Target::V1("cpuset"));
        let p = run(full(), &v2()).unwrap();
        assert_eq!(
            files(&p),
            [
                ("cpu.weight", "39"),
                ("cpu.max", "50000 100000"),
                ("cpu.max.burst", "10000"),
                ("cpu.idle", "0"),
                ("cpuset.cpus", "0"),
                ("cpuset.mems", "0"),
            ]
        );
        assert_eq!(p.v2_controllers, ["cpu", "cpuset"]);
        assert!(run(full(), &hybrid()).unwrap().v2_controllers.is_empty());
    }

    #[test]
    fn cpu_fields_the_host_cannot_apply_are_refused() {
        let cases = [
            (
                LinuxCpuBuilder::default().realtime_runtime(1000),
                v2(),
                "linux.resources.cpu.realtimeRuntime: cgroup2 has no realtime group scheduling",
            ),
            (
                LinuxCpuBuilder::default().quota(10),
                v1(),
                "linux.resources.cpu.quota: 10 is neither -1 (unlimited) nor at least 1000 µs",
            ),
            (
                LinuxCpuBuilder::default().period(5u64),
                v2(),
                "linux.resources.cpu.period: 5 is not between 1000 and 1000000 µs",
            ),
            (
                LinuxCpuBuilder::default().idle(2),
                v2(),
                "linux.resources.cpu.idle: 2 is neither 0 nor 1",
            ),
            (
                LinuxCpuBuilder::default().cpus("0;rm"),
                v2(),
                "linux.resources.cpu.cpus: \"0;rm\" is not a list such as 0-2,4",
            ),
            (
                LinuxCpuBuilder::default().mems("0"),
                Host { controllers: Default::default(), ..hybrid() },
                "linux.resources.cpu.cpus: needs the cpuset controller, neither mounted as v1 nor in the cgroup2 root's cgroup.controllers",
            ),
        ];
        for (c, host, want) in cases {
            let e = run(c, &host).unwrap_err();
            assert!(e.contains(want), "{e}\n  wanted: {want}");
        }
    }
}
