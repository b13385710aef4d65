//! End-to-end: the setup executable `zctr-shim` logs through `tracing` —
//! human text by default (`zctr-shim: LEVEL message key=value`), one JSON
//! object per line with `--log-format json`, filtered by `--log-level`, and
//! `--debug` shows every setup step (the container child's too).
//! Run as root after `scripts/build-static.sh`.

mod shim_support;

use serde_json::Value;
use shim_support::*;
use std::process::{Command, Output};

/// `zctr-shim run` on the fixture with `extra` flags (no rootfs overlay).
fn run_with(c: &Ctr, extra: &[&str]) -> Output {
    c.write_spec();
    zctr_tests::run_cmd(
        Command::new(&c.shim_bin)
            .arg("run")
            .arg("--bundle")
            .arg(&c.bundle)
            .arg("--id")
            .arg(&c.id)
            .args(extra),
        T,
    )
    .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A container whose executable does not exist: setup fails.
fn failing() -> Ctr {
    let mut c = Ctr::unprivileged(&["/no/such/program"]);
    c.overlay = None;
    c
}

#[test]
fn a_setup_failure_is_a_text_line_with_fields_by_default() {
    if !root_or_skip("a_setup_failure_is_a_text_line_with_fields_by_default") {
        return;
    }
    let c = failing();
    let out = run_with(&c, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    let line = err
        .lines()
        .find(|l| l.starts_with("zctr-shim: ERROR setup failed: "))
        .unwrap_or_else(|| panic!("no error line\n{err}"));
    assert!(line.contains(&format!(" id={}", c.id)), "{line}");
    assert!(
        line.contains(" step=") && line.contains(" errno="),
        "{line}"
    );
    assert!(line.contains("/no/such/program"), "{line}");
}

#[test]
fn json_on_request_and_off_silences() {
    if !root_or_skip("json_on_request_and_off_silences") {
        return;
    }
    let c = failing();
    let out = run_with(&c, &["--log-format", "json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{err}")))
        .collect();
    let failure = lines
        .iter()
        .find(|v| v["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR object\n{err}"));
    let f = &failure["fields"];
    assert!(
        f["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("setup failed: ") && m.contains("/no/such/program")),
        "{failure}"
    );
    assert_eq!(f["id"], c.id.as_str(), "{failure}");
    assert!(f["step"].is_string() && f["errno"].is_i64(), "{failure}");
    assert!(failure["timestamp"].is_string(), "{failure}");

    let out = run_with(&c, &["--log-level", "off"]);
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    assert_eq!(stderr(&out), "", "off writes nothing");
}

#[test]
fn debug_shows_every_setup_step() {
    if !root_or_skip("debug_shows_every_setup_step") {
        return;
    }
    let mut c = Ctr::unprivileged(&[]);
    c.overlay = None;
    let out = run_with(&c, &["--debug"]);
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    let err = stderr(&out);
    for needle in [
        "zctr-shim: DEBUG creating the container",
        "zctr-shim: DEBUG container process created",
        "zctr-shim: child: pivot_root",
    ] {
        assert!(err.contains(needle), "{needle:?} missing\n{err}");
    }
    // Without --debug, info: none of it.
    let out = run_with(&c, &[]);
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    assert!(!stderr(&out).contains("DEBUG"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("child:"), "{}", stderr(&out));
}
