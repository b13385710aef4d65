//! `linux.resources` on the real kernel, through [`detect`]'s implementation
//! for this host (v1, v2 or hybrid): a cgroup below the test's own cgroup
//! (`zctr_tests::cgroup::TestCgroup`, removed with everything below it even
//! when the test fails) gets a full resources block, and the files are read
//! back where this layout keeps each controller; refusals and kernel errors
//! leave no cgroup; live updates are all or none. Root only; skipped
//! otherwise, a failure under `CI=true` (`zctr_tests::skip`).

use crate::{detect, CgroupError, CgroupPath, Cgroups, Layout};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxHugepageLimitBuilder, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};
use std::fs;
use std::path::{Path, PathBuf};
use zctr_tests::cgroup::TestCgroup;

struct Fixture {
    cgroups: Box<dyn Cgroups>,
    parent: TestCgroup,
    path: CgroupPath,
}

impl Fixture {
    fn new() -> Option<Self> {
        if !zctr_tests::skip::need_root() {
            return None;
        }
        let cgroups = detect().expect("a cgroup hierarchy");
        let parent = TestCgroup::new().expect("a test cgroup");
        let path = CgroupPath::new(&format!("{}/ctr", parent.relative_path())).unwrap();
        Some(Self {
            cgroups,
            parent,
            path,
        })
    }

    /// The container cgroup's directory for `controller`: its v1 hierarchy,
    /// else the cgroup2 one.
    fn dir(&self, controller: &str) -> PathBuf {
        self.parent
            .dir_for(controller)
            .unwrap_or_else(|| panic!("no hierarchy for {controller}"))
            .join("ctr")
    }

    fn read(&self, controller: &str, file: &str) -> String {
        let p = self.dir(controller).join(file);
        fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_string()
    }

    /// `create`, or a skip when cgroup2 cannot pass controllers down to the
    /// test's cgroup (its own cgroup holds processes).
    fn create(&self, r: &LinuxResources) -> Option<Result<(), CgroupError>> {
        match self.cgroups.create(&self.path, Some(r)) {
            Err(CgroupError::Controllers { dir, .. }) => {
                zctr_tests::skip::skip(format!(
                    "cgroup2 controllers cannot be enabled in {} (the test's own cgroup holds processes)",
                    dir.display()
                ));
                None
            }
            other => Some(other),
        }
    }

    /// No directory of the container cgroup is left in any hierarchy.
    fn assert_gone(&self) {
        for d in self.parent.dirs() {
            let p = d.path.join("ctr");
            assert!(!p.exists(), "{} was left behind", p.display());
        }
    }

    fn v1(&self, controller: &str) -> bool {
        self.parent.v1_dir(controller).is_some()
    }

    /// Whether the cgroup2 root offers `controller`.
    fn v2_root_has(&self, controller: &str) -> bool {
        self.parent
            .dirs()
            .iter()
            .filter(|d| d.hierarchy.version == zctr_tests::cgroup::CgroupVersion::V2)
            .any(|d| {
                fs::read_to_string(d.hierarchy.mount_point.join("cgroup.controllers"))
                    .is_ok_and(|c| c.split_whitespace().any(|c| c == controller))
            })
    }
}

/// The first disk's device number (`254:0`), for throttling.
fn a_disk() -> Option<String> {
    let mut names: Vec<String> = fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("zram") && !n.starts_with("ram"))
        .collect();
    names.sort();
    let dev = fs::read_to_string(Path::new("/sys/block").join(names.first()?).join("dev")).ok()?;
    Some(dev.trim().to_string())
}

fn throttle(dev: &str, rate: u64) -> Vec<oci_spec::runtime::LinuxThrottleDevice> {
    let (ma, mi) = dev.split_once(':').unwrap();
    vec![LinuxThrottleDeviceBuilder::default()
        .major(ma.parse::<i64>().unwrap())
        .minor(mi.parse::<i64>().unwrap())
        .rate(rate)
        .build()
        .unwrap()]
}

#[test]
fn a_full_resources_block_is_written_where_the_layout_keeps_each_controller() {
    let Some(f) = Fixture::new() else { return };
    let layout = f.cgroups.layout();
    let mem_v1 = f.v1("memory");
    let mut memory = LinuxMemoryBuilder::default()
        .limit(64 << 20)
        .reservation(32 << 20)
        .swap(96 << 20)
        .use_hierarchy(true);
    if mem_v1 {
        memory = memory
            .kernel_tcp(1 << 20)
            .swappiness(10u64)
            .disable_oom_killer(true);
    }
    let mut cpu = LinuxCpuBuilder::default()
        .shares(512u64)
        .quota(50_000)
        .period(100_000u64)
        .burst(10_000u64)
        .idle(0)
        .cpus("0")
        .mems("0");
    let cpu_v1 = f.v1("cpu");
    if cpu_v1 {
        cpu = cpu.realtime_period(1_000_000u64).realtime_runtime(0);
    }
    let disk = a_disk();
    let mut blkio = LinuxBlockIoBuilder::default();
    let blk_v1 = f.v1("blkio");
    // BFQ's weight file is always there on v1; cgroup2's io.weight needs iocost.
    if blk_v1 {
        blkio = blkio.weight(500u16);
    }
    if let Some(d) = &disk {
        blkio = blkio.throttle_read_bps_device(throttle(d, 1 << 20));
    }
    let huge = Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
        && (f.v1("hugetlb") || f.v2_root_has("hugetlb"));
    let mut b = LinuxResourcesBuilder::default()
        .memory(memory.build().unwrap())
        .cpu(cpu.build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(32).build().unwrap())
        .block_io(blkio.build().unwrap());
    if huge {
        b = b.hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4 << 20)
            .build()
            .unwrap()]);
    }
    let r = b.build().unwrap();
    let Some(created) = f.create(&r) else { return };
    created.unwrap_or_else(|e| panic!("create on {layout:?}: {e}"));

    let mut want: Vec<(&str, &str, String)> = Vec::new();
    if mem_v1 {
        want.extend([
            ("memory", "memory.limit_in_bytes", "67108864".into()),
            ("memory", "memory.soft_limit_in_bytes", "33554432".into()),
            ("memory", "memory.kmem.tcp.limit_in_bytes", "1048576".into()),
            ("memory", "memory.swappiness", "10".into()),
            ("memory", "memory.use_hierarchy", "1".into()),
        ]);
        if Path::new(&f.dir("memory"))
            .join("memory.memsw.limit_in_bytes")
            .exists()
        {
            want.push(("memory", "memory.memsw.limit_in_bytes", "100663296".into()));
        }
        let oom = f.read("memory", "memory.oom_control");
        assert!(oom.contains("oom_kill_disable 1"), "{oom}");
    } else {
        want.extend([
            ("memory", "memory.max", "67108864".into()),
            ("memory", "memory.low", "33554432".into()),
            ("memory", "memory.swap.max", "33554432".into()),
        ]);
    }
    if cpu_v1 {
        want.extend([
            ("cpu", "cpu.shares", "512".into()),
            ("cpu", "cpu.cfs_period_us", "100000".into()),
            ("cpu", "cpu.cfs_quota_us", "50000".into()),
            ("cpu", "cpu.cfs_burst_us", "10000".into()),
            ("cpu", "cpu.rt_period_us", "1000000".into()),
            ("cpu", "cpu.rt_runtime_us", "0".into()),
        ]);
    } else {
        want.extend([
            ("cpu", "cpu.weight", "20".into()),
            ("cpu", "cpu.max", "50000 100000".into()),
            ("cpu", "cpu.max.burst", "10000".into()),
        ]);
    }
    want.extend([
        ("cpu", "cpu.idle", "0".into()),
        ("cpuset", "cpuset.cpus", "0".into()),
        ("cpuset", "cpuset.mems", "0".into()),
        ("pids", "pids.max", "32".into()),
    ]);
    if blk_v1 {
        let w = f.read("blkio", "blkio.bfq.weight");
        assert!(w == "500" || w == "default 500", "blkio.bfq.weight: {w}");
    }
    if let Some(d) = &disk {
        if blk_v1 {
            want.push((
                "blkio",
                "blkio.throttle.read_bps_device",
                format!("{d} 1048576"),
            ));
        } else {
            want.push((
                "io",
                "io.max",
                format!("{d} rbps=1048576 wbps=max riops=max wiops=max"),
            ));
        }
    }
    if huge {
        if f.v1("hugetlb") {
            want.push(("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304".into()));
        } else {
            want.push(("hugetlb", "hugetlb.2MB.max", "4194304".into()));
        }
    }
    for (controller, file, value) in &want {
        assert_eq!(&f.read(controller, file), value, "{layout:?}: {file}");
    }
    eprintln!("{layout:?}: {} files read back", want.len());
    f.cgroups.remove(&f.path).unwrap();
    f.assert_gone();
}

#[test]
fn a_refused_field_or_a_kernel_error_leaves_no_cgroup() {
    let Some(f) = Fixture::new() else { return };
    // Refused before anything is made (kernel memory: no limit on 6.1+ or cgroup2).
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .kernel(1 << 20)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .build()
        .unwrap();
    let kernel_limits = f.cgroups.layout() != Layout::V2
        && fs::read_to_string("/proc/sys/kernel/osrelease")
            .is_ok_and(|r| r.starts_with("4.") || r.starts_with("5."));
    if !kernel_limits {
        let e = f.cgroups.create(&f.path, Some(&r)).unwrap_err();
        assert!(e.is_refusal(), "{e}");
        assert!(
            e.to_string().starts_with("linux.resources.memory.kernel: "),
            "{e}"
        );
        assert!(f.cgroups.validate(&r).is_err());
        f.assert_gone();
    }
    // A value the kernel refuses (no CPU 99): made, refused midway, removed.
    let r = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .cpu(LinuxCpuBuilder::default().cpus("99").build().unwrap())
        .build()
        .unwrap();
    assert!(f.cgroups.validate(&r).is_ok());
    let Some(created) = f.create(&r) else { return };
    let e = created.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("linux.resources.cpu.cpus: writing \"99\" to "),
        "{e}"
    );
    f.assert_gone();
}

#[test]
fn live_updates_change_memory_and_pids_and_an_invalid_one_changes_nothing() {
    let Some(f) = Fixture::new() else { return };
    let res = |mem: i64, pids: i64| {
        LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(mem).build().unwrap())
            .pids(LinuxPidsBuilder::default().limit(pids).build().unwrap())
    };
    let Some(created) = f.create(&res(64 << 20, 32).build().unwrap()) else {
        return;
    };
    created.unwrap();
    let mem_file = if f.v1("memory") {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    let state = || (f.read("memory", mem_file), f.read("pids", "pids.max"));
    f.cgroups
        .update(&f.path, &res(128 << 20, 64).build().unwrap())
        .unwrap();
    let after = ("134217728".to_string(), "64".to_string());
    assert_eq!(state(), after);

    // Refused before anything is written.
    let refused = res(256 << 20, 100)
        .cpu(LinuxCpuBuilder::default().idle(7).build().unwrap())
        .build()
        .unwrap();
    let e = f.cgroups.update(&f.path, &refused).unwrap_err();
    assert!(e.to_string().contains("linux.resources.cpu.idle"), "{e}");
    assert_eq!(state(), after);

    // The kernel refuses the last write (no such disk): memory and pids were
    // written first and are put back.
    let failing = res(256 << 20, 100)
        .block_io(
            LinuxBlockIoBuilder::default()
                .throttle_read_bps_device(throttle("4095:0", 1))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    match f.cgroups.update(&f.path, &failing) {
        Err(CgroupError::UpdateFailed {
            error,
            restore_errors,
        }) => {
            assert!(restore_errors.is_empty(), "{restore_errors:?}");
            assert!(
                error
                    .to_string()
                    .contains("linux.resources.blockIO.throttleReadBpsDevice"),
                "{error}"
            );
        }
        // A cgroup2 host whose io controller could not be enabled: refused
        // before anything is written.
        Err(e) if e.is_refusal() && f.cgroups.layout() == Layout::V2 => {
            eprintln!("refused up front: {e}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(state(), after);

    // checkBeforeUpdate: a limit below the usage is refused.
    let tiny = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(4096)
                .check_before_update(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    // An empty cgroup uses nothing: the check passes.
    f.cgroups.update(&f.path, &tiny).unwrap();
    assert_eq!(f.read("memory", mem_file), "4096");
    // A missing cgroup is an error, not a silent no-op.
    let gone = CgroupPath::new(&format!("{}/nothing", f.parent.relative_path())).unwrap();
    assert!(f.cgroups.update(&gone, &tiny).is_err());
}
