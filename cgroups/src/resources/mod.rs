//! `linux.resources` as a plan of cgroup file writes, for the controllers
//! where this host has them (v1 hierarchies, the cgroup2 mount, or both on a
//! hybrid host). Pure: [`plan`] refuses every field the host cannot apply,
//! naming it; [`apply`] resolves the plan to files and writes them.
//!
//! - `host`: what the host offers (controllers and their side, kernel, swap
//!   accounting, huge page sizes).
//! - `memory`, `cpu`, `pids`, `blkio`, `hugetlb`, `network`, `rdma`,
//!   `unified`: one part of `linux.resources` each, converted as runc does.
//! - `apply`: the plan's files resolved, written, and for a live update
//!   restored to the values read before when a write fails.
//! - `v1_devices`: the device rules for the v1 devices controller.
//!
//! Device rules are not in the plan: the v1 devices controller gets them
//! through `cgroups-rs`, cgroup2 a BPF program (`devices`, `bpf`).

pub mod apply;
mod blkio;
mod cpu;
mod host;
mod hugetlb;
mod memory;
mod network;
mod pids;
mod rdma;
mod unified;
pub mod v1_devices;

pub use host::Host;

use super::CgroupError;
use oci_spec::runtime::LinuxResources;

/// Which kind of hierarchy a controller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    V1,
    V2,
}

/// The cgroup directory a write goes to: the v1 hierarchy holding this
/// controller, or the cgroup2 directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    V1(&'static str),
    V2,
}

/// How to read back the value a write replaces (to restore it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restore {
    /// The whole file, trimmed.
    Whole,
    /// The value after `key` on its line (`oom_kill_disable 0`); the whole
    /// file when no line starts with `key`.
    Field(&'static str),
    /// The line starting with `key ` (per-device files); `reset` when the
    /// device has no line yet.
    Line { key: String, reset: String },
}

/// One file write of the plan. `choices` are tried in order: the first file
/// that exists in the cgroup gets its value (`blkio.weight` or
/// `blkio.bfq.weight`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The spec field, e.g. `linux.resources.memory.limit`.
    pub field: String,
    pub target: Target,
    pub choices: Vec<(String, String)>,
    pub restore: Restore,
}

/// The plan: the writes in order, and the cgroup2 controllers they need
/// enabled on the way down.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub writes: Vec<Write>,
    pub v2_controllers: Vec<String>,
    /// `memory.checkBeforeUpdate`: a live update refuses a memory limit
    /// below the current usage.
    pub usage_check: Option<UsageCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageCheck {
    pub target: Target,
    /// `memory.usage_in_bytes` or `memory.current`.
    pub file: String,
    pub limit: u64,
}

/// The field name of `part` (`memory.limit`) in error messages.
pub fn field(part: &str) -> String {
    format!("linux.resources.{part}")
}

/// Collects writes and refusals while the parts are converted.
pub(crate) struct Ctx<'a> {
    pub host: &'a Host,
    plan: Plan,
    refused: Vec<CgroupError>,
}

impl<'a> Ctx<'a> {
    fn new(host: &'a Host) -> Self {
        Self {
            host,
            plan: Plan::default(),
            refused: Vec::new(),
        }
    }

    pub fn refuse(&mut self, part: &str, reason: impl Into<String>) {
        self.refused.push(CgroupError::Refused {
            field: field(part),
            reason: reason.into(),
        });
    }

    /// Where `controller` is, or a refusal of `part` that says it is missing.
    pub fn side(&mut self, part: &str, controller: &'static str) -> Option<Side> {
        let side = self.host.side(controller);
        if side.is_none() {
            let reason = self.host.missing(controller);
            self.refuse(part, reason);
        }
        side
    }

    /// A write of `value` to `file`, the whole file restored.
    pub fn write(
        &mut self,
        part: &str,
        controller: &'static str,
        side: Side,
        file: &str,
        value: String,
    ) {
        self.write_with(
            part,
            controller,
            side,
            vec![(file.to_string(), value)],
            Restore::Whole,
        );
    }

    pub fn write_with(
        &mut self,
        part: &str,
        controller: &'static str,
        side: Side,
        choices: Vec<(String, String)>,
        restore: Restore,
    ) {
        let target = match side {
            Side::V1 => Target::V1(controller),
            Side::V2 => {
                self.need_v2(controller);
                Target::V2
            }
        };
        self.plan.writes.push(Write {
            field: field(part),
            target,
            choices,
            restore,
        });
    }

    /// `controller` must be enabled down to the cgroup2 directory (`None`
    /// for the `cgroup.*` files every cgroup has).
    pub fn need_v2(&mut self, controller: &str) {
        if controller != "cgroup" && !self.plan.v2_controllers.iter().any(|c| c == controller) {
            self.plan.v2_controllers.push(controller.to_string());
        }
    }

    pub fn push(&mut self, w: Write) {
        self.plan.writes.push(w);
    }

    pub fn check_usage(&mut self, side: Side, file: &str, limit: u64) {
        let target = match side {
            Side::V1 => Target::V1("memory"),
            Side::V2 => Target::V2,
        };
        self.plan.usage_check = Some(UsageCheck {
            target,
            file: file.into(),
            limit,
        });
    }
}

/// Converts `r` for `host`: every field becomes writes, or is refused. All
/// refusals are reported together; devices are checked by their own code.
pub fn plan(r: &LinuxResources, host: &Host) -> Result<Plan, CgroupError> {
    let mut cx = Ctx::new(host);
    if let Some(m) = r.memory() {
        memory::plan(m, &mut cx);
    }
    if let Some(c) = r.cpu() {
        cpu::plan(c, &mut cx);
    }
    if let Some(p) = r.pids() {
        pids::plan(p, &mut cx);
    }
    if let Some(b) = r.block_io() {
        blkio::plan(b, &mut cx);
    }
    if let Some(h) = r.hugepage_limits() {
        hugetlb::plan(h, &mut cx);
    }
    if let Some(n) = r.network() {
        network::plan(n, &mut cx);
    }
    if let Some(rd) = r.rdma() {
        rdma::plan(rd, &mut cx);
    }
    // Last: a unified file overrides what a field above wrote (as runc).
    if let Some(u) = r.unified() {
        unified::plan(u, &mut cx);
    }
    let Ctx { plan, refused, .. } = cx;
    super::all_ok("linux.resources refused", refused)?;
    Ok(plan)
}

#[cfg(test)]
pub(crate) mod test_hosts {
    use super::host::Host;
    use super::Side;
    use crate::Layout;

    fn host(layout: Layout, controllers: &[(&str, Side)]) -> Host {
        Host {
            layout,
            controllers: controllers
                .iter()
                .map(|(c, s)| (c.to_string(), *s))
                .collect(),
            release: "6.18.0".into(),
            memsw: true,
            hugepage_sizes: vec!["2MB".into(), "1GB".into()],
        }
    }

    const V1_ALL: [&str; 10] = [
        "cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "net_cls", "net_prio", "rdma",
        "devices",
    ];
    const V2_ALL: [&str; 6] = ["cpu", "cpuset", "memory", "pids", "io", "hugetlb"];

    /// Every v1 controller, kernel 6.18.
    pub fn v1() -> Host {
        let c: Vec<_> = V1_ALL.iter().map(|c| (*c, Side::V1)).collect();
        host(Layout::V1, &c)
    }

    /// Every v1 controller on an old kernel (5.4).
    pub fn v1_old() -> Host {
        Host {
            release: "5.4.0-150-generic".into(),
            ..v1()
        }
    }

    /// Every cgroup2 controller (rdma too).
    pub fn v2() -> Host {
        let mut c: Vec<_> = V2_ALL.iter().map(|c| (*c, Side::V2)).collect();
        c.push(("rdma", Side::V2));
        host(Layout::V2, &c)
    }

    /// This machine: v1 controllers, hugetlb on the cgroup2 mount, no
    /// net_cls, net_prio or rdma.
    pub fn hybrid() -> Host {
        let mut c: Vec<_> = ["cpu", "cpuset", "memory", "pids", "blkio", "devices"]
            .iter()
            .map(|c| (*c, Side::V1))
            .collect();
        c.push(("hugetlb", Side::V2));
        host(Layout::Hybrid, &c)
    }
}

#[cfg(test)]
mod tests {
    use super::test_hosts::{hybrid, v2};
    use super::*;
    use oci_spec::runtime::{
        LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxResourcesBuilder,
    };

    #[test]
    fn every_refusal_is_reported_at_once_as_a_client_error() {
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().kernel(1).build().unwrap())
            .cpu(
                LinuxCpuBuilder::default()
                    .realtime_runtime(5)
                    .build()
                    .unwrap(),
            )
            .network(
                LinuxNetworkBuilder::default()
                    .class_id(1u32)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let e = plan(&r, &v2()).unwrap_err();
        assert!(e.is_refusal());
        let text = e.to_string();
        for f in ["memory.kernel", "cpu.realtimeRuntime", "network.classID"] {
            assert!(text.contains(&format!("linux.resources.{f}: ")), "{text}");
        }
        assert!(
            text.starts_with("linux.resources refused: 3 errors: "),
            "{text}"
        );
        // An empty block plans nothing.
        let empty = LinuxResourcesBuilder::default().build().unwrap();
        assert_eq!(plan(&empty, &hybrid()).unwrap(), Plan::default());
    }
}
