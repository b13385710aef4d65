//! End-to-end tests of daemon restarts that never kill containers: `kill -9`
//! of the daemon's whole process group leaves the containers (and their shims)
//! running, a restarted daemon reattaches them, and `logs` has what the
//! containers wrote while no daemon was there. Run as root after
//! `scripts/build-static.sh`.

mod support;

use std::process::Command;
use std::time::Duration;
use support::{alive, pgrp_and_session, read_counter, run_args, Env, T};
use zctr_tests::{run_cmd, wait_until};

#[test]
fn manager_kill_9_of_the_daemon_group_leaves_containers_running() {
    let Some(mut env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    let vol = env.volume_dir("vol");
    let volume = format!("{}:/data", vol.display());
    let count = vol.join("count");

    env.zctr(&run_args(
        "survivor",
        &rootfs,
        &["-v", &volume],
        &[probe, "counter", "/data/count"],
    ));
    env.zctr(&[
        "create", "waiting", "--rootfs", &rootfs, "--", probe, "exit", "5",
    ]);
    // One paused across the restart.
    let ice_vol = env.volume_dir("ice");
    let ice_volume = format!("{}:/data", ice_vol.display());
    let ice_count = ice_vol.join("count");
    env.zctr(&run_args(
        "ice",
        &rootfs,
        &["-v", &ice_volume],
        &[probe, "counter", "/data/count"],
    ));
    assert!(wait_until(Duration::from_secs(10), || read_counter(
        &ice_count
    )
    .is_some()));
    env.zctr(&["pause", "ice"]);
    let ice_frozen = read_counter(&ice_count).unwrap();
    let before = env.inspect("survivor");
    let init = before["init"]["pid"].as_i64().unwrap();
    let shim = before["shim"]["pid"].as_i64().unwrap();
    let waiting_shim = env.inspect("waiting")["shim"]["pid"].as_i64().unwrap();
    assert!(wait_until(Duration::from_secs(10), || read_counter(&count).is_some()));

    // The shims are neither in the daemon's process group nor in its session.
    let daemon = i64::from(env.daemon_pid());
    assert_eq!(pgrp_and_session(daemon).0, daemon);
    for pid in [shim, waiting_shim] {
        let (pgrp, sid) = pgrp_and_session(pid);
        assert_ne!(pgrp, daemon, "shim {pid} in the daemon's process group");
        assert_ne!(
            sid,
            pgrp_and_session(daemon).1,
            "shim {pid} in the daemon's session"
        );
    }

    env.kill_daemon_group();
    assert!(!alive(daemon), "the daemon survived kill -9");
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(init), "container init died with the daemon");
    assert!(alive(shim), "shim died with the daemon");
    assert!(
        alive(waiting_shim),
        "created container's shim died with the daemon"
    );
    let n = read_counter(&count).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || read_counter(&count)
            .is_some_and(|m| m > n + 2)),
        "the container stopped counting without the daemon"
    );

    env.start_daemon();
    let after = env.inspect("survivor");
    assert_eq!(after["status"], "running", "{after}");
    assert_eq!(after["init"]["pid"].as_i64(), Some(init));
    assert_eq!(after["shim"]["pid"].as_i64(), Some(shim));
    assert!(after["stop_reason"].is_null());
    assert_eq!(env.status("waiting"), "created");
    assert_eq!(env.status("ice"), "paused");
    assert_eq!(read_counter(&ice_count).unwrap(), ice_frozen);
    env.zctr(&["resume", "ice"]);
    assert!(
        wait_until(Duration::from_secs(5), || read_counter(&ice_count)
            .is_some_and(|m| m > ice_frozen)),
        "not thawed after the restart"
    );
    env.zctr(&["pause", "ice"]);
    env.zctr(&["delete", "--force", "ice"]);
    for d in env.cgroup_dirs("ice") {
        assert!(!d.exists(), "{} left", d.display());
    }

    // Reattached: cgroup operations and the shim link both work.
    env.zctr(&["pause", "survivor"]);
    let frozen = read_counter(&count).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(read_counter(&count).unwrap(), frozen);
    env.zctr(&["resume", "survivor"]);
    assert!(wait_until(Duration::from_secs(5), || read_counter(&count)
        .is_some_and(|m| m > frozen)));
    env.zctr(&["start", "waiting"]);
    let out = env.try_zctr(&["wait", "waiting"]);
    assert_eq!(out.status.code(), Some(5), "{out:?}\n{}", env.daemon_log());
    env.zctr(&["kill", "survivor", "KILL"]);
    let out = env.try_zctr(&["wait", "survivor"]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    assert_eq!(env.inspect("survivor")["exit"]["signal"], 9);
    assert!(wait_until(Duration::from_secs(5), || !alive(shim)));

    // Once more, with nothing running: reconciliation keeps the outcomes.
    env.kill_daemon_group();
    env.start_daemon();
    assert_eq!(env.inspect("survivor")["exit"]["exit_code"], 137);
    assert_eq!(env.inspect("waiting")["exit"]["code"], 5);
    for id in ["survivor", "waiting"] {
        env.zctr(&["delete", id]);
        for d in env.cgroup_dirs(id) {
            assert!(!d.exists(), "{} left", d.display());
        }
    }
}

#[test]
fn manager_logs_keep_what_was_written_while_the_daemon_was_down() {
    let Some(mut env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    let busybox = match env.rootfs.with_busybox() {
        Ok(()) => true,
        Err(e) => {
            zctr_tests::skip::skip(format!("the parts with a periodic printer (busybox): {e}"));
            false
        }
    };

    // Prints {"event":"spawned",...} at once, {"event":"done",...} 4 s later, exits 0.
    env.zctr(&run_args(
        "late",
        &rootfs,
        &[],
        &[probe, "orphans", "0", "0", "--hold", "8"],
    ));
    // Prints "tick N" every 100 ms and keeps running.
    let ticker = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done";
    // OOM-killed while the daemon is away.
    // (Timed for the emulated VM too, where each `run` takes a second or two.)
    let hog = "sleep 6; exec /bin/zctr-probe alloc 128 --touch";
    if busybox {
        env.zctr(&run_args(
            "ticker",
            &rootfs,
            &[],
            &["/bin/sh", "-c", ticker],
        ));
        env.zctr(&run_args(
            "hog",
            &rootfs,
            &["--memory", "33554432"],
            &["/bin/sh", "-c", hog],
        ));
    }
    let last_tick = |logs: &str| -> u64 {
        logs.lines()
            .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
            .max()
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(10), || env
            .logs("late")
            .contains("spawned")),
        "{}",
        env.logs("late")
    );
    let early = env.logs("late");
    assert!(!early.contains("\"done\""), "{early}");
    let ticks_before = if busybox {
        assert!(wait_until(Duration::from_secs(10), || last_tick(
            &env.logs("ticker")
        ) >= 3));
        last_tick(&env.logs("ticker"))
    } else {
        0
    };

    if busybox {
        assert_eq!(
            env.status("hog"),
            "running",
            "OOM came too early for this test"
        );
    }
    env.kill_daemon_group();
    let log_file = env.root.join("late").join(common::layout::LOG_FILE);
    assert!(
        wait_until(Duration::from_secs(15), || std::fs::read_to_string(
            &log_file
        )
        .is_ok_and(|s| s.contains("\"done\""))),
        "nothing written while the daemon was down"
    );
    std::thread::sleep(Duration::from_millis(300));

    env.start_daemon();
    let logs = env.logs("late");
    assert!(logs.contains("spawned"), "{logs}");
    assert!(logs.contains("\"done\""), "{logs}");
    assert!(
        logs.find("spawned").unwrap() < logs.find("\"done\"").unwrap(),
        "{logs}"
    );
    let late = env.inspect("late");
    assert_eq!(late["status"], "stopped", "{late}");
    assert_eq!(late["exit"]["code"], 0, "{late}");

    // follow on a stopped container prints everything and ends.
    let out = run_cmd(
        Command::new(support::zctr_bin())
            .arg("--socket")
            .arg(&env.socket)
            .args(["logs", "--follow", "late"]),
        T,
    )
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), logs);

    if busybox {
        // Every tick is there, without a gap, well past what was seen before.
        let logs = env.logs("ticker");
        let ticks: Vec<u64> = logs
            .lines()
            .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
            .collect();
        let expected: Vec<u64> = (1..=ticks.len() as u64).collect();
        assert_eq!(ticks, expected, "{logs}");
        assert!(
            last_tick(&logs) >= ticks_before + 10,
            "{ticks_before} before, {} after",
            last_tick(&logs)
        );
        assert_eq!(env.status("ticker"), "running");
        env.zctr(&["delete", "--force", "ticker"]);

        assert!(wait_until(Duration::from_secs(30), || env.status("hog") == "stopped"));
        let hog = env.inspect("hog");
        assert_eq!(hog["status"], "stopped", "{hog}");
        assert_eq!(hog["exit"]["signal"], 9, "{hog}");
        assert_eq!(hog["exit"]["oom_killed"], true, "{hog}");
        assert!(env.logs("hog").contains("allocated 1 MiB"));
        env.zctr(&["delete", "hog"]);
    }
    env.zctr(&["delete", "late"]);
}
