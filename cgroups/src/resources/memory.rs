//! `linux.resources.memory`: v1 `memory.*_in_bytes` files, cgroup2
//! `memory.max`/`low`/`swap.max`. Swap in the spec is memory+swap (the v1
//! meaning); cgroup2 wants the swap alone: `swap - limit`, as runc converts.

use super::{Ctx, Restore, Side};
use oci_spec::runtime::LinuxMemory;

/// `-1` (unlimited) or a positive number of bytes; `0` is "not set" (runc).
fn bytes(v: i64) -> Result<Option<String>, String> {
    match v {
        0 => Ok(None),
        -1 => Ok(Some("-1".into())),
        v if v > 0 => Ok(Some(v.to_string())),
        v => Err(format!(
            "{v} is neither -1 (unlimited) nor a number of bytes"
        )),
    }
}

/// A v1 value as cgroup2 writes it (`-1` → `max`).
fn v2_value(v: String) -> String {
    if v == "-1" {
        "max".into()
    } else {
        v
    }
}

/// cgroup2 `memory.swap.max` from the spec's memory+swap and memory limit,
/// the way runc converts it; `None` when nothing is to be written.
pub fn swap_v2(swap: i64, limit: Option<i64>) -> Result<Option<String>, String> {
    let limit = limit.unwrap_or(0);
    match swap {
        0 => return Ok(None),
        -1 => return Ok(Some("max".into())),
        s if s < -1 => {
            return Err(format!(
                "{s} is neither -1 (unlimited) nor a number of bytes"
            ))
        }
        _ => {}
    }
    if limit <= 0 {
        return Err(
            "cgroup2 sets swap alone (memory+swap minus memory.limit): needs a memory.limit".into(),
        );
    }
    if swap < limit {
        return Err(format!(
            "memory+swap ({swap}) is below memory.limit ({limit}); it includes the memory"
        ));
    }
    Ok(Some((swap - limit).to_string()))
}

pub(super) fn plan(m: &LinuxMemory, cx: &mut Ctx) {
    let any = m.limit().is_some()
        || m.reservation().is_some()
        || m.swap().is_some()
        || m.kernel().is_some()
        || m.kernel_tcp().is_some()
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
        || m.use_hierarchy().is_some();
    if !any {
        return;
    }
    let Some(side) = cx.side("memory", "memory") else {
        return;
    };
    let v1 = side == Side::V1;
    let kernel = cx.host.kernel();
    let release = cx.host.kernel_short();

    let limit = match m.limit().map(bytes).transpose() {
        Ok(v) => v.flatten(),
        Err(e) => {
            cx.refuse("memory.limit", e);
            None
        }
    };
    if let Some(l) = &limit {
        let (file, value) = if v1 {
            ("memory.limit_in_bytes", l.clone())
        } else {
            ("memory.max", v2_value(l.clone()))
        };
        cx.write("memory.limit", "memory", side, file, value);
    }
    match m.reservation().map(bytes).transpose() {
        Ok(Some(Some(r))) => {
            let (file, value) = if v1 {
                ("memory.soft_limit_in_bytes", r)
            } else {
                ("memory.low", v2_value(r))
            };
            cx.write("memory.reservation", "memory", side, file, value);
        }
        Ok(_) => {}
        Err(e) => cx.refuse("memory.reservation", e),
    }
    // Swap (memory+swap); an unlimited memory lifts memory+swap too on v1,
    // else the kernel refuses a limit above memory+swap (runc does the same).
    let swap = match (m.swap(), limit.as_deref()) {
        (None, Some("-1")) if v1 && cx.host.memsw => Some(-1),
        (s, _) => s,
    };
    if let Some(swap) = swap {
        if v1 {
            match bytes(swap) {
                Ok(None) => {}
                Ok(Some(_)) if !cx.host.memsw => cx.refuse(
                    "memory.swap",
                    "swap accounting is off on this kernel (no memory.memsw.limit_in_bytes; \
                     boot with swapaccount=1)",
                ),
                Ok(Some(v)) => {
                    if let (Some(l), true) = (m.limit(), swap > 0) {
                        if l > 0 && swap < l {
                            cx.refuse(
                                "memory.swap",
                                format!(
                                    "memory+swap ({swap}) is below memory.limit ({l}); it \
                                     includes the memory"
                                ),
                            );
                            return;
                        }
                    }
                    cx.write(
                        "memory.swap",
                        "memory",
                        side,
                        "memory.memsw.limit_in_bytes",
                        v,
                    )
                }
                Err(e) => cx.refuse("memory.swap", e),
            }
        } else {
            match swap_v2(swap, m.limit()) {
                Ok(Some(v)) => cx.write("memory.swap", "memory", side, "memory.swap.max", v),
                Ok(None) => {}
                Err(e) => cx.refuse("memory.swap", e),
            }
        }
    }
    if let Some(k) = m.kernel() {
        if !v1 {
            cx.refuse(
                "memory.kernel",
                "kernel memory limits do not exist on cgroup2",
            );
        } else if kernel >= (6, 1) {
            cx.refuse(
                "memory.kernel",
                format!(
                    "kernel memory limits do not exist on this kernel ({release}): writes to \
                     memory.kmem.limit_in_bytes have no effect since Linux 6.1"
                ),
            );
        } else {
            match bytes(k) {
                Ok(Some(v)) => cx.write(
                    "memory.kernel",
                    "memory",
                    side,
                    "memory.kmem.limit_in_bytes",
                    v,
                ),
                Ok(None) => {}
                Err(e) => cx.refuse("memory.kernel", e),
            }
        }
    }
    if let Some(k) = m.kernel_tcp() {
        if !v1 {
            cx.refuse(
                "memory.kernelTCP",
                "cgroup2 has no separate TCP buffer limit (memory.max counts socket buffers)",
            );
        } else {
            match bytes(k) {
                Ok(Some(v)) => cx.write(
                    "memory.kernelTCP",
                    "memory",
                    side,
                    "memory.kmem.tcp.limit_in_bytes",
                    v,
                ),
                Ok(None) => {}
                Err(e) => cx.refuse("memory.kernelTCP", e),
            }
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            cx.refuse("memory.swappiness", format!("{s} is above 100"));
        } else if !v1 {
            cx.refuse(
                "memory.swappiness",
                "cgroup2 has no per-cgroup swappiness (only the system-wide vm.swappiness)",
            );
        } else {
            cx.write(
                "memory.swappiness",
                "memory",
                side,
                "memory.swappiness",
                s.to_string(),
            );
        }
    }
    match (m.disable_oom_killer(), v1) {
        (Some(d), true) => cx.write_with(
            "memory.disableOOMKiller",
            "memory",
            side,
            vec![("memory.oom_control".into(), u8::from(d).to_string())],
            Restore::Field("oom_kill_disable"),
        ),
        (Some(true), false) => cx.refuse(
            "memory.disableOOMKiller",
            "cgroup2 cannot turn the OOM killer off for a cgroup",
        ),
        _ => {}
    }
    match (m.use_hierarchy(), v1) {
        (Some(false), false) => cx.refuse(
            "memory.useHierarchy",
            "cgroup2 memory accounting is always hierarchical",
        ),
        (Some(false), true) if kernel >= (5, 11) => cx.refuse(
            "memory.useHierarchy",
            format!(
                "memory accounting is always hierarchical on this kernel ({release}; since \
                 Linux 5.11)"
            ),
        ),
        (Some(u), true) => cx.write(
            "memory.useHierarchy",
            "memory",
            side,
            "memory.use_hierarchy",
            u8::from(u).to_string(),
        ),
        _ => {}
    }
    if m.check_before_update() == Some(true) {
        if let Some(l) = m.limit().filter(|l| *l > 0) {
            cx.check_usage(
                side,
                if v1 {
                    "memory.usage_in_bytes"
                } else {
                    "memory.current"
                },
                l as u64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_hosts::{hybrid, v1, v1_old, v2};
    use super::super::{plan, Host, Plan, Target};
    use oci_spec::runtime::{LinuxMemoryBuilder, LinuxResourcesBuilder};

    fn files(p: &Plan) -> Vec<(String, String)> {
        p.writes
            .iter()
            .map(|w| (w.choices[0].0.clone(), w.choices[0].1.clone()))
            .collect()
    }

    fn run(m: LinuxMemoryBuilder, host: &Host) -> Result<Plan, String> {
        let r = LinuxResourcesBuilder::default()
            .memory(m.build().unwrap())
            .build()
            .unwrap();
        plan(&r, host).map_err(|e| e.to_string())
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn memory_limits_convert_for_v1_and_v2() {
        let m = || {
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .reservation(32 << 20)
                .swap(96 << 20)
                .swappiness(10u64)
                .disable_oom_killer(false)
                .use_hierarchy(true)
                .kernel_tcp(1 << 20)
        };
        let p = run(m(), &v1()).unwrap();
        assert_eq!(
            files(&p),
            pairs(&[
                ("memory.limit_in_bytes", "67108864"),
                ("memory.soft_limit_in_bytes", "33554432"),
                ("memory.memsw.limit_in_bytes", "100663296"),
                ("memory.kmem.tcp.limit_in_bytes", "1048576"),
                ("memory.swappiness", "10"),
                ("memory.oom_control", "0"),
                ("memory.use_hierarchy", "1"),
            ])
        );
        assert!(p.writes.iter().all(|w| w.target == Target::V1("memory")));
        let p = run(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .reservation(-1)
                .swap(96 << 20)
                .use_hierarchy(true),
            &v2(),
        )
        .unwrap();
        assert_eq!(
            files(&p),
            pairs(&[
                ("memory.max", "67108864"),
                ("memory.low", "max"),
                ("memory.swap.max", "33554432"),
            ])
        );
        assert_eq!(p.v2_controllers, ["memory"]);
        // Unlimited memory lifts memory+swap on v1, is "max" on v2.
        let p = run(LinuxMemoryBuilder::default().limit(-1), &v1()).unwrap();
        assert_eq!(
            files(&p),
            pairs(&[
                ("memory.limit_in_bytes", "-1"),
                ("memory.memsw.limit_in_bytes", "-1")
            ])
        );
        let p = run(LinuxMemoryBuilder::default().limit(-1).swap(-1), &v2()).unwrap();
        assert_eq!(
            files(&p),
            pairs(&[("memory.max", "max"), ("memory.swap.max", "max")])
        );
        // Kernel memory on an old v1 kernel.
        let p = run(LinuxMemoryBuilder::default().kernel(1 << 20), &v1_old()).unwrap();
        assert_eq!(
            files(&p),
            pairs(&[("memory.kmem.limit_in_bytes", "1048576")])
        );
    }

    #[test]
    fn swap_converts_like_runc() {
        use super::swap_v2;
        assert_eq!(swap_v2(0, Some(100)), Ok(None));
        assert_eq!(swap_v2(-1, None), Ok(Some("max".into())));
        assert_eq!(swap_v2(300, Some(100)), Ok(Some("200".into())));
        assert_eq!(swap_v2(100, Some(100)), Ok(Some("0".into())));
        assert!(swap_v2(50, Some(100))
            .unwrap_err()
            .contains("below memory.limit"));
        assert!(swap_v2(50, None)
            .unwrap_err()
            .contains("needs a memory.limit"));
        assert!(swap_v2(50, Some(-1))
            .unwrap_err()
            .contains("needs a memory.limit"));
    }

    #[test]
    fn memory_fields_the_host_cannot_apply_are_refused() {
        let cases: Vec<(LinuxMemoryBuilder, Host, &str)> = vec![
            (
                LinuxMemoryBuilder::default().kernel(1 << 20),
                v1(),
                "linux.resources.memory.kernel: kernel memory limits do not exist on this kernel (6.18)",
            ),
            (
                LinuxMemoryBuilder::default().kernel(1 << 20),
                v2(),
                "linux.resources.memory.kernel: kernel memory limits do not exist on cgroup2",
            ),
            (
                LinuxMemoryBuilder::default().kernel_tcp(1 << 20),
                v2(),
                "linux.resources.memory.kernelTCP: cgroup2 has no separate TCP buffer limit",
            ),
            (
                LinuxMemoryBuilder::default().swappiness(10u64),
                v2(),
                "linux.resources.memory.swappiness: cgroup2 has no per-cgroup swappiness",
            ),
            (
                LinuxMemoryBuilder::default().swappiness(101u64),
                v1(),
                "linux.resources.memory.swappiness: 101 is above 100",
            ),
            (
                LinuxMemoryBuilder::default().disable_oom_killer(true),
                v2(),
                "linux.resources.memory.disableOOMKiller: cgroup2 cannot turn the OOM killer off",
            ),
            (
                LinuxMemoryBuilder::default().use_hierarchy(false),
                hybrid(),
                "linux.resources.memory.useHierarchy: memory accounting is always hierarchical on this kernel (6.18",
            ),
            (
                LinuxMemoryBuilder::default().use_hierarchy(false),
                v2(),
                "linux.resources.memory.useHierarchy: cgroup2 memory accounting is always hierarchical",
            ),
            (
                LinuxMemoryBuilder::default().limit(-5),
                v1(),
                "linux.resources.memory.limit: -5 is neither -1 (unlimited) nor a number of bytes",
            ),
            (
                LinuxMemoryBuilder::default().limit(100).swap(50),
                v1(),
                "linux.resources.memory.swap: memory+swap (50) is below memory.limit (100)",
            ),
            (
                LinuxMemoryBuilder::default().swap(1 << 30),
                v2(),
                "linux.resources.memory.swap: cgroup2 sets swap alone",
            ),
            (
                LinuxMemoryBuilder::default().swap(1 << 30),
                Host { memsw: false, ..v1() },
                "linux.resources.memory.swap: swap accounting is off on this kernel",
            ),
            (
                LinuxMemoryBuilder::default().limit(1 << 20),
                Host { controllers: Default::default(), ..v1() },
                "linux.resources.memory: needs the v1 memory controller, not mounted",
            ),
        ];
        for (m, host, want) in cases {
            let e = run(m, &host).unwrap_err();
            assert!(e.contains(want), "{e}\n  wanted: {want}");
        }
    }

    #[test]
    fn check_before_update_compares_the_usage() {
        let p = run(
            LinuxMemoryBuilder::default()
                .limit(1 << 20)
                .check_before_update(true),
            &v2(),
        )
        .unwrap();
        let c = p.usage_check.unwrap();
        assert_eq!((c.file.as_str(), c.limit), ("memory.current", 1 << 20));
        let p = run(LinuxMemoryBuilder::default().limit(1 << 20), &v1()).unwrap();
        assert!(p.usage_check.is_none());
    }
}
