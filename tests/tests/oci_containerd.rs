//! containerd drives the OCI runtime under test (zctr-oci, or
//! `$ZCTR_OCI_RUNTIME`, e.g. runc to check the harness) through its runc v2
//! shim: `ctr run --runc-binary <it>`, on a private containerd (see
//! `zctr_tests::oci::containerd`) and an OCI image built by the test from a
//! busybox root filesystem. Skipped (a failure under `CI=true`) without root,
//! containerd, ctr, the shim, a static busybox or the runtime.

use std::path::Path;
use std::process::Output;
use std::time::Duration;
use zctr_tests::oci::containerd::{Containerd, RUNC_ROOT};
use zctr_tests::oci::{self, image};
use zctr_tests::{bins, describe, skip, wait_until, Rootfs};

const IMAGE: &str = "zctr-test/busybox:latest";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(what: &str, out: &Output) {
    assert!(out.status.success(), "{what}: {}", describe(out));
}

/// containerd started, the busybox image built and imported.
fn containerd_with_image() -> Option<Containerd> {
    let c = Containerd::start()?;
    let probe = skip::or_skip(bins::find("zctr-probe"))?;
    let rootfs = Rootfs::with_probe(c.tmp.join("rootfs"), &probe).unwrap();
    skip::or_skip(rootfs.with_busybox())?;
    let img = image::build(rootfs.path(), &c.tmp.join("image"), IMAGE, &["/bin/sh"]).unwrap();
    c.import(&img.tar).unwrap();
    let out = c.ctr(&["image", "ls", "-q"]);
    assert_eq!(text(&out.stdout).trim(), IMAGE, "{}", describe(&out));
    Some(c)
}

/// A unique container id (ids name cgroups and runtime state).
fn id(name: &str) -> String {
    format!("zctr-{name}-{}", std::process::id())
}

/// Whether the container's cgroup still exists in any hierarchy.
fn cgroup_exists(c: &Containerd, id: &str) -> bool {
    c.cgroup_dirs(id).iter().any(|d| d.exists())
}

/// Whether the runtime's state of the container is still there (the shim
/// gives it `--root /run/containerd/runc/<namespace>`).
fn state_exists(c: &Containerd, id: &str) -> bool {
    Path::new(RUNC_ROOT).join(&c.namespace).join(id).exists()
}

#[test]
fn run_rm_passes_the_exit_code_and_leaves_nothing() {
    let Some(c) = containerd_with_image() else {
        return;
    };
    let id = id("rm");
    let out = c.run(
        &["--rm"],
        IMAGE,
        &id,
        &["sh", "-c", "echo out; cat /proc/self/cgroup; exit 5"],
    );
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("out\n"), "{}", describe(&out));
    // The container ran in the cgroup ctr asked for, below the test's own.
    let want = format!(":{}", c.cgroup_of(&id));
    assert!(
        stdout.lines().any(|l| l.ends_with(&want)),
        "not in {want}: {}",
        describe(&out)
    );
    let out = c.ctr(&["container", "ls", "-q"]);
    assert_eq!(text(&out.stdout).trim(), "", "{}", describe(&out));
    assert!(!cgroup_exists(&c, &id), "cgroup of {id} left");
    assert!(!state_exists(&c, &id), "runtime state of {id} left");
}

#[test]
fn a_detached_task_execs_lists_pauses_resumes_and_is_killed() {
    let Some(c) = containerd_with_image() else {
        return;
    };
    let id = id("task");
    let script = "trap 'exit 7' TERM; while true; do sleep 0.1; done";
    let out = c.run(&["-d"], IMAGE, &id, &["sh", "-c", script]);
    ok("ctr run -d", &out);
    assert_eq!(c.task_status(&id).as_deref(), Some("RUNNING"));
    let pids = c.task_pids(&id);
    let init = *pids.first().expect("ctr task ps lists the init");
    let cgroups = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let want = format!(":{}", c.cgroup_of(&id));
    assert!(
        cgroups.lines().any(|l| l.ends_with(&want)),
        "init {init} not in {want}:\n{cgroups}"
    );
    // runc's process model: no runtime process stays after create/start; the
    // init's parent is the shim (the subreaper that started the runtime).
    let parent = oci::parent_of(init).expect("the init's parent");
    let parent_exe = oci::exe_of(parent).expect("the parent's executable");
    assert!(
        parent_exe.ends_with("containerd-shim-runc-v2"),
        "parent of the init: {parent} {}",
        parent_exe.display()
    );
    let stayed = oci::running(&c.runtime, &c.pids());
    assert!(stayed.is_empty(), "runtime processes stayed: {stayed:?}");
    // The init catches SIGTERM before the test sends it (pid 1 of its
    // namespace: a signal without a handler would be dropped).
    assert!(zctr_tests::procs::wait_catches(
        init,
        libc::SIGTERM,
        Duration::from_secs(10)
    ));

    let out = c.exec(&[], &id, "x1", &["sh", "-c", "echo from-exec; exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "from-exec\n", "{}", describe(&out));

    // A long exec shows up in `task ps` next to the init.
    let out = c.exec(&["-d"], &id, "x2", &["sleep", "30"]);
    ok("ctr task exec -d", &out);
    assert!(
        wait_until(Duration::from_secs(10), || c.task_pids(&id).len() >= 2),
        "task ps: {:?}",
        c.task_pids(&id)
    );

    ok("ctr task pause", &c.ctr(&["task", "pause", &id]));
    assert_eq!(c.task_status(&id).as_deref(), Some("PAUSED"));
    if let Some(freezer) = c.containers_cg().v1_dir("freezer") {
        let state = std::fs::read_to_string(freezer.join(&id).join("freezer.state")).unwrap();
        assert_eq!(state.trim(), "FROZEN");
    } else if let Some(v2) = c.containers_cg().v2_dir() {
        let frozen = std::fs::read_to_string(v2.join(&id).join("cgroup.freeze")).unwrap();
        assert_eq!(frozen.trim(), "1");
    }
    ok("ctr task resume", &c.ctr(&["task", "resume", &id]));
    assert_eq!(c.task_status(&id).as_deref(), Some("RUNNING"));

    ok("ctr task kill", &c.ctr(&["task", "kill", &id]));
    assert!(
        wait_until(Duration::from_secs(10), || c.task_status(&id).as_deref()
            == Some("STOPPED")),
        "status: {:?}",
        c.task_status(&id)
    );
    let out = c.ctr(&["task", "delete", &id]);
    ok("ctr task delete", &out);
    // ctr reports the init's exit status (7, from its trap) on delete.
    assert!(
        text(&out.stderr).contains("exit code 7"),
        "{}",
        describe(&out)
    );
    ok(
        "ctr container delete",
        &c.ctr(&["container", "delete", &id]),
    );
    let out = c.ctr(&["task", "ls", "-q"]);
    assert_eq!(text(&out.stdout).trim(), "", "{}", describe(&out));
    assert!(
        wait_until(Duration::from_secs(10), || !cgroup_exists(&c, &id)),
        "cgroup of {id} left"
    );
    assert!(!state_exists(&c, &id), "runtime state of {id} left");
}
