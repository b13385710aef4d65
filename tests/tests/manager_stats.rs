//! `zctr stats` / `GET /v1/containers/{id}/stats`: a known allocation shows
//! in the memory figures (within 10%), limits and pids are the container's,
//! the stream gives a line a second and ends when the container stops. Run as
//! root after `scripts/build-static.sh`; the same on v1, v2 and hybrid hosts.

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;
use support::{run_args, Env};
use zctr_tests::wait_until;

const MIB: u64 = 1 << 20;

#[test]
fn stats_show_a_known_allocation_and_the_limits() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    env.zctr(&run_args(
        "st",
        &rootfs,
        &["--memory", "256m", "--pids", "50"],
        &[probe, "alloc", "64", "--touch"],
    ));
    assert!(
        wait_until(Duration::from_secs(30), || env
            .logs("st")
            .contains("done 64 MiB")),
        "{}",
        env.logs("st")
    );
    let out = env.zctr(&["stats", "--json", "st"]);
    let s: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    let anon = s["memory"]["anon"]
        .as_u64()
        .unwrap_or_else(|| panic!("{s}"));
    let usage = s["memory"]["usage"].as_u64().unwrap();
    assert!(
        (anon as f64 - (64 * MIB) as f64).abs() < 0.1 * (64 * MIB) as f64,
        "anon {anon} is not 64 MiB within 10%: {s}"
    );
    assert!(usage >= anon, "{s}");
    assert_eq!(s["memory"]["limit"], 256 * MIB, "{s}");
    assert_eq!(s["pids"]["current"], 1, "{s}");
    assert_eq!(s["pids"]["limit"], 50, "{s}");
    assert!(s["cpu"]["usage_ns"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["memory"]["oom_kills"], 0, "{s}");
    assert!(
        s["network"]["rx_bytes"].is_u64(),
        "a private netns has counters: {s}"
    );

    // The table a person reads.
    let table = env.zctr(&["stats", "st"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("st "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("/ 256.0MiB"), "{table}");

    // The stream: a line now, one a second, the last one once it stopped.
    let mut conn = UnixStream::connect(&env.socket).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(b"GET /v1/containers/st/stats?stream=true HTTP/1.1\r\nHost: zctr\r\n\r\n")
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while count(&seen, "\"read_ms\"") < 2 {
        let n = conn.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "stream ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    env.zctr(&["kill", "st", "KILL"]);
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 || String::from_utf8_lossy(&seen).contains("\"status\":\"stopped\"") {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("\"status\":\"stopped\""),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    env.zctr(&["delete", "st"]);
    env.zctr_fails(&["stats", "st"], "not_found");
}

fn count(hay: &[u8], needle: &str) -> usize {
    String::from_utf8_lossy(hay).matches(needle).count()
}

/// `zctr update`: new limits are live (stats and inspect show them); an
/// invalid one changes nothing; memory below what the container uses is
/// refused by the kernel (v1: EBUSY) or OOM-kills it (cgroup2), and the
/// record says which; a stopped container's limits cannot change.
#[test]
fn update_changes_limits_live_or_nothing() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    env.zctr(&run_args(
        "up",
        &rootfs,
        &["--memory", "64m", "--pids", "20"],
        &[probe, "alloc", "24", "--touch"],
    ));
    assert!(wait_until(Duration::from_secs(30), || env
        .logs("up")
        .contains("done 24 MiB")));
    let stats = |env: &Env| -> Value {
        serde_json::from_str(env.zctr(&["stats", "--json", "up"]).trim()).unwrap()
    };
    env.zctr(&["update", "up", "--memory", "128m", "--pids", "30"]);
    let s = stats(&env);
    assert_eq!(s["memory"]["limit"], 128 * MIB, "{s}");
    assert_eq!(s["pids"]["limit"], 30, "{s}");
    let i = env.inspect("up");
    assert_eq!(i["config"]["limits"]["memory_bytes"], 128 * MIB, "{i}");
    assert_eq!(i["config"]["limits"]["pids"], 30, "{i}");

    // Invalid: refused, nothing changed.
    env.zctr_fails(&["update", "up", "--memory", "1k"], "bad_request");
    env.zctr_fails(&["update", "up"], "bad_request");
    assert_eq!(stats(&env)["memory"]["limit"], 128 * MIB);

    // Below what it uses (24 MiB touched).
    let out = env.try_zctr(&["update", "up", "--memory", "8m"]);
    if out.status.success() {
        // cgroup2 takes the limit and reclaims, then OOM-kills.
        assert!(
            wait_until(Duration::from_secs(20), || env.status("up") == "stopped"),
            "{}",
            env.inspect("up")
        );
        assert_eq!(env.inspect("up")["exit"]["oom_killed"], true);
    } else {
        // v1 refuses the write (EBUSY): the update is undone.
        assert_eq!(env.status("up"), "running");
        assert_eq!(stats(&env)["memory"]["limit"], 128 * MIB);
        assert_eq!(
            env.inspect("up")["config"]["limits"]["memory_bytes"],
            128 * MIB
        );
        env.zctr(&["kill", "up", "KILL"]);
        env.try_zctr(&["wait", "up"]);
    }
    env.zctr_fails(&["update", "up", "--pids", "10"], "bad_request");
    env.zctr(&["delete", "up"]);
}
