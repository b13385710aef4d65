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
