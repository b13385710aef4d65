//! End-to-end tests of `zctr exec` through a real daemon and monitor:
//! exit codes (128+N on a signal), stdout and stderr kept apart, stdin with
//! `-i`, `-d` (output in the log), `-u`/`-e`/`-w`, refusals on paused,
//! created and stopped containers, the exec'd process in `ps`, and an exec
//! that outlives a `kill -9` of the daemon with its exit still reported
//! (inspect `execs`, `exec_*` events once and in order). Run as root after
//! `scripts/build-static.sh`.

mod support;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{alive, run_args, zctr_bin, Env, T};
use zctr_tests::{describe, wait_until};

/// A running container `id` with busybox, idle for long.
fn idle(env: &Env, id: &str) -> bool {
    if zctr_tests::skip::or_skip(env.rootfs.with_busybox()).is_none() {
        return false;
    }
    let rootfs = env.rootfs_arg();
    env.zctr(&run_args(id, &rootfs, &[], &["sleep", "100000"]));
    true
}

fn exec(env: &Env, args: &[&str]) -> std::process::Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    env.try_zctr(&all)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn manager_exec_codes_streams_stdin_user_env_and_workdir() {
    let Some(env) = Env::new() else { return };
    if !idle(&env, "c") {
        return;
    }
    let out = exec(&env, &["c", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    let out = exec(&env, &["c", "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137), "{}", describe(&out));

    let out = exec(&env, &["c", "sh", "-c", "echo to-out; echo to-err >&2"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "to-out\n");
    assert_eq!(text(&out.stderr), "to-err\n");

    // `echo hi | zctr exec -i c cat`
    let mut child = Command::new(zctr_bin())
        .arg("--socket")
        .arg(&env.socket)
        .args(["exec", "-i", "c", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let out = support::wait_child(child, T);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "hi\n");

    let out = exec(
        &env,
        &[
            "-u",
            "user",
            "-e",
            "A=five",
            "-w",
            "/tmp",
            "c",
            "--",
            "sh",
            "-c",
            "echo $(id -u):$(id -g) $A $PWD",
        ],
    );
    assert_eq!(
        text(&out.stdout),
        "1000:1000 five /tmp\n",
        "{}",
        describe(&out)
    );
    let out = exec(&env, &["-u", "nosuchuser", "c", "--", "true"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("(invalid_exec)"),
        "{}",
        describe(&out)
    );
    let out = exec(&env, &["c", "--", "/no/such/program"]);
    assert!(!out.status.success(), "{}", describe(&out));
}

#[test]
fn manager_exec_detached_logs_and_ps() {
    let Some(env) = Env::new() else { return };
    if !idle(&env, "c") {
        return;
    }
    let session = env.zctr(&["exec", "-d", "c", "--", "sh", "-c", "echo detached-out"]);
    let session: u32 = session.trim().parse().expect("a session number");
    assert!(session >= 1);
    assert!(
        wait_until(Duration::from_secs(20), || env
            .logs("c")
            .contains("detached-out")),
        "logs: {}",
        env.logs("c")
    );
    env.zctr(&["exec", "-d", "c", "--", "sleep", "4242"]);
    let ps: Value = serde_json::from_str(&env.zctr(&["ps", "c", "--json"])).unwrap();
    let found = ps.as_array().unwrap().iter().any(|p| {
        p["cmdline"]
            .as_array()
            .is_some_and(|c| c.iter().any(|a| a == "4242"))
    });
    assert!(found, "{ps:#}");
    let execs = env.inspect("c")["execs"].clone();
    let running: Vec<&Value> = execs
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["running"] == true)
        .collect();
    assert_eq!(running.len(), 1, "{execs:#}");
}

#[test]
fn manager_exec_is_refused_on_created_paused_and_stopped_containers() {
    let Some(env) = Env::new() else { return };
    if !idle(&env, "c") {
        return;
    }
    let rootfs = env.rootfs_arg();
    env.zctr(&["create", "made", "--rootfs", &rootfs, "--", "sleep", "100"]);
    env.zctr_fails(&["exec", "made", "--", "true"], "invalid_state");
    env.zctr(&["pause", "c"]);
    let err = env.zctr_fails(&["exec", "c", "--", "true"], "invalid_state");
    assert!(err.contains("paused"), "{err}");
    env.zctr(&["resume", "c"]);
    assert_eq!(exec(&env, &["c", "--", "true"]).status.code(), Some(0));
    env.zctr(&["stop", "-t", "0", "c"]);
    env.zctr_fails(&["exec", "c", "--", "true"], "invalid_state");
    env.zctr_fails(&["exec", "nosuch", "--", "true"], "not_found");
}

fn exec_events(env: &Env, id: &str) -> Vec<(String, u64, Option<i64>)> {
    let out = env.zctr(&[
        "events",
        "--no-follow",
        "--json",
        "--filter",
        &format!("id={id}"),
    ]);
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("exec_")))
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["session"].as_u64().unwrap(),
                e["exit_code"].as_i64(),
            )
        })
        .collect()
}

/// The exec'd process is the monitor's child, not the daemon's: it goes on
/// through a `kill -9` of the daemon's group, and the restarted daemon
/// reports how it ended (inspect and events, each event once, in order).
#[test]
fn manager_an_exec_survives_kill_9_of_the_daemon_and_its_exit_is_reported() {
    let Some(mut env) = Env::new() else { return };
    if !idle(&env, "c") {
        return;
    }
    assert_eq!(
        exec(&env, &["c", "--", "sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );
    let session = env.zctr(&["exec", "-d", "c", "--", "sh", "-c", "sleep 4; exit 5"]);
    let session: u64 = session.trim().parse().unwrap();
    let execs = env.inspect("c")["execs"].clone();
    let pid = execs
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["session"].as_u64() == Some(session))
        .and_then(|x| x["pid"].as_i64())
        .unwrap_or_else(|| panic!("{execs:#}"));
    env.kill_daemon_group();
    assert!(alive(pid), "the exec'd process died with the daemon");
    assert!(
        wait_until(Duration::from_secs(60), || !alive(pid)),
        "exec'd process {pid} did not end"
    );
    env.start_daemon();
    let x = env.inspect("c")["execs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["session"].as_u64() == Some(session))
        .cloned()
        .unwrap();
    assert_eq!(x["running"], false, "{x:#}");
    assert_eq!(x["exit"]["exit_code"], 5, "{x:#}");
    let want = vec![
        ("exec_started".to_string(), 1, None),
        ("exec_exited".to_string(), 1, Some(3)),
        ("exec_started".to_string(), session, None),
        ("exec_exited".to_string(), session, Some(5)),
    ];
    assert_eq!(exec_events(&env, "c"), want, "{}", env.daemon_log());
    // Another restart tells nothing twice.
    env.kill_daemon_group();
    env.start_daemon();
    assert_eq!(exec_events(&env, "c"), want);
}

/// `zctr exec` whose daemon goes away mid-session says so in one line and
/// exits 125; the process goes on.
#[test]
fn manager_exec_client_reports_a_lost_daemon() {
    let Some(mut env) = Env::new() else { return };
    if !idle(&env, "c") {
        return;
    }
    let child = Command::new(zctr_bin())
        .arg("--socket")
        .arg(&env.socket)
        .args(["exec", "c", "--", "sh", "-c", "echo started; sleep 30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(20), || env.inspect("c")
        ["execs"]
        .as_array()
        .is_some_and(|a| !a.is_empty())));
    let pid = env.inspect("c")["execs"][0]["pid"].as_i64().unwrap();
    env.kill_daemon_group();
    let out = support::wait_child(child, T);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("lost the connection to the daemon"), "{err}");
    assert!(alive(pid), "the process must go on");
}

/// The API without the CLI: an exec that is neither detached nor an
/// upgrade is refused; on an upgraded session a client may only send
/// input, close and resize (a `Kill` is answered `CommandFailed` and the
/// container lives on), and its `Input` reaches the exec'd process whatever
/// session number it names.
#[test]
fn manager_exec_upgraded_sessions_relay_only_session_frames() {
    use common::protocol::{decode_frame, encode_frame_vec, ManagerMsg, ShimMsg, Stream};
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    let Some(env) = Env::new() else { return };
    if !idle(&env, "c") {
        return;
    }
    let request = |body: &str, upgrade: bool| {
        let mut s = UnixStream::connect(&env.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let extra = if upgrade {
            "Connection: Upgrade\r\nUpgrade: zctr-frames\r\n"
        } else {
            ""
        };
        write!(
            s,
            "POST /v1/containers/c/exec HTTP/1.1\r\nHost: zctr\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // The head, byte by byte: what follows it is frames.
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut b).unwrap(), 1, "{}", text(&head));
            head.push(b[0]);
        }
        (s, text(&head))
    };
    let (_, head) = request(r#"{"cmd":["true"]}"#, false);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (_, head) = request(r#"{"cmd":["true"],"bogus":1}"#, true);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    let (mut s, head) = request(r#"{"cmd":["cat"],"stdin":true}"#, true);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut got = Vec::new();
    let mut next = |s: &mut UnixStream| -> ShimMsg {
        loop {
            if let Ok((m, used)) = decode_frame::<ShimMsg>(&got) {
                got.drain(..used);
                return m;
            }
            let mut b = [0u8; 4096];
            let n = s.read(&mut b).unwrap();
            assert!(n > 0, "the daemon closed the session");
            got.extend_from_slice(&b[..n]);
        }
    };
    let ShimMsg::ExecStarted { session, .. } = next(&mut s) else {
        panic!("no ExecStarted first")
    };
    s.write_all(&encode_frame_vec(&ManagerMsg::Kill { signal: 9 }).unwrap())
        .unwrap();
    assert!(matches!(next(&mut s), ShimMsg::CommandFailed { errno, .. } if errno == libc::EPERM));
    let input = ManagerMsg::Input {
        session: session + 100,
        data: b"relayed\n".to_vec(),
    };
    s.write_all(&encode_frame_vec(&input).unwrap()).unwrap();
    let out = next(&mut s);
    assert_eq!(
        out,
        ShimMsg::Output {
            session,
            stream: Stream::Stdout,
            data: b"relayed\n".to_vec()
        }
    );
    s.write_all(&encode_frame_vec(&ManagerMsg::CloseInput { session: 0 }).unwrap())
        .unwrap();
    assert!(matches!(next(&mut s), ShimMsg::ExecExited { session: x, .. } if x == session));
    assert_eq!(env.status("c"), "running");
}
