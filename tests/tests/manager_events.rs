//! `zctr events` (GET /v1/events): every lifecycle change in order, with exit
//! codes; followers see new events as they happen; exits that happened while
//! the daemon was away are reported after it restarts, in the order they
//! happened. Run as root after `scripts/build-static.sh`.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{alive, run_args, zctr_bin, Env, T};
use zctr_tests::wait_until;

fn events(env: &Env, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["events", "--no-follow", "--json"];
    args.extend_from_slice(extra);
    env.zctr(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn kinds(ev: &[Value]) -> Vec<String> {
    ev.iter()
        .map(|e| {
            format!(
                "{} {}",
                e["id"].as_str().unwrap(),
                e["kind"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn every_change_in_order_and_followers_see_them_live() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();

    // A follower from the start (text output, as a person reads it).
    let mut follower = Command::new(zctr_bin())
        .arg("--socket")
        .arg(&env.socket)
        .args(["events", "--filter", "id=e1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = follower.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .take_while(|l| !l.contains(" deleted"))
            .collect::<Vec<_>>()
    });

    env.zctr(&[
        "create",
        "e1",
        "--rootfs",
        &rootfs,
        "--",
        probe,
        "sleep",
        "inf",
        "--on-term",
        "3",
    ]);
    env.zctr(&["start", "e1"]);
    env.zctr(&["pause", "e1"]);
    env.zctr(&["resume", "e1"]);
    let init = env.inspect("e1")["init"]["pid"].as_i64().unwrap() as i32;
    assert!(zctr_tests::procs::wait_catches(init, libc::SIGTERM, T));
    env.zctr(&["kill", "e1", "TERM"]);
    env.try_zctr(&["wait", "e1"]);
    env.zctr(&["delete", "e1"]);
    env.zctr(&run_args("other", &rootfs, &[], &[probe, "exit", "0"]));

    let ev = events(&env, &["--filter", "id=e1"]);
    assert_eq!(
        kinds(&ev),
        [
            "e1 created",
            "e1 started",
            "e1 paused",
            "e1 resumed",
            "e1 exited",
            "e1 deleted"
        ]
    );
    assert_eq!(ev[4]["exit_code"], 3);
    let seqs: Vec<u64> = ev.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let times: Vec<u64> = ev.iter().map(|e| e["at_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // --since after everything: nothing.
    let later = (times[5] / 1000 + 1).to_string();
    assert!(events(&env, &["--filter", "id=e1", "--since", &later]).is_empty());

    let lines = reader.join().unwrap();
    let _ = follower.kill();
    let _ = follower.wait();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(lines[0].ends_with(" e1 created"), "{lines:?}");
    assert!(lines[4].contains(" e1 exited exit_code=3"), "{lines:?}");
    env.zctr(&["delete", "other"]);
}

#[test]
fn exits_while_the_daemon_was_away_come_after_its_restart_in_their_order() {
    let Some(mut env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    for id in ["a1", "a2"] {
        env.zctr(&run_args(
            id,
            &rootfs,
            &[],
            &[probe, "sleep", "inf", "--on-term", "0"],
        ));
    }
    let pid = |id: &str, what: &str| env.inspect(id)[what]["pid"].as_i64().unwrap();
    let (a1, a2) = (pid("a1", "init"), pid("a2", "init"));
    let shims = [pid("a1", "shim"), pid("a2", "shim")];
    for p in [a1, a2] {
        assert!(zctr_tests::procs::wait_catches(p as i32, libc::SIGTERM, T));
    }
    env.kill_daemon_group();
    // a2 stops first, then a1: the reverse of the order recovery reads them.
    zctr_tests::signal(a2 as i32, libc::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    zctr_tests::signal(a1 as i32, libc::SIGTERM).unwrap();
    assert!(wait_until(Duration::from_secs(20), || shims
        .iter()
        .all(|&s| !alive(s))));
    env.start_daemon();

    let ev = events(&env, &[]);
    let away: Vec<&Value> = ev
        .iter()
        .filter(|e| e["kind"] == "died_while_away")
        .collect();
    assert_eq!(
        away.iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["a2", "a1"],
        "{ev:?}"
    );
    assert!(away[0]["at_ms"].as_u64() <= away[1]["at_ms"].as_u64());
    assert_eq!(away[0]["exit_code"], 0);
    // The events from before the restart are still there, numbered before.
    let created: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "created").collect();
    assert_eq!(created.len(), 2, "{ev:?}");
    assert!(created[1]["seq"].as_u64() < away[0]["seq"].as_u64());
    for id in ["a1", "a2"] {
        env.zctr(&["delete", id]);
    }
}
