//! The device program on the real kernel: a cgroup2 child of this test
//! process's own cgroup2 cgroup gets a program that allows only /dev/null, and
//! a shell that moved itself there tries /dev/null and /dev/zero. Root only;
//! skipped otherwise, a failure under `CI=true` (`zctr_tests::skip`).

use super::devices::{self, Insn};
use super::v2::attach_device_program;
use super::{bpf, remove_tree, CgroupError};
use oci_spec::runtime::{LinuxDeviceCgroupBuilder, LinuxDeviceType};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use zctr_tests::TempDir;

/// A cgroup2 directory below our own cgroup, emptied and removed on drop
/// (also when the test fails).
struct ChildCgroup(PathBuf);

impl ChildCgroup {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let own = own_cgroup2_dir();
        let dir = own.join(format!(
            "zctr-unit-devices-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Self(dir)
    }
}

impl Drop for ChildCgroup {
    fn drop(&mut self) {
        if let Ok(procs) = fs::read_to_string(self.0.join("cgroup.procs")) {
            let pids: Vec<i32> = procs.lines().filter_map(|l| l.parse().ok()).collect();
            super::kill_pids(&pids);
        }
        let mut errors = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        remove_tree(&self.0, deadline, &mut errors);
        for e in errors {
            eprintln!("cannot remove test cgroup {}: {e}", self.0.display());
        }
    }
}

/// The directory of this process's cgroup2 cgroup: the `0::` line of
/// /proc/self/cgroup below the cgroup2 mount (minus the mount's own root).
fn own_cgroup2_dir() -> PathBuf {
    let cgroup = fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup2 line in /proc/self/cgroup");
    let mounts = common::mountinfo::parse(&fs::read_to_string("/proc/self/mountinfo").unwrap());
    let m = mounts
        .iter()
        .find(|m| m.fs_type == "cgroup2")
        .expect("a cgroup2 mount");
    let below = path
        .strip_prefix(m.root.trim_end_matches('/'))
        .expect("our cgroup is inside the mount");
    m.mount_point.join(below.trim_start_matches('/'))
}

/// Root and a cgroup2 hierarchy; otherwise a skip (a failure under `CI=true`).
fn runnable() -> bool {
    if !zctr_tests::skip::need_root() {
        return false;
    }
    let v2 = fs::read_to_string("/proc/self/cgroup")
        .is_ok_and(|s| s.contains("\n0::") || s.starts_with("0::"));
    if !v2 {
        zctr_tests::skip::skip("no cgroup2 hierarchy");
    }
    v2
}

/// deny a *:* rwm, then allow c 1:3 rwm: /dev/null only.
fn only_dev_null() -> Vec<Insn> {
    let rules = [
        LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap(),
        LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rwm")
            .build()
            .unwrap(),
    ];
    devices::compile(&rules).unwrap()
}

#[test]
fn attached_program_allows_dev_null_and_denies_dev_zero() {
    if !runnable() {
        return;
    }
    let cg = ChildCgroup::new();
    let tmp = TempDir::new("devices").unwrap();
    attach_device_program(&cg.0, &only_dev_null()).unwrap();
    // Each step has its own exit code; the denied ones keep their message.
    let script = r#"
        echo $$ > "$1/cgroup.procs" || exit 10
        true </dev/null || exit 11
        echo x >/dev/null || exit 12
        { true </dev/zero; } 2>"$2/open.err" && exit 13
        mknod "$2/null" c 1 3 || exit 14
        mknod "$2/zero" c 1 5 2>"$2/mknod.err" && exit 15
        exit 0
    "#;
    let out = Command::new("/bin/sh")
        .args(["-c", script, "sh"])
        .arg(&cg.0)
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for (file, what) in [("open.err", "/dev/zero"), ("mknod.err", "zero")] {
        let err =
            fs::read_to_string(tmp.path().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            err.contains(what) && err.contains("Operation not permitted"),
            "{file}: {err:?}"
        );
    }
    // The shell has exited: the cgroup is empty and can go.
    assert_eq!(fs::read_to_string(cg.0.join("cgroup.procs")).unwrap(), "");
}

#[test]
fn a_refused_program_reports_errno_and_verifier_log() {
    if !runnable() {
        return;
    }
    // r0 is never set before exit.
    let f = bpf::load_device_program(&[Insn::exit()]).unwrap_err();
    assert_eq!(f.errno, nix::errno::Errno::EACCES, "{}", f.log);
    assert!(f.log.contains("R0"), "{}", f.log);
    // And through the cgroup code, with the step and the path.
    let cg = ChildCgroup::new();
    let e = attach_device_program(&cg.0, &[Insn::exit()]).unwrap_err();
    assert!(
        matches!(&e, CgroupError::DeviceProgramLoad { path, log, .. } if path == &cg.0 && !log.is_empty()),
        "{e}"
    );
    assert!(e.to_string().contains("BPF_PROG_LOAD"), "{e}");
}
