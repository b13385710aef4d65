//! The daemon's diagnostics (issue 9): `tracing` events on stderr, human text
//! by default, one JSON object per line with `--log-format json`, filtered by
//! `--log-level` / `ZCTR_LOG`; a mistyped level is refused; an unwritable
//! stderr costs lines, never the daemon, at any level.
//!
//! Run as root after `scripts/build-static.sh`.

mod support;

use serde_json::Value;
use std::process::Command;
use support::{zctr_bin, DaemonSetup, Env, T};
use zctr_tests::run_cmd;

fn env_vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn text_by_default_with_the_serving_line_and_its_fields() {
    let Some(env) = Env::new() else { return };
    let log = env.daemon_log();
    let serving = log
        .lines()
        .find(|l| l.contains("serving"))
        .unwrap_or_else(|| panic!("no serving line:\n{log}"));
    assert!(serving.contains(" INFO "), "{serving}");
    assert!(
        serving.contains(&format!("socket={}", env.socket.display())),
        "{serving}"
    );
    assert!(!serving.starts_with('{'), "{serving}");
}

#[test]
fn json_on_request_one_object_per_line_and_debug_shows_requests() {
    let Some(env) = Env::with_daemon(DaemonSetup {
        wrapper: Vec::new(),
        env: env_vars(&[("ZCTR_LOG_FORMAT", "json"), ("ZCTR_LOG", "debug")]),
    }) else {
        return;
    };
    env.zctr(&["list"]);
    env.zctr_fails(&["inspect", "nosuch"], "not_found");
    let log = env.daemon_log();
    let events: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{log}")))
        .collect();
    let find = |msg: &str| {
        events
            .iter()
            .find(|e| e["fields"]["message"] == msg)
            .unwrap_or_else(|| panic!("no {msg:?} event:\n{log}"))
    };
    let serving = find("serving");
    assert_eq!(serving["level"], "INFO", "{serving}");
    assert_eq!(serving["target"], "zctr::daemon", "{serving}");
    assert_eq!(
        serving["fields"]["socket"],
        env.socket.display().to_string(),
        "{serving}"
    );
    let ok = find("request");
    assert_eq!(ok["level"], "DEBUG", "{ok}");
    assert_eq!(ok["fields"]["status"], 200, "{ok}");
    let refused = find("request refused");
    assert_eq!(refused["fields"]["status"], 404, "{refused}");
    assert!(
        refused["fields"]["path"]
            .as_str()
            .is_some_and(|p| p.contains("nosuch")),
        "{refused}"
    );
}

#[test]
fn a_mistyped_level_or_format_is_refused_before_anything_starts() {
    let tmp = zctr_tests::TempDir::new("zctr-logging").unwrap();
    for (flag, value) in [("--log-level", "loud"), ("--log-format", "xml")] {
        let out = run_cmd(
            Command::new(zctr_bin())
                .arg("--socket")
                .arg(tmp.join("s.sock"))
                .args(["daemon", "--root"])
                .arg(tmp.join("state"))
                .args([flag, value]),
            T,
        )
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(value), "{flag} {value}: {err}");
        assert!(!tmp.join("s.sock").exists() && !tmp.join("state").exists());
    }
}

/// At the most talkative level, with stderr on /dev/full: every event's
/// write fails, the daemon keeps serving (tracing-subscriber reports a failed
/// write with `eprintln!`, which would panic and abort the daemon).
#[test]
fn debug_logging_to_a_full_stderr_never_kills_the_daemon() {
    let Some(env) = Env::with_daemon(DaemonSetup {
        wrapper: ["sh", "-c", r#"exec "$0" "$@" 2>/dev/full"#]
            .map(String::from)
            .to_vec(),
        env: env_vars(&[("ZCTR_LOG", "trace")]),
    }) else {
        return;
    };
    let pid = env.daemon_pid();
    for _ in 0..20 {
        env.zctr(&["list"]);
        env.zctr_fails(&["inspect", "nosuch"], "not_found");
    }
    assert!(support::alive(pid.into()), "the daemon died");
    env.zctr(&["list"]);
    assert_eq!(env.daemon_log(), "", "stderr went to /dev/full");
}

/// `--log-file` (here through ZCTR_LOG_FILE): lines go to the file, not to
/// stderr; after the file is moved away, SIGHUP makes the daemon open the
/// path again and go on there (logrotate's way).
#[test]
fn a_log_file_is_reopened_on_sighup() {
    let dir = zctr_tests::TempDir::new("zctr-logfile").unwrap();
    let file = dir.join("zctr.log");
    let Some(env) = Env::with_daemon(DaemonSetup {
        wrapper: Vec::new(),
        env: env_vars(&[("ZCTR_LOG_FILE", file.to_str().unwrap())]),
    }) else {
        return;
    };
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(first.contains("serving"), "{first}");
    assert!(
        !env.daemon_log().contains("serving"),
        "{}",
        env.daemon_log()
    );

    let rotated = dir.join("zctr.log.1");
    std::fs::rename(&file, &rotated).unwrap();
    run_cmd(
        Command::new("kill").args(["-HUP", &env.daemon_pid().to_string()]),
        T,
    )
    .unwrap();
    assert!(
        zctr_tests::wait_until(T, || std::fs::read_to_string(&file)
            .is_ok_and(|s| s.contains("log file reopened"))),
        "no new log file after SIGHUP"
    );
    env.zctr(&["list"]);
    // The daemon still serves, and the old file was not written to again.
    assert!(!std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("reopened"));
}
