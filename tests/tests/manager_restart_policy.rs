//! Restart policies: `on-failure:3` restarts a failing container exactly
//! three times with growing delays; `stop` is never undone by `always`; a
//! container that failed while the daemon was away is restarted when it
//! comes back. Run as root after `scripts/build-static.sh`.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{alive, run_args, Env, T};
use zctr_tests::wait_until;

fn events(env: &Env, id: &str) -> Vec<Value> {
    env.zctr(&[
        "events",
        "--no-follow",
        "--json",
        "--filter",
        &format!("id={id}"),
    ])
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

#[test]
fn on_failure_3_restarts_three_times_with_growing_delays() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    env.zctr(&run_args(
        "of",
        &rootfs,
        &["--restart", "on-failure:3"],
        &[probe, "exit", "1"],
    ));
    assert!(
        wait_until(Duration::from_secs(30), || {
            let i = env.inspect("of");
            i["restart_count"] == 3 && i["status"] == "stopped"
        }),
        "{}",
        env.inspect("of")
    );
    // No fourth: its back-off would be 0.8 s.
    std::thread::sleep(Duration::from_millis(2000));
    let i = env.inspect("of");
    assert_eq!(i["restart_count"], 3, "{i}");
    assert_eq!(i["status"], "stopped", "{i}");
    assert_eq!(i["exit"]["exit_code"], 1, "{i}");
    assert_eq!(i["config"]["restart"], "on-failure:3", "{i}");

    let ev = events(&env, "of");
    let at = |kind: &str| -> Vec<u64> {
        ev.iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["at_ms"].as_u64().unwrap())
            .collect()
    };
    let (exits, restarts) = (at("exited"), at("restarted"));
    assert_eq!(exits.len(), 4, "{ev:?}");
    assert_eq!(restarts.len(), 3, "{ev:?}");
    // The policy's waits grow (100, 200, 400 ms), and each restart came
    // after its wait (plus the time a create takes, which varies).
    let waits: Vec<u64> = ev
        .iter()
        .filter(|e| e["kind"] == "restarted")
        .map(|e| e["backoff_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(waits, [100, 200, 400], "{ev:?}");
    for n in 0..3 {
        let gap = restarts[n] - exits[n];
        assert!(gap >= waits[n], "restart {} after {gap} ms: {ev:?}", n + 1);
    }
    env.zctr(&["delete", "of"]);
}

#[test]
fn stop_is_never_undone_and_a_failure_while_away_is_restarted() {
    let Some(mut env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    let sleeper = [probe, "sleep", "inf", "--on-term", "1"];
    env.zctr(&run_args("al", &rootfs, &["--restart", "always"], &sleeper));
    env.zctr(&["stop", "-t", "5", "al"]);
    std::thread::sleep(Duration::from_millis(1500));
    let i = env.inspect("al");
    assert_eq!(
        (i["status"].as_str(), i["restart_count"].as_u64()),
        (Some("stopped"), Some(0)),
        "{i}"
    );

    env.zctr(&run_args(
        "aw",
        &rootfs,
        &["--restart", "on-failure"],
        &sleeper,
    ));
    let i = env.inspect("aw");
    let (init, shim) = (
        i["init"]["pid"].as_i64().unwrap(),
        i["shim"]["pid"].as_i64().unwrap(),
    );
    assert!(zctr_tests::procs::wait_catches(
        init as i32,
        libc::SIGTERM,
        T
    ));
    env.kill_daemon_group();
    zctr_tests::signal(init as i32, libc::SIGTERM).unwrap();
    assert!(wait_until(Duration::from_secs(20), || !alive(shim)));
    env.start_daemon();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let i = env.inspect("aw");
            i["restart_count"] == 1 && i["status"] == "running"
        }),
        "{}",
        env.inspect("aw")
    );
    let kinds: Vec<String> = events(&env, "aw")
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "started",
            "died_while_away",
            "restarted",
            "started"
        ]
    );
    env.zctr(&["delete", "--force", "aw"]);
    env.zctr(&["delete", "al"]);
}
