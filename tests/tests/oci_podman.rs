//! podman drives the OCI runtime under test (zctr-oci, or `$ZCTR_OCI_RUNTIME`,
//! e.g. runc to check the harness): `podman --runtime <it>` with private
//! storage, config and a cgroup parent below the test's own cgroup (see
//! `zctr_tests::oci::podman`). Skipped (a failure under `CI=true`) without
//! root, podman, conmon, a static busybox or the runtime.

use std::process::Output;
use std::time::Duration;
use zctr_tests::oci::{self, podman::Podman};
use zctr_tests::{describe, wait_until};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(what: &str, out: &Output) {
    assert!(out.status.success(), "{what}: {}", describe(out));
}

/// No container left in podman, none the runtime still knows, no container
/// cgroup left below the parent. A `run --rm` container is deleted by
/// conmon's exit command too, so give it a moment.
fn assert_nothing_left(p: &Podman) {
    let out = p.run(&["ps", "-a", "-q"]);
    ok("podman ps -a", &out);
    assert_eq!(text(&out.stdout).trim(), "", "containers left");
    let ids = p.container_ids();
    assert!(!ids.is_empty(), "no container id recorded");
    let known = || -> Vec<String> {
        ids.iter()
            .filter(|id| p.runtime_knows(id))
            .cloned()
            .collect()
    };
    let cgroups = || -> Vec<std::path::PathBuf> {
        p.cg.dirs()
            .iter()
            .flat_map(|d| std::fs::read_dir(&d.path).unwrap().flatten())
            .filter(|e| e.file_name().to_string_lossy().starts_with("libpod-"))
            .map(|e| e.path())
            .collect()
    };
    wait_until(Duration::from_secs(10), || {
        known().is_empty() && cgroups().is_empty()
    });
    assert_eq!(
        known(),
        Vec::<String>::new(),
        "the runtime still knows them"
    );
    assert_eq!(
        cgroups(),
        Vec::<std::path::PathBuf>::new(),
        "container cgroups left"
    );
}

/// The container's freezer state seen from the host: v1 `freezer.state`, or
/// cgroup2 `cgroup.freeze` (`1` → FROZEN, `0` → THAWED).
fn freezer_state(p: &Podman, id: &str) -> String {
    if let Some(dir) = p.container_cgroup(id, "freezer") {
        return std::fs::read_to_string(dir.join("freezer.state"))
            .unwrap_or_else(|e| format!("read {}: {e}", dir.display()))
            .trim()
            .to_string();
    }
    let dir = p.container_cgroup(id, "").expect("a freezer hierarchy");
    match std::fs::read_to_string(dir.join("cgroup.freeze")).map(|s| s.trim().to_string()) {
        Ok(v) if v == "1" => "FROZEN".into(),
        Ok(v) if v == "0" => "THAWED".into(),
        other => format!("{other:?}"),
    }
}

#[test]
fn run_rm_passes_stdout_stderr_and_the_exit_code() {
    let Some(p) = Podman::new() else { return };
    let out = p.run_container(
        &["--rm"],
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "out\n", "{}", describe(&out));
    assert!(
        text(&out.stderr).lines().any(|l| l == "err"),
        "{}",
        describe(&out)
    );
    assert_nothing_left(&p);
}

#[test]
fn a_detached_container_runs_exec_logs_pause_stop_and_rm() {
    let Some(p) = Podman::new() else { return };
    let script = "echo hello; trap 'echo term; exit 0' TERM; while true; do sleep 0.1; done";
    let out = p.run_container(&["-d", "--name", "c1"], &["/bin/sh", "-c", script]);
    ok("podman run -d", &out);
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "container id: {}", describe(&out));

    // The init runs in the cgroup podman asked for, below the test's own.
    let pid = p.inspect("c1", "{{.State.Pid}}");
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let want = format!("{}/libpod-{id}", p.cgroup_parent);
    assert!(
        cgroups.lines().any(|l| l.ends_with(&format!(":{want}"))),
        "init {pid} not in {want}:\n{cgroups}"
    );
    assert_eq!(p.inspect("c1", "{{.State.Status}}"), "running");
    // runc's process model: no runtime process stays after create/start; the
    // init's parent is conmon (the subreaper that started the runtime).
    let pid: i32 = pid.parse().unwrap();
    let conmon: i32 = p.inspect("c1", "{{.State.ConmonPid}}").parse().unwrap();
    assert_eq!(oci::parent_of(pid), Some(conmon), "parent of the init");
    let stayed = oci::running(&p.runtime, &p.cg.pids());
    assert!(stayed.is_empty(), "runtime processes stayed: {stayed:?}");

    let out = p.run(&[
        "exec",
        "c1",
        "/bin/sh",
        "-c",
        "echo in-exec; echo exec-err >&2; exit 6",
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "in-exec\n", "{}", describe(&out));
    assert!(text(&out.stderr).contains("exec-err"), "{}", describe(&out));

    let logs_have = |word: &str| {
        wait_until(Duration::from_secs(10), || {
            let out = p.run(&["logs", "c1"]);
            out.status.success() && text(&out.stdout).lines().any(|l| l == word)
        })
    };
    assert!(
        logs_have("hello"),
        "logs: {}",
        describe(&p.run(&["logs", "c1"]))
    );

    ok("podman pause", &p.run(&["pause", "c1"]));
    assert_eq!(p.inspect("c1", "{{.State.Status}}"), "paused");
    assert_eq!(freezer_state(&p, &id), "FROZEN");
    ok("podman unpause", &p.run(&["unpause", "c1"]));
    assert_eq!(p.inspect("c1", "{{.State.Status}}"), "running");
    assert_eq!(freezer_state(&p, &id), "THAWED");

    // SIGTERM reaches the init's trap: it exits 0 long before the time limit.
    let started = std::time::Instant::now();
    ok("podman stop", &p.run(&["stop", "-t", "20", "c1"]));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        started.elapsed()
    );
    assert_eq!(p.inspect("c1", "{{.State.Status}}"), "exited");
    assert_eq!(p.inspect("c1", "{{.State.ExitCode}}"), "0");
    assert!(
        logs_have("term"),
        "logs: {}",
        describe(&p.run(&["logs", "c1"]))
    );

    // An init without a handler ignores SIGTERM: stop falls back to SIGKILL.
    let out = p.run_container(
        &["-d", "--name", "c2"],
        &["/bin/sh", "-c", "while true; do sleep 0.1; done"],
    );
    ok("podman run -d c2", &out);
    ok("podman stop c2", &p.run(&["stop", "-t", "1", "c2"]));
    assert_eq!(p.inspect("c2", "{{.State.ExitCode}}"), "137");

    ok("podman rm", &p.run(&["rm", "c1", "c2"]));
    assert!(!p
        .container_cgroup(&id, "memory")
        .is_some_and(|d| d.exists()));
    assert_nothing_left(&p);
}

#[test]
fn memory_and_pids_limits_hold_inside_the_container() {
    let Some(p) = Podman::new() else { return };
    let limits = ["--rm", "--memory", "64m", "--pids-limit", "20"];
    let read = |v1: &str, v2: &str| {
        format!("cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}")
    };
    let script = format!(
        "{}; {}",
        read("memory/memory.limit_in_bytes", "memory.max"),
        read("pids/pids.max", "pids.max")
    );
    let out = p.run_container(&limits, &["/bin/sh", "-c", &script]);
    ok("read the limits inside", &out);
    assert_eq!(text(&out.stdout), "67108864\n20\n", "{}", describe(&out));

    // 16 MiB fit; touching 128 MiB gets the process OOM-killed (SIGKILL).
    let out = p.run_container(
        &limits,
        &[
            "/bin/sh",
            "-c",
            "dd if=/dev/zero of=/dev/null bs=16M count=1 || exit 10; \
             dd if=/dev/zero of=/dev/null bs=128M count=1; echo big=$?",
        ],
    );
    ok("memory run", &out);
    assert_eq!(text(&out.stdout), "big=137\n", "{}", describe(&out));

    // 10 more processes fit, 30 do not.
    let forks = |n: u32| {
        p.run_container(
            &limits,
            &[
                "/bin/sh",
                "-c",
                &format!("for i in $(seq {n}); do sleep 2 & done; echo forked"),
            ],
        )
    };
    let out = forks(10);
    ok("10 processes", &out);
    let out = forks(30);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("can't fork"),
        "{}",
        describe(&out)
    );
    assert_nothing_left(&p);
}

#[test]
fn run_and_exec_with_a_terminal_go_through_the_console_socket() {
    let Some(p) = Podman::new() else { return };
    // conmon hands the runtime a --console-socket and reads the pty: the
    // container's stdio is a terminal (its line discipline turns \n into \r\n).
    let script = "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; exit 4";
    let out = p.run_container(&["--rm", "-t"], &["/bin/sh", "-c", script]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "is-a-tty\r\n", "{}", describe(&out));

    let out = p.run_container(
        &["-d", "--name", "t1"],
        &["/bin/sh", "-c", "while true; do sleep 0.1; done"],
    );
    ok("podman run -d", &out);
    let out = p.run(&["exec", "-t", "t1", "/bin/sh", "-c", script]);
    assert_eq!(out.status.code(), Some(4), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "is-a-tty\r\n", "{}", describe(&out));
    ok("podman rm -f", &p.run(&["rm", "-f", "-t", "0", "t1"]));
    assert_nothing_left(&p);
}
