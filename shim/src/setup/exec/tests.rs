//! `spawn` on the real kernel, from this multi-threaded test harness, with
//! the test process itself as the "init" (nothing to join, `/` as root):
//! the fork of the helper from a threaded caller, the process as the
//! caller's child, exit codes, failures, stdio and closed fds (preserved
//! fds: `tests/tests/shim_exec.rs`, where fd numbers are not shared with
//! other tests).

use super::*;
use std::io::Read;

fn me() -> Target {
    let spec: Spec = serde_json::from_str(r#"{"ociVersion":"1.0.2"}"#).unwrap();
    Target {
        init_pid: std::process::id() as i32,
        init_start_time: None,
        spec,
        cgroup_procs: Vec::new(),
    }
}

fn request(args: &[&str], stdout: RawFd) -> ExecRequest {
    let process: Process = serde_json::from_value(serde_json::json!({
        "args": args, "cwd": "/", "env": ["PATH=/usr/bin:/bin"],
        "user": {"uid": 0, "gid": 0}
    }))
    .unwrap();
    ExecRequest {
        process,
        stdio: [0, stdout, 2],
        console: None,
        preserve_fds: 0,
    }
}

#[test]
fn a_threaded_caller_gets_its_child_and_its_exit_code() {
    if !zctr_tests::skip::need_root() {
        return;
    }
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let pid = spawn(
        &me(),
        &request(&["sh", "-c", "echo out; exit 3"], w.as_raw_fd()),
    )
    .unwrap();
    drop(w);
    // The caller's child: waitpid works on it.
    assert_eq!(wait(pid).unwrap(), 3);
    let mut text = String::new();
    std::fs::File::from(r).read_to_string(&mut text).unwrap();
    assert_eq!(text, "out\n");
    let pid = spawn(&me(), &request(&["sh", "-c", "kill -9 $$"], 1)).unwrap();
    assert_eq!(wait(pid).unwrap(), 128 + 9);
}

#[test]
fn failures_name_the_step() {
    if !zctr_tests::skip::need_root() {
        return;
    }
    let e = spawn(&me(), &request(&["/nonexistent-zctr"], 1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "exec: find executable /nonexistent-zctr: No such file or directory"
    );
    assert_eq!(e.step, "find executable");
    let mut req = request(&["true"], 1);
    req.process.set_cwd("/nonexistent-zctr".into());
    let e = spawn(&me(), &req).unwrap_err();
    assert_eq!(e.step, "chdir to process.cwd", "{e}");
    let mut req = request(&["true"], 1);
    req.process.set_terminal(Some(true));
    assert!(spawn(&me(), &req)
        .unwrap_err()
        .to_string()
        .contains("process.terminal"));
    let mut req = request(&["true"], 1);
    req.preserve_fds = 100_000;
    assert_eq!(spawn(&me(), &req).unwrap_err().step, "preserve fds");
}

#[test]
fn none_of_the_callers_fds_reach_the_process() {
    if !zctr_tests::skip::need_root() {
        return;
    }
    // A leaked fd of the caller (not close-on-exec) stays out too.
    let leaked = std::fs::File::open("/dev/null").unwrap();
    sys::keep_across_exec(leaked.as_raw_fd()).unwrap();
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let pid = spawn(&me(), &request(&["ls", "/proc/self/fd"], w.as_raw_fd())).unwrap();
    drop(w);
    assert_eq!(wait(pid).unwrap(), 0);
    let mut text = String::new();
    std::fs::File::from(r).read_to_string(&mut text).unwrap();
    // 0-2, and the directory ls itself has open to list them.
    let fds: Vec<u32> = text
        .split_whitespace()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(fds, [0, 1, 2, 3], "{text}");
}
