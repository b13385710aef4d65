//! End-to-end tests of terminals and attach through a real daemon and
//! monitor: a window size change reaches a terminal inside (`stty size`,
//! with the client driven under a pty this test opens), two attach clients
//! at once, the detach keys leave the container running, `run -a` exits
//! with the container's code and forwards SIGINT without a terminal, and a
//! `run -t` container has a terminal. Run as root after
//! `scripts/build-static.sh`.

mod support;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{spawn_zctr, wait_child, zctr_bin, Env, T};
use zctr_tests::{describe, wait_until};

const WAIT: Duration = Duration::from_secs(30);

fn busybox(env: &Env) -> bool {
    if zctr_tests::skip::or_skip(env.rootfs.with_busybox()).is_none() {
        return false;
    }
    env.rootfs.symlink("bin/stty", "busybox").unwrap();
    env.rootfs.symlink("bin/tty", "busybox").unwrap();
    true
}

/// Everything `r` yields, collected by a thread as it comes.
fn collect(mut r: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = r.read(&mut chunk) {
            if n == 0 {
                break;
            }
            b.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    buf
}

fn seen(buf: &Arc<Mutex<String>>, what: &str) -> bool {
    wait_until(WAIT, || buf.lock().unwrap().contains(what))
}

fn stdout_of(child: &mut Child) -> ChildStdout {
    child.stdout.take().unwrap()
}

#[test]
fn manager_tty_a_window_size_change_reaches_the_terminal_inside() {
    let Some(env) = Env::new() else { return };
    if !busybox(&env) {
        return;
    }
    let rootfs = env.rootfs_arg();
    env.zctr(&support::run_args("c", &rootfs, &[], &["sleep", "100000"]));
    let (master, slave) = zctr_tests::openpty(24, 80).unwrap();
    let mut child = Command::new(zctr_bin())
        .arg("--socket")
        .arg(&env.socket)
        .args([
            "exec",
            "-t",
            "c",
            "--",
            "sh",
            "-c",
            "while :; do stty size; sleep 0.2; done",
        ])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let out = collect(std::fs::File::from(master.try_clone().unwrap()));
    assert!(seen(&out, "24 80"), "{:?}", out.lock().unwrap());
    zctr_tests::set_winsize(master.as_fd(), 40, 100).unwrap();
    zctr_tests::signal(child.id() as i32, libc::SIGWINCH).unwrap();
    assert!(seen(&out, "40 100"), "{:?}", out.lock().unwrap());
    let _ = child.kill();
    let _ = child.wait();

    // The container's own terminal: `run -t -i` (attached in the
    // foreground) starts at the client's size and follows it.
    let (master, slave) = zctr_tests::openpty(30, 90).unwrap();
    let mut args = vec!["--socket".to_string(), env.socket.display().to_string()];
    args.extend(
        support::run_args(
            "w",
            &rootfs,
            &["-t", "-i"],
            &["sh", "-c", "while :; do stty size; sleep 0.2; done"],
        )
        .iter()
        .map(|s| s.to_string()),
    );
    let mut child = Command::new(zctr_bin())
        .args(&args)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let out = collect(std::fs::File::from(master.try_clone().unwrap()));
    assert!(seen(&out, "30 90"), "{:?}", out.lock().unwrap());
    zctr_tests::set_winsize(master.as_fd(), 50, 130).unwrap();
    zctr_tests::signal(child.id() as i32, libc::SIGWINCH).unwrap();
    assert!(seen(&out, "50 130"), "{:?}", out.lock().unwrap());
    assert_eq!(
        env.inspect("w")["config"]["console_size"],
        serde_json::json!([30, 90])
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(env.status("w"), "running");
}

#[test]
fn manager_tty_a_run_t_container_has_a_terminal() {
    let Some(env) = Env::new() else { return };
    if !busybox(&env) {
        return;
    }
    let rootfs = env.rootfs_arg();
    let out = env.try_zctr(&support::run_args(
        "t",
        &rootfs,
        &["-a", "-t"],
        &["sh", "-c", "tty; exit 6"],
    ));
    assert_eq!(out.status.code(), Some(6), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
        "{}",
        describe(&out)
    );
    assert_eq!(env.inspect("t")["config"]["tty"], true);
}

#[test]
fn manager_tty_two_attach_clients_see_the_same_output() {
    let Some(env) = Env::new() else { return };
    if !busybox(&env) {
        return;
    }
    let rootfs = env.rootfs_arg();
    let script = "while :; do if read -t 1 l; then echo got:$l; \
                  [ \"$l\" = quit ] && exit 4; else echo tick; fi; done";
    env.zctr(&support::run_args(
        "two",
        &rootfs,
        &["-i"],
        &["sh", "-c", script],
    ));
    let mut a = spawn_zctr(&env, &["attach", "two"]);
    let mut b = spawn_zctr(&env, &["attach", "--no-stdin", "two"]);
    let (out_a, out_b) = (collect(stdout_of(&mut a)), collect(stdout_of(&mut b)));
    assert!(seen(&out_a, "tick") && seen(&out_b, "tick"));
    let mut input = a.stdin.take().unwrap();
    input.write_all(b"hello\n").unwrap();
    assert!(seen(&out_a, "got:hello"), "{:?}", out_a.lock().unwrap());
    assert!(seen(&out_b, "got:hello"), "{:?}", out_b.lock().unwrap());
    input.write_all(b"quit\n").unwrap();
    let (ra, rb) = (wait_child(a, T), wait_child(b, T));
    assert_eq!(ra.status.code(), Some(4), "{}", describe(&ra));
    assert_eq!(rb.status.code(), Some(4), "{}", describe(&rb));
    assert_eq!(env.status("two"), "stopped");
}

#[test]
fn manager_tty_the_detach_keys_leave_the_container_running() {
    let Some(env) = Env::new() else { return };
    if !busybox(&env) {
        return;
    }
    let rootfs = env.rootfs_arg();
    env.zctr(&support::run_args("d", &rootfs, &["-i"], &["cat"]));
    for (keys, seq) in [(None, &b"\x10\x11"[..]), (Some("ctrl-a,x"), &b"\x01x"[..])] {
        let mut args = vec!["attach", "d"];
        if let Some(k) = keys {
            args.splice(1..1, ["--detach-keys", k]);
        }
        let mut a = spawn_zctr(&env, &args);
        let out = collect(stdout_of(&mut a));
        let mut input = a.stdin.take().unwrap();
        // Until the attach is up, what is typed may be lost: type again.
        let echoed = wait_until(WAIT, || {
            input.write_all(b"abc\n").unwrap();
            std::thread::sleep(Duration::from_millis(200));
            out.lock().unwrap().contains("abc")
        });
        assert!(echoed, "{:?}", out.lock().unwrap());
        input.write_all(seq).unwrap();
        let r = wait_child(a, T);
        assert_eq!(r.status.code(), Some(0), "{}", describe(&r));
        assert!(
            String::from_utf8_lossy(&r.stderr).contains("detached"),
            "{}",
            describe(&r)
        );
        assert_eq!(env.status("d"), "running");
    }
    let bad = env.try_zctr(&["attach", "--detach-keys", "ctrl-1", "d"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("ctrl-1"));
}

#[test]
fn manager_tty_run_a_exits_with_the_code_and_forwards_sigint() {
    let Some(env) = Env::new() else { return };
    if !busybox(&env) {
        return;
    }
    let rootfs = env.rootfs_arg();
    let out = env.try_zctr(&support::run_args(
        "r1",
        &rootfs,
        &["-a"],
        &["sh", "-c", "echo from-run; echo to-err >&2; exit 9"],
    ));
    assert_eq!(out.status.code(), Some(9), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-run\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-err\n");

    let mut child = spawn_zctr(
        &env,
        &support::run_args(
            "r2",
            &rootfs,
            &["-a"],
            &[
                "sh",
                "-c",
                "trap 'echo got-int; exit 42' INT; echo ready; while :; do sleep 0.1; done",
            ],
        ),
    );
    let out = collect(stdout_of(&mut child));
    assert!(seen(&out, "ready"));
    zctr_tests::signal(child.id() as i32, libc::SIGINT).unwrap();
    let r = wait_child(child, T);
    assert_eq!(r.status.code(), Some(42), "{}", describe(&r));
    assert!(out.lock().unwrap().contains("got-int"));
}

/// The terminal lives in the monitor: after a kill -9 of the daemon and a
/// new daemon, `attach` reaches the same terminal, its input goes through
/// and its earlier output is in the log.
#[test]
fn manager_tty_a_terminal_outlives_a_daemon_restart() {
    let Some(mut env) = Env::new() else { return };
    if !busybox(&env) {
        return;
    }
    let rootfs = env.rootfs_arg();
    env.zctr(&support::run_args(
        "keep",
        &rootfs,
        &["-d", "-t", "-i"],
        &["sh", "-c", "tty; exec cat"],
    ));
    assert!(wait_until(WAIT, || env
        .zctr(&["logs", "keep"])
        .contains("/dev/pts/")));
    env.kill_daemon();
    env.start_daemon();
    assert_eq!(env.status("keep"), "running");
    let mut a = spawn_zctr(&env, &["attach", "keep"]);
    let out = collect(stdout_of(&mut a));
    let mut input = a.stdin.take().unwrap();
    // Until the attach is up, what is typed may be lost: type again.
    let echoed = wait_until(WAIT, || {
        input.write_all(b"after-restart\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        out.lock().unwrap().contains("after-restart")
    });
    assert!(echoed, "{:?}", out.lock().unwrap());
    input.write_all(b"\x10\x11").unwrap();
    let r = wait_child(a, T);
    assert_eq!(r.status.code(), Some(0), "{}", describe(&r));
    assert_eq!(env.status("keep"), "running");
}
