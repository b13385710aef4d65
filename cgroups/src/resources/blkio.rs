//! `linux.resources.blockIO`: the v1 blkio controller (CFQ or BFQ weights,
//! throttling) or the cgroup2 io controller (`io.bfq.weight` or `io.weight`,
//! `io.max`). Weights 10..1000; cgroup2's `io.weight` is 1..10000 (runc's
//! conversion); BFQ takes the weight as it is.

use super::{Ctx, Restore, Side};
use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

/// A blkio weight (10..1000) as cgroup2 `io.weight` (1..10000), as runc converts it.
pub fn weight_to_io(w: u16) -> u64 {
    1 + (u64::from(w).clamp(10, 1000) - 10) * 9999 / 990
}

fn check_weight(w: u16) -> Result<(), String> {
    if (10..=1000).contains(&w) {
        Ok(())
    } else {
        Err(format!("{w} is not between 10 and 1000"))
    }
}

fn device(major: i64, minor: i64) -> Result<String, String> {
    if major < 0 || minor < 0 || major > u32::MAX.into() || minor > u32::MAX.into() {
        return Err(format!("{major}:{minor} is not a device number"));
    }
    Ok(format!("{major}:{minor}"))
}

/// Refusal of leaf weights: they went with the CFQ scheduler.
fn leaf_refusal(cx: &Ctx, v1: bool) -> String {
    if v1 {
        format!(
            "leaf weights need the CFQ I/O scheduler, gone since Linux 5.0 (this kernel: {})",
            cx.host.kernel_short()
        )
    } else {
        "cgroup2's io controller has no leaf weights".into()
    }
}

pub(super) fn plan(b: &LinuxBlockIo, cx: &mut Ctx) {
    let side = match cx.host.side("blkio").or(cx.host.side("io")) {
        Some(s) => s,
        None => {
            let c = if cx.host.layout == crate::Layout::V2 {
                "io"
            } else {
                "blkio"
            };
            let reason = cx.host.missing(c);
            cx.refuse("blockIO", reason);
            return;
        }
    };
    let v1 = side == Side::V1;
    let ctl = if v1 { "blkio" } else { "io" };
    let cfq_era = cx.host.kernel() < (5, 0);

    if let Some(w) = b.weight() {
        match check_weight(w) {
            Err(e) => cx.refuse("blockIO.weight", e),
            Ok(()) => {
                let choices = if v1 {
                    vec![
                        ("blkio.weight".into(), w.to_string()),
                        ("blkio.bfq.weight".into(), w.to_string()),
                    ]
                } else {
                    vec![
                        ("io.bfq.weight".into(), w.to_string()),
                        ("io.weight".into(), weight_to_io(w).to_string()),
                    ]
                };
                cx.write_with(
                    "blockIO.weight",
                    ctl,
                    side,
                    choices,
                    Restore::Field("default"),
                );
            }
        }
    }
    if let Some(w) = b.leaf_weight() {
        if v1 && cfq_era {
            match check_weight(w) {
                Err(e) => cx.refuse("blockIO.leafWeight", e),
                Ok(()) => cx.write(
                    "blockIO.leafWeight",
                    ctl,
                    side,
                    "blkio.leaf_weight",
                    w.to_string(),
                ),
            }
        } else {
            let r = leaf_refusal(cx, v1);
            cx.refuse("blockIO.leafWeight", r);
        }
    }
    for wd in b.weight_device().iter().flatten() {
        let dev = match device(wd.major(), wd.minor()) {
            Ok(d) => d,
            Err(e) => {
                cx.refuse("blockIO.weightDevice", e);
                continue;
            }
        };
        if let Some(w) = wd.weight() {
            if let Err(e) = check_weight(w) {
                cx.refuse("blockIO.weightDevice", format!("{dev}: {e}"));
            } else {
                let choices = if v1 {
                    vec![
                        ("blkio.weight_device".into(), format!("{dev} {w}")),
                        ("blkio.bfq.weight_device".into(), format!("{dev} {w}")),
                    ]
                } else {
                    vec![
                        ("io.bfq.weight".into(), format!("{dev} {w}")),
                        ("io.weight".into(), format!("{dev} {}", weight_to_io(w))),
                    ]
                };
                let restore = Restore::Line {
                    key: dev.clone(),
                    reset: format!("{dev} default"),
                };
                cx.write_with("blockIO.weightDevice", ctl, side, choices, restore);
            }
        }
        if let Some(w) = wd.leaf_weight() {
            if v1 && cfq_era {
                let restore = Restore::Line {
                    key: dev.clone(),
                    reset: format!("{dev} 0"),
                };
                let choices = vec![("blkio.leaf_weight_device".into(), format!("{dev} {w}"))];
                cx.write_with("blockIO.weightDevice", ctl, side, choices, restore);
            } else {
                let r = leaf_refusal(cx, v1);
                cx.refuse("blockIO.weightDevice.leafWeight", r);
            }
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>, &str, &str); 4] = [
        (
            "blockIO.throttleReadBpsDevice",
            b.throttle_read_bps_device(),
            "read_bps_device",
            "rbps",
        ),
        (
            "blockIO.throttleWriteBpsDevice",
            b.throttle_write_bps_device(),
            "write_bps_device",
            "wbps",
        ),
        (
            "blockIO.throttleReadIOPSDevice",
            b.throttle_read_iops_device(),
            "read_iops_device",
            "riops",
        ),
        (
            "blockIO.throttleWriteIOPSDevice",
            b.throttle_write_iops_device(),
            "write_iops_device",
            "wiops",
        ),
    ];
    for (part, list, v1_file, v2_key) in throttles {
        for t in list.iter().flatten() {
            let dev = match device(t.major(), t.minor()) {
                Ok(d) => d,
                Err(e) => {
                    cx.refuse(part, e);
                    continue;
                }
            };
            let (choices, reset) = if v1 {
                (
                    vec![(
                        format!("blkio.throttle.{v1_file}"),
                        format!("{dev} {}", t.rate()),
                    )],
                    format!("{dev} 0"),
                )
            } else {
                (
                    vec![("io.max".into(), io_max(&dev, v2_key, t.rate()))],
                    format!("{dev} rbps=max wbps=max riops=max wiops=max"),
                )
            };
            let restore = Restore::Line { key: dev, reset };
            cx.write_with(part, ctl, side, choices, restore);
        }
    }
}

/// One `io.max` line; a rate of 0 is no limit, as on v1.
pub fn io_max(dev: &str, key: &str, rate: u64) -> String {
    if rate == 0 {
        format!("{dev} {key}=max")
    } else {
        format!("{dev} {key}={rate}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_hosts::{hybrid, v1, v1_old, v2};
    use super::super::{plan, Host, Plan, Restore};
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
        LinuxWeightDeviceBuilder,
    };

    fn run(b: LinuxBlockIoBuilder, host: &Host) -> Result<Plan, String> {
        let r = LinuxResourcesBuilder::default()
            .block_io(b.build().unwrap())
            .build()
            .unwrap();
        plan(&r, host).map_err(|e| e.to_string())
    }

    fn throttle(rate: u64) -> Vec<oci_spec::runtime::LinuxThrottleDevice> {
        vec![LinuxThrottleDeviceBuilder::default()
            .major(254)
            .minor(0)
            .rate(rate)
            .build()
            .unwrap()]
    }

    fn full() -> LinuxBlockIoBuilder {
        LinuxBlockIoBuilder::default()
            .weight(500u16)
            .weight_device(vec![LinuxWeightDeviceBuilder::default()
                .major(254)
                .minor(0)
                .weight(300u16)
                .build()
                .unwrap()])
            .throttle_read_bps_device(throttle(1 << 20))
            .throttle_write_bps_device(throttle(2 << 20))
            .throttle_read_iops_device(throttle(100))
            .throttle_write_iops_device(throttle(0))
    }

    fn all(p: &Plan) -> Vec<Vec<(&str, &str)>> {
        p.writes
            .iter()
            .map(|w| {
                w.choices
                    .iter()
                    .map(|(f, v)| (f.as_str(), v.as_str()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn weights_convert_like_runc() {
        assert_eq!(weight_to_io(10), 1);
        assert_eq!(weight_to_io(1000), 10_000);
        assert_eq!(weight_to_io(500), 4950);
        assert_eq!(io_max("8:0", "rbps", 0), "8:0 rbps=max");
    }

    #[test]
    fn block_io_converts_for_v1_and_v2() {
        let p = run(full(), &hybrid()).unwrap();
        assert_eq!(
            all(&p),
            [
                vec![("blkio.weight", "500"), ("blkio.bfq.weight", "500")],
                vec![
                    ("blkio.weight_device", "254:0 300"),
                    ("blkio.bfq.weight_device", "254:0 300")
                ],
                vec![("blkio.throttle.read_bps_device", "254:0 1048576")],
                vec![("blkio.throttle.write_bps_device", "254:0 2097152")],
                vec![("blkio.throttle.read_iops_device", "254:0 100")],
                vec![("blkio.throttle.write_iops_device", "254:0 0")],
            ]
        );
        assert_eq!(
            p.writes[2].restore,
            Restore::Line {
                key: "254:0".into(),
                reset: "254:0 0".into()
            }
        );
        let p = run(full(), &v2()).unwrap();
        assert_eq!(
            all(&p),
            [
                vec![("io.bfq.weight", "500"), ("io.weight", "4950")],
                vec![("io.bfq.weight", "254:0 300"), ("io.weight", "254:0 2930")],
                vec![("io.max", "254:0 rbps=1048576")],
                vec![("io.max", "254:0 wbps=2097152")],
                vec![("io.max", "254:0 riops=100")],
                vec![("io.max", "254:0 wiops=max")],
            ]
        );
        assert_eq!(p.v2_controllers, ["io"]);
        // Leaf weights on a CFQ-era kernel.
        let p = run(
            LinuxBlockIoBuilder::default().leaf_weight(200u16),
            &Host {
                release: "4.19.0".into(),
                ..v1_old()
            },
        )
        .unwrap();
        assert_eq!(all(&p), [vec![("blkio.leaf_weight", "200")]]);
    }

    #[test]
    fn block_io_fields_the_host_cannot_apply_are_refused() {
        let cases = [
            (LinuxBlockIoBuilder::default().weight(5u16), v1(), "linux.resources.blockIO.weight: 5 is not between 10 and 1000"),
            (LinuxBlockIoBuilder::default().leaf_weight(100u16), v1(), "linux.resources.blockIO.leafWeight: leaf weights need the CFQ I/O scheduler, gone since Linux 5.0 (this kernel: 6.18)"),
            (LinuxBlockIoBuilder::default().leaf_weight(100u16), v2(), "linux.resources.blockIO.leafWeight: cgroup2's io controller has no leaf weights"),
            (
                LinuxBlockIoBuilder::default().throttle_read_bps_device(vec![LinuxThrottleDeviceBuilder::default().major(-1).minor(0).rate(1u64).build().unwrap()]),
                v2(),
                "linux.resources.blockIO.throttleReadBpsDevice: -1:0 is not a device number",
            ),
            (LinuxBlockIoBuilder::default().weight(100u16), Host { controllers: Default::default(), ..v2() }, "linux.resources.blockIO: needs the io controller"),
        ];
        for (b, host, want) in cases {
            let e = run(b, &host).unwrap_err();
            assert!(e.contains(want), "{e}\n  wanted: {want}");
        }
    }
}
