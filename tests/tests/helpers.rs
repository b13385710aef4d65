//! Host-side tests of the zctr_tests helpers (no containers). Need root for
//! cgroups and mounts; skipped otherwise ([`zctr_tests::skip`]: a failure under
//! `CI=true`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use zctr_tests::{bins, bundle, run_cmd, skip, wait_until, Error, Rootfs, TempDir, TestCgroup};

fn root_or_skip(_name: &str) -> bool {
    skip::need_root()
}

fn probe_or_skip(_name: &str) -> Option<std::path::PathBuf> {
    // The e2e suite panics here through bins::probe(); these helper tests only
    // skip (locally) so that `cargo test` works before a static build.
    skip::or_skip(bins::find("zctr-probe"))
}

#[test]
fn tempdir_removes_itself_and_its_mounts() {
    let dir = TempDir::new("zctr-helpers").unwrap();
    let path = dir.path().to_path_buf();
    std::fs::create_dir_all(dir.join("a/b")).unwrap();
    std::fs::write(dir.join("a/b/f"), "x").unwrap();
    // The mount part needs root; the rest runs anyway.
    if skip::need_root() {
        let mnt = dir.join("a/mnt");
        std::fs::create_dir(&mnt).unwrap();
        let out = run_cmd(
            Command::new("mount").args(["-t", "tmpfs", "zctr-test", mnt.to_str().unwrap()]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.status.success(), "{}", zctr_tests::describe(&out));
        // A stacked second mount and a nested one.
        std::fs::create_dir(mnt.join("inner")).unwrap();
        let out = run_cmd(
            Command::new("mount").args([
                "-t",
                "tmpfs",
                "zctr-test",
                mnt.join("inner").to_str().unwrap(),
            ]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(out.status.success(), "{}", zctr_tests::describe(&out));
        std::fs::write(mnt.join("inner/file"), "y").unwrap();
        assert_eq!(zctr_tests::mounts_below(&path).unwrap().len(), 2);
    }
    drop(dir);
    assert!(!path.exists(), "{} still exists", path.display());
    assert!(zctr_tests::mounts_below(&path).unwrap().is_empty());
}

#[test]
fn tempdir_keep_disarms() {
    let dir = TempDir::new("zctr-helpers-keep").unwrap();
    let path = dir.keep();
    assert!(path.is_dir());
    zctr_tests::remove_tree(&path).unwrap();
    assert!(!path.exists());
}

#[test]
fn run_cmd_captures_and_times_out() {
    let out = run_cmd(
        Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");

    let start = std::time::Instant::now();
    // The background sleep holds the pipes too: it must die with the group.
    let err = run_cmd(
        Command::new("sh").args(["-c", "echo started; sleep 30 & sleep 30"]),
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    match err {
        Error::Timeout { stdout, .. } => assert_eq!(stdout, "started\n"),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn wait_until_polls() {
    let mut n = 0;
    assert!(wait_until(Duration::from_secs(1), || {
        n += 1;
        n == 3
    }));
    assert!(!wait_until(Duration::from_millis(30), || false));
}

#[test]
fn bundle_writes_config() {
    let dir = TempDir::new("zctr-helpers-bundle").unwrap();
    let spec = serde_json::json!({"ociVersion": "1.0.2", "process": {"args": ["/bin/zctr-probe"]}});
    let path = bundle::write(dir.join("b"), &spec).unwrap();
    assert_eq!(path, dir.join("b/config.json"));
    let back: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn bin_dir_points_at_musl_release() {
    // Without ZCTR_BIN_DIR the binaries are found in the workspace the tests
    // were built in (a VM, say, sets the variable and has no workspace).
    if std::env::var_os("ZCTR_BIN_DIR").is_none() {
        assert!(bins::bin_dir().ends_with("x86_64-unknown-linux-musl/release"));
        assert!(bins::workspace_root().join("Cargo.toml").is_file());
    }
    let err = bins::find("no-such-binary").unwrap_err();
    assert!(err.to_string().contains("scripts/build-static.sh"), "{err}");
}

#[test]
fn rootfs_layout_and_probe_runs() {
    if !root_or_skip("rootfs_layout_and_probe_runs") {
        return;
    }
    let Some(probe) = probe_or_skip("rootfs_layout_and_probe_runs") else {
        return;
    };
    assert!(
        bins::is_static_elf(&probe).unwrap(),
        "{} is not static",
        probe.display()
    );
    let dir = TempDir::new("zctr-helpers-rootfs").unwrap();
    let rootfs = Rootfs::with_probe(dir.join("rootfs"), &probe).unwrap();
    let r = rootfs.path();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for d in [
        "bin", "sbin", "dev", "proc", "sys", "tmp", "etc", "root", "var", "run",
    ] {
        assert!(r.join(d).is_dir(), "missing /{d}");
    }
    assert_eq!(
        std::fs::metadata(r.join("tmp"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    assert!(passwd.contains("root:x:0:0:") && passwd.contains(":1000:1000:"));
    let meta = std::fs::metadata(r.join("bin/zctr-probe")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o755);
    assert_eq!(meta.uid(), 0);

    let out = run_cmd(
        Command::new(r.join("bin/zctr-probe")).args([
            "report",
            "--read",
            "/etc/hostname",
            "--open",
            "/nonexistent",
        ]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["pid"].as_u64().is_some());
    assert!(v["caps"]["effective"]["hex"].is_string());
    assert!(v["namespaces"]["mnt"]
        .as_str()
        .unwrap()
        .starts_with("mnt:["));
    assert_eq!(v["checks"]["open"][0]["error"], "ENOENT");
    assert_eq!(v["checks"]["read"][0]["ok"], true);
    assert!(v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mount_point"] == "/"));
    // stdin of run_cmd is /dev/null; the listing fd itself is not reported.
    let fds = v["fds"].as_array().unwrap();
    assert_eq!(fds[0]["target"], "/dev/null");
    assert!(fds
        .iter()
        .all(|f| !f["target"].as_str().unwrap().starts_with("/proc/")));

    let out = run_cmd(Command::new(&probe).arg("bogus"), Duration::from_secs(10)).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = run_cmd(
        Command::new(&probe).args(["exit", "42"]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(42));
    let out = run_cmd(
        Command::new(&probe).args(["print", "hello"]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"hello\n"[..], &b"hello\n"[..])
    );
}

#[test]
fn rootfs_refuses_escapes_and_plants_symlinks() {
    // The rootfs helpers chown its home directory.
    if !root_or_skip("rootfs_refuses_escapes_and_plants_symlinks") {
        return;
    }
    let dir = TempDir::new("zctr-helpers-rootfs-sym").unwrap();
    // No probe needed for the path rules: use any small file as the "probe".
    let rootfs = Rootfs::with_probe(dir.join("rootfs"), Path::new("/bin/sh")).unwrap();
    let outside = dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    rootfs.symlink("/etc/evil", &outside).unwrap();
    assert_eq!(
        std::fs::read_link(rootfs.path().join("etc/evil")).unwrap(),
        outside
    );
    assert!(matches!(
        rootfs.write_file("etc/evil/pwned", "x", 0o644),
        Err(Error::UnsafePath { .. })
    ));
    assert!(matches!(
        rootfs.write_file("etc/evil", "x", 0o644),
        Err(Error::UnsafePath { .. })
    ));
    assert!(matches!(
        rootfs.write_file("../x", "x", 0o644),
        Err(Error::UnsafePath { .. })
    ));
    assert!(std::fs::read_dir(&outside).unwrap().next().is_none());
    let p = rootfs.write_file("/etc/app/conf", "ok", 0o600).unwrap();
    assert_eq!(std::fs::read_to_string(p).unwrap(), "ok");

    match rootfs.with_busybox() {
        Ok(()) => {
            for a in zctr_tests::BUSYBOX_APPLETS {
                assert_eq!(
                    std::fs::read_link(rootfs.path().join("bin").join(a)).unwrap(),
                    Path::new("busybox")
                );
            }
            assert!(bins::is_static_elf(&rootfs.path().join("bin/busybox")).unwrap());
        }
        Err(Error::BusyboxUnavailable(why)) => skip::skip(format!("busybox part: {why}")),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn test_cgroup_created_and_removed_with_process_inside() {
    if !root_or_skip("test_cgroup_created_and_removed_with_process_inside") {
        return;
    }
    let cg = TestCgroup::new().unwrap();
    let rel = cg.relative_path().to_string();
    assert!(rel.ends_with(cg.name()));
    let dirs: Vec<_> = cg.dirs().iter().map(|d| d.path.clone()).collect();
    assert!(!dirs.is_empty());
    for d in cg.dirs() {
        assert!(d.path.is_dir(), "{} missing", d.path.display());
        assert!(d.path.ends_with(rel.trim_start_matches('/')));
    }
    if let Some(mem) = cg.v1_dir("memory") {
        cg.write("memory", "memory.limit_in_bytes", "67108864")
            .unwrap();
        assert!(mem.join("memory.limit_in_bytes").is_file());
        assert_eq!(
            cg.read("memory", "memory.limit_in_bytes").unwrap(),
            "67108864"
        );
    }

    // A process spawned into it, one moved in afterwards, and a nested child cgroup.
    let mut born_inside = cg.spawn(Command::new("sleep").arg("60")).unwrap();
    let mut moved = Command::new("sleep").arg("60").spawn().unwrap();
    cg.add_pid(moved.id()).unwrap();
    let nested = dirs[0].join("nested");
    std::fs::create_dir(&nested).unwrap();
    let mut nested_child = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(nested.join("cgroup.procs"), nested_child.id().to_string()).unwrap();
    let pids = cg.pids();
    for p in [born_inside.id(), moved.id(), nested_child.id()] {
        assert!(pids.contains(&p), "{p} not in {pids:?}");
    }
    if let Some(freezer) = cg.v1_dir("freezer") {
        // A frozen cgroup must still be cleaned up.
        std::fs::write(freezer.join("freezer.state"), "FROZEN").unwrap();
    }

    drop(cg);
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    for c in [&mut born_inside, &mut moved, &mut nested_child] {
        let st = c.wait().unwrap();
        assert!(!st.success(), "{st}");
    }
}

#[test]
fn test_cgroup_cleans_up_on_panic() {
    if !root_or_skip("test_cgroup_cleans_up_on_panic") {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let cg = TestCgroup::new().unwrap();
        let dirs: Vec<_> = cg.dirs().iter().map(|d| d.path.clone()).collect();
        let child = cg.spawn(Command::new("sleep").arg("60")).unwrap();
        tx.send((dirs, child)).unwrap();
        panic!("test body panics with the cgroup alive");
    })
    .join();
    assert!(result.is_err());
    let (dirs, mut child) = rx.recv().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    assert!(!child.wait().unwrap().success());
}

#[test]
fn probe_forkbomb_hits_pids_limit_in_test_cgroup() {
    if !root_or_skip("probe_forkbomb_hits_pids_limit_in_test_cgroup") {
        return;
    }
    let Some(probe) = probe_or_skip("probe_forkbomb_hits_pids_limit_in_test_cgroup") else {
        return;
    };
    let cg = TestCgroup::new().unwrap();
    if cg.v1_dir("pids").is_none() && !cg.enable_v2("pids") {
        skip::skip(
            "no v1 pids hierarchy, and pids cannot be enabled on cgroup2 here \
             (the test's own cgroup holds processes)",
        );
        return;
    }
    cg.write("pids", "pids.max", "5").unwrap();
    let mut cmd = Command::new(&probe);
    cmd.args(["forkbomb", "20"])
        .stdout(std::process::Stdio::piped());
    let child = cg.spawn(&mut cmd).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The probe itself counts: 4 children fit under pids.max=5.
    assert_eq!(v["succeeded"], 4, "{v}");
    assert_eq!(v["error"], "EAGAIN", "{v}");
}
