//! End-to-end lifecycle of the shim: exit codes, signals, the create/start
//! split, reaping, setup failures that leave nothing behind, its own session,
//! status.json and container.log. Run as root after `scripts/build-static.sh`.

mod shim_support;

use common::layout::{LOG_FILE, SOCKET_FILE, STATUS_FILE};
use serde_json::Value;
use shim_support::*;
use std::process::{Command, Stdio};
use std::time::Duration;
use zctr_tests::{bins, wait_until, Error};

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn alive(pid: i32) -> bool {
    // A zombie is not alive for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
            state != Some("Z")
        })
        .unwrap_or(false)
}

fn sleeping_probe() -> Vec<&'static str> {
    vec![PROBE, "sleep", "inf", "--on-term", "0"]
}

fn exit_of(st: &Value) -> &Value {
    &st["exit"]
}

#[test]
fn busybox_sh_exit_7() {
    if !root_or_skip("busybox_sh_exit_7") {
        return;
    }
    let mut c = Ctr::unprivileged(&[]);
    match c.rootfs.with_busybox() {
        Ok(()) => {}
        Err(Error::BusyboxUnavailable(why)) => {
            zctr_tests::skip::skip(why);
            return;
        }
        Err(e) => panic!("{e}"),
    }
    c.set_args(&["sh", "-c", "exit 7"]);
    let out = c.run();
    assert_eq!(out.status.code(), Some(7), "{}", zctr_tests::describe(&out));
    assert!(wait_until(T, || c.no_processes()));
}

#[test]
fn run_exits_with_the_containers_code() {
    if !root_or_skip("run_exits_with_the_containers_code") {
        return;
    }
    for code in ["0", "3", "255"] {
        let c = Ctr::unprivileged(&[PROBE, "exit", code]);
        let out = c.run();
        assert_eq!(
            out.status.code(),
            Some(code.parse().unwrap()),
            "{}",
            zctr_tests::describe(&out)
        );
    }
}

#[test]
fn run_mode_sigkill_exits_137() {
    if !root_or_skip("run_mode_sigkill_exits_137") {
        return;
    }
    let c = Ctr::unprivileged(&sleeping_probe());
    c.write_spec();
    let mut shim = Command::new(bins::shim())
        .arg("run")
        .arg("--bundle")
        .arg(&c.bundle)
        .arg("--id")
        .arg(&c.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut init = 0;
    let up = wait_until(T, || {
        init =
            c.cg.pids()
                .into_iter()
                .map(|p| p as i32)
                .find(|&p| cmdline(p).contains("zctr-probe sleep"))
                .unwrap_or(0);
        init != 0
    });
    if !up {
        let _ = shim.kill();
        let _ = shim.wait();
        panic!("the probe never ran");
    }
    zctr_tests::signal(init, libc::SIGKILL).unwrap();
    let mut status = None;
    wait_until(T, || {
        status = shim.try_wait().unwrap();
        status.is_some()
    });
    let status = status.unwrap_or_else(|| {
        let _ = shim.kill();
        shim.wait().unwrap()
    });
    assert_eq!(status.code(), Some(137));
    assert!(wait_until(T, || c.no_processes()));
}

#[test]
fn create_start_kill_and_status() {
    if !root_or_skip("create_start_kill_and_status") {
        return;
    }
    let c = Ctr::unprivileged(&sleeping_probe());
    c.create_ok();
    let st = c.wait_status("created", |s| s["state"] == "created");
    assert!(st["exit"].is_null());
    let (shim, init) = (c.shim_pid(), c.init_pid());
    // Created: the init waits before exec, it is still the shim.
    assert!(cmdline(init).contains("zctr-shim"), "{}", cmdline(init));
    assert!(alive(shim));
    // The shim has become the small monitor executable (same pid).
    let exe = std::fs::read_link(format!("/proc/{shim}/exe")).unwrap();
    assert!(exe.ends_with("zctr-shim-monitor"), "{}", exe.display());
    assert!(!c.shim_log().contains("in-process"), "{}", c.shim_log());
    let state = c.ctl_ok("state", &[]);
    let v: Value = serde_json::from_slice(&state.stdout).unwrap();
    assert_eq!(v["state"], "created");
    // The shim is in its own session (and process group), apart from ours.
    let stat = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let (pgrp, sid): (i32, i32) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
    assert_eq!(sid, shim, "the shim is not a session leader");
    assert_eq!(pgrp, shim);
    let own_sid = std::fs::read_to_string("/proc/self/stat").unwrap();
    let own_sid: i32 = own_sid
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()[3]
        .parse()
        .unwrap();
    assert_ne!(sid, own_sid);

    c.ctl_ok("start", &[]);
    c.wait_status("running", |s| {
        s["state"] == "running" && !s["started_ms"].is_null()
    });
    assert!(wait_until(T, || cmdline(init).contains("zctr-probe sleep")));
    // Idle means blocked: no CPU burnt while the container runs quietly (a
    // closed fd left in the poll set once made the loop spin).
    let cpu = |pid: i32| -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<u64> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|v| v.parse().unwrap())
            .collect();
        f[0] + f[1]
    };
    let before = cpu(shim);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let used = cpu(shim) - before;
    // A spin burns ~150 ticks; the one-off idle page release after 1 s costs
    // a few under emulation (the VM test runs under TCG).
    assert!(used <= 15, "the idle shim used {used} clock ticks in 1.5 s");

    c.ctl_ok("kill", &["KILL"]);
    let st = c.wait_status("stopped", |s| s["state"] == "stopped");
    assert_eq!(exit_of(&st)["signal"], 9, "{st}");
    assert!(exit_of(&st)["code"].is_null(), "{st}");
    assert_eq!(exit_of(&st)["oom_killed"], false);
    assert!(
        wait_until(T, || !alive(shim) && !alive(init)),
        "shim or init lingers"
    );
    assert!(wait_until(T, || c.no_processes()));
    assert!(c.state.join(LOG_FILE).exists());
}

#[test]
fn term_is_forwarded_and_exit_code_recorded() {
    if !root_or_skip("term_is_forwarded_and_exit_code_recorded") {
        return;
    }
    let c = Ctr::unprivileged(&[PROBE, "sleep", "inf", "--on-term", "42"]);
    c.create_ok();
    c.ctl_ok("start", &[]);
    let init = c.init_pid();
    assert!(zctr_tests::procs::wait_catches(init, libc::SIGTERM, T));
    // A signal to the shim itself is forwarded to the container's init.
    zctr_tests::signal(c.shim_pid(), libc::SIGTERM).unwrap();
    let st = c.wait_status("stopped", |s| s["state"] == "stopped");
    assert_eq!(exit_of(&st)["code"], 42, "{st}");
    assert!(wait_until(T, || c.no_processes()));
}

#[test]
fn shim_survives_a_kill_of_the_callers_group() {
    if !root_or_skip("shim_survives_a_kill_of_the_callers_group") {
        return;
    }
    let c = Ctr::unprivileged(&sleeping_probe());
    c.write_spec();
    // The caller: creates the container, then lingers in its process group.
    let procs: Vec<String> = c
        .shim_cg
        .dirs()
        .iter()
        .map(|d| d.path.join("cgroup.procs").display().to_string())
        .collect();
    let mut caller = {
        use std::os::unix::process::CommandExt;
        Command::new("sh")
            .arg("-c")
            .arg(r#"for f in $ZCTR_PROCS; do echo $$ > "$f"; done; "$@" && sleep 600"#)
            .arg("sh")
            .arg(bins::shim())
            .arg("create")
            .arg("--bundle")
            .arg(&c.bundle)
            .arg("--id")
            .arg(&c.id)
            .arg("--state-dir")
            .arg(&c.state)
            .env("ZCTR_PROCS", procs.join(" "))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let pgid = caller.id() as i32;
    c.wait_status("created", |s| s["state"] == "created");
    let shim = c.shim_pid();
    zctr_tests::signal(-pgid, libc::SIGKILL).unwrap();
    caller.wait().unwrap();
    // The group is gone; the shim and its container are not.
    assert!(alive(shim), "the shim died with its caller's group");
    c.ctl_ok("start", &[]);
    c.wait_status("running", |s| s["state"] == "running");
    assert!(zctr_tests::procs::wait_catches(
        c.init_pid(),
        libc::SIGTERM,
        T
    ));
    c.ctl_ok("kill", &["TERM"]);
    let st = c.wait_status("stopped", |s| s["state"] == "stopped");
    assert_eq!(exit_of(&st)["code"], 0, "{st}");
}

#[test]
fn container_log_has_stdout_and_stderr() {
    if !root_or_skip("container_log_has_stdout_and_stderr") {
        return;
    }
    let c = Ctr::unprivileged(&[PROBE, "print", "hello from the container"]);
    c.create_ok();
    c.ctl_ok("start", &[]);
    let st = c.wait_status("stopped", |s| s["state"] == "stopped");
    assert_eq!(exit_of(&st)["code"], 0, "{st}");
    // The shim exits only after draining the pipes.
    let shim = st["shim"]["pid"].as_i64().unwrap() as i32;
    assert!(wait_until(T, || !alive(shim)));
    let log = c.container_log();
    assert_eq!(
        log.matches("hello from the container\n").count(),
        2,
        "container.log: {log:?}"
    );
}

#[test]
fn orphans_are_reaped_and_nothing_lingers() {
    if !root_or_skip("orphans_are_reaped_and_nothing_lingers") {
        return;
    }
    // The probe (pid 1 inside) reaps its reparented grandchildren.
    let c = Ctr::unprivileged(&[PROBE, "orphans", "3", "0.2", "--hold", "1"]);
    let out = c.run();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let spawned = events
        .iter()
        .find(|e| e["event"] == "spawned")
        .expect("spawned");
    let done = events.iter().find(|e| e["event"] == "done").expect("done");
    let mut grandchildren: Vec<i64> = spawned["grandchildren"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    let mut reaped: Vec<i64> = done["reaped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    grandchildren.sort();
    reaped.sort();
    assert_eq!(grandchildren.len(), 3);
    assert_eq!(reaped, grandchildren, "{text}");
    assert!(wait_until(T, || c.no_processes()));

    // An init that never reaps: its orphans (zombies or still sleeping) die
    // with the pid namespace and the shim reaps what reaches it.
    let c = Ctr::unprivileged(&[PROBE, "orphans", "3", "5", "--hold", "0.3", "--no-reap"]);
    let started = std::time::Instant::now();
    let out = c.run();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the shim waited for the orphans"
    );
    assert!(
        wait_until(T, || c.no_processes()),
        "left: {:?}",
        c.cg.pids()
    );
}

/// Everything a failed setup must not leave: processes, the cgroup directory
/// the shim created, mounts below the scratch directory.
fn assert_nothing_left(c: &Ctr, created_cgroup: &str) {
    assert!(
        wait_until(T, || c.no_processes()),
        "left: {:?}",
        c.cg.pids()
    );
    for d in c.cg.dirs() {
        let dir = d.path.join(created_cgroup);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    assert!(
        host_mounts_below(c.tmp.path()).is_empty(),
        "{:?}",
        host_mounts_below(c.tmp.path())
    );
}

/// A spec whose cgroupsPath is a directory the shim must create (and remove).
fn with_own_cgroup(c: &mut Ctr) -> &'static str {
    let path = format!("{}/ctr", c.cg.relative_path());
    c.spec["linux"]["cgroupsPath"] = path.into();
    "ctr"
}

#[test]
fn setup_failure_bind_source_missing() {
    if !root_or_skip("setup_failure_bind_source_missing") {
        return;
    }
    for create in [false, true] {
        let mut c = Ctr::unprivileged(&sleeping_probe());
        let sub = with_own_cgroup(&mut c);
        c.spec["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "destination": "/data", "type": "bind",
                "source": c.tmp.join("no-such-dir"), "options": ["rbind"]
            }));
        let out = if create { c.create() } else { c.run() };
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
        assert!(
            err.contains("mounts[") && err.contains("no-such-dir"),
            "{err}"
        );
        assert_nothing_left(&c, sub);
    }
}

#[test]
fn setup_failure_in_the_child_cleans_up() {
    if !root_or_skip("setup_failure_in_the_child_cleans_up") {
        return;
    }
    // A tmpfs mount with options the kernel refuses fails inside the child,
    // after namespaces, cgroups and some mounts exist.
    for create in [false, true] {
        let mut c = Ctr::unprivileged(&sleeping_probe());
        let sub = with_own_cgroup(&mut c);
        c.spec["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "destination": "/bad", "type": "tmpfs", "source": "tmpfs",
                "options": ["size=not-a-size"]
            }));
        let out = if create { c.create() } else { c.run() };
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
        assert!(err.contains("mount") && err.contains("/bad"), "{err}");
        assert_nothing_left(&c, sub);
        if create {
            assert!(!c.state.join(SOCKET_FILE).exists() || !c.state.join(STATUS_FILE).exists());
        }
    }
}

#[test]
fn missing_binary_is_a_clear_error() {
    if !root_or_skip("missing_binary_is_a_clear_error") {
        return;
    }
    let mut c = Ctr::unprivileged(&["/bin/no-such-binary"]);
    let sub = with_own_cgroup(&mut c);
    let out = c.run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    assert!(
        err.contains("find executable /bin/no-such-binary: No such file or directory"),
        "{err}"
    );
    assert_nothing_left(&c, sub);

    // create fails too (looked up in the container's PATH), like runc's create.
    let mut c = Ctr::unprivileged(&["no-such-binary"]);
    let sub = with_own_cgroup(&mut c);
    let out = c.create();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    assert!(err.contains("find executable no-such-binary"), "{err}");
    assert!(!c.state.join(SOCKET_FILE).exists());
    assert_nothing_left(&c, sub);

    // A file that is there but not executable.
    let mut c = Ctr::unprivileged(&["/etc/hostname"]);
    let sub = with_own_cgroup(&mut c);
    let out = c.run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("find executable /etc/hostname: Permission denied"),
        "{err}"
    );
    assert_nothing_left(&c, sub);
}

#[test]
fn without_the_monitor_executable_the_shim_monitors_in_process() {
    if !root_or_skip("without_the_monitor_executable_the_shim_monitors_in_process") {
        return;
    }
    let mut c = Ctr::unprivileged(&[PROBE, "sleep", "inf", "--on-term", "3"]);
    // zctr-shim alone in a directory: no zctr-shim-monitor beside it.
    let lone = c.tmp.join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    c.shim_bin = lone.join("zctr-shim");
    std::fs::copy(zctr_tests::bins::shim(), &c.shim_bin).unwrap();
    c.create_ok();
    let shim = c.shim_pid();
    let exe = std::fs::read_link(format!("/proc/{shim}/exe")).unwrap();
    assert!(exe.ends_with("zctr-shim"), "{}", exe.display());
    assert!(
        c.shim_log().contains("monitoring in-process"),
        "{}",
        c.shim_log()
    );
    c.ctl_ok("start", &[]);
    c.wait_status("running", |s| s["state"] == "running");
    assert!(zctr_tests::procs::wait_catches(
        c.init_pid(),
        libc::SIGTERM,
        T
    ));
    c.ctl_ok("kill", &["TERM"]);
    let st = c.wait_status("stopped", |s| s["state"] == "stopped");
    assert_eq!(exit_of(&st)["code"], 3, "{st}");
    assert!(wait_until(T, || c.no_processes()));
}

#[test]
fn a_client_gone_while_the_container_exits_is_dropped_cleanly() {
    if !root_or_skip("a_client_gone_while_the_container_exits_is_dropped_cleanly") {
        return;
    }
    let c = Ctr::unprivileged(&sleeping_probe());
    c.create_ok();
    c.ctl_ok("start", &[]);
    c.wait_status("running", |s| s["state"] == "running");
    let (shim, init) = (c.shim_pid(), c.init_pid());
    let mut client = std::os::unix::net::UnixStream::connect(c.state.join(SOCKET_FILE)).unwrap();
    let mut hello = [0u8; 64];
    assert!(std::io::Read::read(&mut client, &mut hello).unwrap() > 0);
    // Both events reach the monitor in one poll: the client's hang-up and the
    // init's death, whose broadcast then fails to reach that client.
    zctr_tests::signal(shim, libc::SIGSTOP).unwrap();
    drop(client);
    zctr_tests::signal(init, libc::SIGKILL).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    zctr_tests::signal(shim, libc::SIGCONT).unwrap();
    let st = c.wait_status("stopped", |s| s["state"] == "stopped");
    assert_eq!(exit_of(&st)["signal"], 9, "{st}");
    assert!(wait_until(T, || !alive(shim)), "the monitor lingers");
    assert!(!c.shim_log().contains("panicked"), "{}", c.shim_log());
    // It finished its work: socket removed, cgroups gone, nothing running.
    assert!(!c.state.join(SOCKET_FILE).exists());
    assert!(wait_until(T, || c.no_processes()));
}

/// `zctr-shim` alone in a directory of the fixture, beside a
/// `zctr-shim-monitor` shell script that runs `before` and then the real one.
fn with_monitor_wrapper(c: &mut Ctr, before: &str) {
    use std::os::unix::fs::PermissionsExt;
    let dir = c.tmp.join("wrapped");
    std::fs::create_dir_all(&dir).unwrap();
    c.shim_bin = dir.join("zctr-shim");
    std::fs::copy(zctr_tests::bins::shim(), &c.shim_bin).unwrap();
    let real = zctr_tests::bins::find("zctr-shim-monitor").unwrap();
    let script = dir.join("zctr-shim-monitor");
    std::fs::write(
        &script,
        format!("#!/bin/sh\n{before}\nexec {} \"$@\"\n", real.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_monitor_that_cannot_take_over_gives_the_container_up_cleanly() {
    if !root_or_skip("a_monitor_that_cannot_take_over_gives_the_container_up_cleanly") {
        return;
    }
    // The monitor cannot reopen the log: the container must not stay behind.
    let mut c = Ctr::unprivileged(&sleeping_probe());
    let sub = with_own_cgroup(&mut c);
    let log = c.state.join(LOG_FILE);
    with_monitor_wrapper(
        &mut c,
        &format!("rm -f '{0}' && mkdir '{0}'", log.display()),
    );
    let out = c.create();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    assert!(err.contains("log file"), "{err}");
    assert!(!c.state.join(SOCKET_FILE).exists());
    assert_nothing_left(&c, sub);

    // A hand-off from another build is refused, not misread.
    let mut c = Ctr::unprivileged(&sleeping_probe());
    let sub = with_own_cgroup(&mut c);
    with_monitor_wrapper(
        &mut c,
        "[ \"$3\" = --handoff ] && h=$4 && set -- \"$1\" \"$2\" \"$3\" \"5a43484f63${h#5a43484f??}\"",
    );
    let out = c.create();
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    assert!(
        c.shim_log()
            .contains("install both executables from one build"),
        "{}",
        c.shim_log()
    );
    assert_nothing_left(&c, sub);
}
