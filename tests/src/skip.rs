//! The one rule for a test that cannot run here (not root, no static busybox,
//! a missing tool, no cgroup2 hierarchy...): under `CI=true` it fails with the
//! reason; otherwise it says so on stderr as one `SKIPPED: <test>: <reason>`
//! line and returns, so that the caller can `return` early.
//!
//! The line is written straight to the stderr descriptor (not through
//! `eprintln!`, which libtest captures and drops for a passing test), so that
//! `scripts/test.sh` sees and counts every skip. A skip never passes silently.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The prefix `scripts/test.sh` counts.
pub const MARKER: &str = "SKIPPED: ";

static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// Whether the tests run under CI (`CI=true`), where nothing may be skipped.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The running test's name: libtest names each test's thread after it.
fn current_test() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("<unnamed test>")
        .to_string()
}

/// What the rule does with a skip of `test` for `reason`: `Err` (the panic
/// message) under CI, else `Ok` (the line to print). Pure, for its own tests.
fn decide(ci: bool, test: &str, reason: &str) -> Result<String, String> {
    if ci {
        Err(format!("CI=true: {test} cannot run here: {reason}"))
    } else {
        Ok(format!("{MARKER}{test}: {reason}\n"))
    }
}

/// The running test cannot run here because of `reason`: panics under CI,
/// else prints the skip line and counts it. The caller returns afterwards.
pub fn skip(reason: impl Display) {
    apply(ci(), &reason.to_string(), &mut std::io::stderr());
}

fn apply(ci: bool, reason: &str, out: &mut dyn Write) {
    match decide(ci, &current_test(), reason) {
        Err(msg) => panic!("{msg}"),
        Ok(line) => {
            SKIPPED.fetch_add(1, Ordering::Relaxed);
            // A failed write to stderr is not a reason to fail the test.
            let _ = out.write_all(line.as_bytes());
        }
    }
}

/// `true` when running as root; otherwise [`skip`]s ("needs root") and
/// returns `false`.
pub fn need_root() -> bool {
    if crate::is_root() {
        return true;
    }
    skip("needs root");
    false
}

/// `Some(())` when `tool` is on `$PATH`; otherwise [`skip`]s and returns `None`.
pub fn need_tool(tool: &str) -> Option<()> {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(d.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    });
    if found {
        return Some(());
    }
    skip(format!("{tool} not found on $PATH"));
    None
}

/// `v` if it is `Ok`; otherwise [`skip`]s with the error and returns `None`.
pub fn or_skip<T, E: Display>(v: Result<T, E>) -> Option<T> {
    match v {
        Ok(v) => Some(v),
        Err(e) => {
            skip(e);
            None
        }
    }
}

/// How many skips this test executable has made so far.
pub fn count() -> usize {
    SKIPPED.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_ci_a_skip_is_a_failure_naming_test_and_reason() {
        let e = decide(true, "t1", "needs root").unwrap_err();
        assert_eq!(e, "CI=true: t1 cannot run here: needs root");
    }

    #[test]
    fn locally_a_skip_is_one_marked_line() {
        let l = decide(false, "t2", "no busybox").unwrap();
        assert_eq!(l, "SKIPPED: t2: no busybox\n");
    }

    #[test]
    fn the_test_is_named_after_its_thread() {
        assert_eq!(
            current_test(),
            "skip::tests::the_test_is_named_after_its_thread"
        );
    }

    #[test]
    fn a_skip_panics_under_ci_and_is_printed_and_counted_otherwise() {
        let mut out = Vec::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply(true, "why", &mut out)
        }));
        let msg = *r.unwrap_err().downcast::<String>().unwrap();
        assert!(
            msg.contains("a_skip_panics_under_ci") && msg.ends_with(": why"),
            "{msg}"
        );
        assert!(out.is_empty());
        let before = count();
        apply(false, "why", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SKIPPED: skip::tests::a_skip_panics_under_ci_and_is_printed_and_counted_otherwise: why\n"
        );
        assert!(count() > before);
    }
}
