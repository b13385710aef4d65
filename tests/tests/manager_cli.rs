//! The client's command line as a person meets it: errors are one line
//! (whatever RUST_BACKTRACE says), sizes are read as people write them. No
//! daemon is needed: the socket named does not exist.

use std::process::Command;
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
