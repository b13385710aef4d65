//! The client's command line as a person meets it: errors are one line
//! (whatever RUST_BACKTRACE says), sizes are read as people write them (no
//! daemon needed: the socket named does not exist); `zctr version` compares
//! the builds of client, daemon and shim.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use support::{DaemonSetup, Env};
use zctr_tests::{bins, TempDir};

fn zctr_without_daemon(args: &[&str]) -> (i32, String) {
    let dir = TempDir::new("zctr-cli").unwrap();
    let out = Command::new(bins::zctr())
        .arg("--socket")
        .arg(dir.join("absent.sock"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_error_is_one_line_even_with_rust_backtrace_set() {
    let (code, err) = zctr_without_daemon(&["list"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.starts_with("zctr: cannot reach the zctr daemon at "),
        "{err:?}"
    );
    assert!(!err.contains("backtrace"), "{err:?}");
}

#[test]
fn memory_sizes_take_suffixes() {
    for size in ["512m", "1g", "1.5G", "65536"] {
        let (code, err) = zctr_without_daemon(&["create", "c1", "--rootfs", "/", "--memory", size]);
        // Parsed: the command got as far as the (absent) daemon.
        assert_eq!(code, 1, "{size}: {err}");
        assert!(
            err.contains("cannot reach the zctr daemon"),
            "{size}: {err}"
        );
    }
    let (code, err) = zctr_without_daemon(&["create", "c1", "--rootfs", "/", "--memory", "1x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"1x\" is not a size"), "{err}");
}

/// The same build everywhere: three lines, exit 0. A daemon whose shim is
/// another build (a partial upgrade, here a script printing an old version):
/// both shown, a warning, exit 1.
#[test]
fn version_shows_client_daemon_and_shim_and_warns_when_they_differ() {
    let Some(env) = Env::new() else { return };
    let out = env.try_zctr(&["version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("client: zctr "), "{text}");
    assert!(lines[1].starts_with("daemon: zctr "), "{text}");
    assert!(lines[2].starts_with("shim:   zctr-shim "), "{text}");
    let build = |l: &str| l.split_once("(build ").map(|(_, b)| b.to_string());
    assert_eq!(build(lines[0]), build(lines[1]), "{text}");
    assert_eq!(
        build(lines[0]),
        build(lines[2].rsplit_once(" (/").unwrap().0),
        "{text}"
    );
    drop(env);

    let dir = TempDir::new("zctr-oldshim").unwrap();
    let old = dir.join("zctr-shim");
    std::fs::write(&old, "#!/bin/sh\necho 'zctr-shim 0.0.1 (build old)'\n").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(env) = Env::with_daemon(DaemonSetup {
        wrapper: Vec::new(),
        env: vec![("ZCTR_TEST_SHIM".into(), old.to_str().unwrap().into())],
    }) else {
        return;
    };
    let out = env.try_zctr(&["version"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    assert!(text.contains("zctr-shim 0.0.1 (build old)"), "{text}");
    assert!(err.contains("not the same build"), "{err}");
}
