//! Hostile API input against a real daemon: malformed HTTP, hostile ids,
//! paths and bodies, deep and huge JSON, and a few hundred random requests.
//! Every answer must be a well-formed client error (never a 5xx, never a
//! crash or a hang), and afterwards the daemon still serves and nothing is
//! left: no container, state directory or cgroup.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;
use support::Env;

const T: Duration = Duration::from_secs(20);

/// Sends `raw` bytes as they are and returns the status code of the answer
/// (0 when the daemon closed without one). Only for bytes that are not a
/// complete request, the write side is closed after them (the daemon may wait
/// for more); a client that hangs up is otherwise a case of its own.
fn send_malformed(env: &Env, raw: &[u8]) -> (u16, String) {
    exchange(env, raw, true)
}

/// Sends a complete request and reads the whole answer.
fn send(env: &Env, raw: &[u8]) -> (u16, String) {
    exchange(env, raw, false)
}

fn exchange(env: &Env, raw: &[u8], half_close: bool) -> (u16, String) {
    let mut s = UnixStream::connect(&env.socket).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.set_write_timeout(Some(T)).unwrap();
    // The daemon may answer and close before it read everything (a body over
    // the limit): a failed write is part of the game.
    let _ = s.write_all(raw);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

fn request(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nhost: zctr\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// Bytes that are no request: a 4xx from the HTTP layer, or a closed connection.
fn assert_refused(what: &str, (status, out): &(u16, String)) {
    assert!(
        *status == 0 || (400..500).contains(status),
        "{what}: expected a 4xx or a closed connection, got {status}\n{out}"
    );
}

/// A client error with the documented JSON error body.
fn assert_client_error(what: &str, (status, out): &(u16, String)) {
    assert!(
        (400..500).contains(status),
        "{what}: expected a 4xx, got {status}\n{out}"
    );
    if *status >= 400 && out.contains("application/json") {
        assert!(out.contains("\"code\""), "{what}: no error code\n{out}");
    }
}

fn assert_serves_and_nothing_left(env: &Env) {
    let list = env.zctr(&["list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v, serde_json::json!([]), "containers left: {list}");
    let left: Vec<_> = std::fs::read_dir(&env.root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "state dirs left: {left:?}");
    for d in env.cgroup_dirs("x") {
        let parent = d.parent().unwrap().to_path_buf();
        let children: Vec<_> = std::fs::read_dir(&parent)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "zctr-shims")
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            children.is_empty(),
            "cgroups left in {}: {children:?}",
            parent.display()
        );
    }
}

fn create_body(env: &Env, id: &str, config: serde_json::Value) -> Vec<u8> {
    let mut c = serde_json::json!({"rootfs": env.rootfs_arg(), "args": ["/bin/true"]});
    if let (Some(base), Some(extra)) = (c.as_object_mut(), config.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(&serde_json::json!({"id": id, "config": c})).unwrap()
}

#[test]
fn hostile_requests_get_client_errors_and_leave_nothing() {
    let Some(env) = Env::new() else { return };
    let pid = env.daemon_pid();

    // Malformed HTTP.
    let malformed: &[&[u8]] = &[
        b"\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /v1/containers HTTP/1.1\r\nhost: zctr\r\ncontent-length: -1\r\n\r\n",
        b"POST /v1/containers HTTP/1.1\r\nhost: zctr\r\ncontent-length: 99999999999999999999\r\n\r\n",
        b"POST /v1/containers HTTP/1.1\r\nhost: zctr\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"GET /v1/containers HTTP/1.1\r\nhost: zctr\r\nx: \x00\x01\x02\r\n\r\n",
        &[0xff; 4096],
    ];
    for (i, m) in malformed.iter().enumerate() {
        assert_refused(&format!("malformed #{i}"), &send_malformed(&env, m));
    }
    // A header section far over any sane size.
    let mut big_head = b"GET /v1/containers HTTP/1.1\r\nhost: zctr\r\n".to_vec();
    for i in 0..2000 {
        big_head.extend_from_slice(format!("x-h{i}: {}\r\n", "a".repeat(100)).as_bytes());
    }
    big_head.extend_from_slice(b"\r\n");
    assert_refused("huge header section", &send_malformed(&env, &big_head));

    // Hostile ids and paths.
    for path in [
        "/v1/containers/..%2f..%2fetc/start",
        "/v1/containers/../../etc",
        "/v1/containers/%00/start",
        "/v1/containers/a%2fb",
        "/v1/containers/.",
        "/v1/containers/-x/start",
        "/v1/containers/ünï/start",
        &format!("/v1/containers/{}/start", "a".repeat(65)),
        &format!("/v1/{}", "x/".repeat(4000)),
    ] {
        for method in ["GET", "POST", "DELETE"] {
            let r = send(&env, &request(method, path, b""));
            assert_client_error(&format!("{method} {path}"), &r);
        }
    }
    for q in [
        "/v1/containers/ghost/kill?signal=999",
        "/v1/containers/ghost/kill?signal=%00",
        "/v1/containers?start=maybe",
        "/v1/containers/ghost?force=yes",
    ] {
        assert_client_error(q, &send(&env, &request("POST", q, b"{}")));
    }

    // Hostile bodies.
    let deep = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let deep_obj = "{\"id\":".repeat(100_000);
    let bodies: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("not json".into(), b"{not json".to_vec()),
        ("nul".into(), b"\x00\x00\x00".to_vec()),
        ("deep array".into(), deep.into_bytes()),
        ("deep object".into(), deep_obj.into_bytes()),
        ("over the body limit".into(), vec![b' '; (1 << 20) + 10]),
        (
            "unknown field".into(),
            br#"{"id":"x","config":{},"extra":1}"#.to_vec(),
        ),
        (
            "bad id ..".into(),
            create_body(&env, "..", serde_json::json!({})),
        ),
        (
            "bad id /".into(),
            create_body(&env, "a/b", serde_json::json!({})),
        ),
        (
            "bad id long".into(),
            create_body(&env, &"a".repeat(65), serde_json::json!({})),
        ),
        (
            "bad id nul".into(),
            create_body(&env, "a\u{0}b", serde_json::json!({})),
        ),
        (
            "relative rootfs".into(),
            create_body(&env, "x", serde_json::json!({"rootfs": "rel/dir"})),
        ),
        (
            "rootfs with nul".into(),
            create_body(&env, "x", serde_json::json!({"rootfs": "/tmp/\u{0}x"})),
        ),
        (
            "missing rootfs".into(),
            create_body(
                &env,
                "x",
                serde_json::json!({"rootfs": "/nonexistent/zctr"}),
            ),
        ),
        (
            "rootfs a file".into(),
            create_body(&env, "x", serde_json::json!({"rootfs": "/etc/hostname"})),
        ),
        (
            "meta a device".into(),
            create_body(&env, "x", serde_json::json!({"meta": "/dev/urandom"})),
        ),
        (
            "meta relative".into(),
            create_body(&env, "x", serde_json::json!({"meta": "../../etc/shadow"})),
        ),
        (
            "volume dest ..".into(),
            create_body(
                &env,
                "x",
                serde_json::json!({"volumes": [{"source": "/tmp", "destination": "/../../etc"}]}),
            ),
        ),
        (
            "volume dest relative".into(),
            create_body(
                &env,
                "x",
                serde_json::json!({"volumes": [{"source": "/tmp", "destination": "etc"}]}),
            ),
        ),
        (
            "volume source missing".into(),
            create_body(
                &env,
                "x",
                serde_json::json!({"volumes": [{"source": "/nonexistent/v", "destination": "/v"}]}),
            ),
        ),
        (
            "hostname /".into(),
            create_body(&env, "x", serde_json::json!({"hostname": "a/b"})),
        ),
        (
            "hostname long".into(),
            create_body(&env, "x", serde_json::json!({"hostname": "h".repeat(300)})),
        ),
        (
            "env nul".into(),
            create_body(&env, "x", serde_json::json!({"env": {"A": "b\u{0}c"}})),
        ),
        (
            "env key =".into(),
            create_body(&env, "x", serde_json::json!({"env": {"A=B": "c"}})),
        ),
        (
            "args empty".into(),
            create_body(&env, "x", serde_json::json!({"args": []})),
        ),
        (
            "args nul".into(),
            create_body(&env, "x", serde_json::json!({"args": ["/bin/true\u{0}"]})),
        ),
        (
            "memory negative".into(),
            create_body(
                &env,
                "x",
                serde_json::json!({"limits": {"memory_bytes": -1}}),
            ),
        ),
        (
            "memory huge".into(),
            create_body(
                &env,
                "x",
                serde_json::json!({"limits": {"memory_bytes": 1e300}}),
            ),
        ),
        (
            "pids zero".into(),
            create_body(&env, "x", serde_json::json!({"limits": {"pids": 0}})),
        ),
        (
            "profile unknown".into(),
            create_body(&env, "x", serde_json::json!({"profile": "root"})),
        ),
        (
            "network netns missing".into(),
            create_body(
                &env,
                "x",
                serde_json::json!({"network": {"join": "/nonexistent/ns"}}),
            ),
        ),
        (
            "capability unknown".into(),
            create_body(
                &env,
                "x",
                serde_json::json!({"capabilities": {"add": ["CAP_EVERYTHING"]}}),
            ),
        ),
        (
            "seccomp unknown action".into(),
            create_body(
                &env,
                "x",
                serde_json::json!({"seccomp": {"defaultAction": "SCMP_ACT_MAYBE"}}),
            ),
        ),
    ];
    for (what, body) in &bodies {
        let r = send(&env, &request("POST", "/v1/containers", body));
        assert_client_error(what, &r);
        assert!(
            support::alive(pid as i64),
            "{what}: the daemon died\n{}",
            env.daemon_log()
        );
    }
    assert_serves_and_nothing_left(&env);
}

/// A small deterministic generator: the same requests on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_requests_never_take_the_daemon_down() {
    let Some(env) = Env::new() else { return };
    let pid = env.daemon_pid();
    let mut rng = XorShift(0x5eed_2026_1202_0001);
    let methods = [
        "GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD", "G\x00T",
    ];
    let segments = [
        "v1",
        "containers",
        "x",
        "..",
        "%2e%2e",
        "start",
        "kill",
        "pause",
        "resume",
        "wait",
        "ps",
        "logs",
        "stats",
        "",
        "%00",
        "?follow=true",
        "?signal=KILL",
        "?force=true",
        "?start=true",
        "ünï",
        "a%2fb",
    ];
    let fields = [
        "id",
        "config",
        "rootfs",
        "args",
        "env",
        "volumes",
        "limits",
        "meta",
        "profile",
        "network",
        "seccomp",
        "hostname",
        "mounts",
        "capabilities",
        "user",
        "cwd",
    ];
    let values = [
        "null",
        "true",
        "-1",
        "1e400",
        "\"\"",
        "\"..\"",
        "\"/\"",
        "[]",
        "{}",
        "\"\\u0000\"",
        "[[[[[[[[]]]]]]]]",
        "18446744073709551616",
        "\"/proc/self/root\"",
    ];
    for i in 0..300 {
        let method = rng.pick(&methods);
        let depth = 1 + rng.next() % 5;
        let mut path = String::new();
        for _ in 0..depth {
            path.push('/');
            path.push_str(rng.pick(&segments));
        }
        let body: Vec<u8> = match rng.next() % 4 {
            0 => {
                let n = (rng.next() % 512) as usize;
                rng.bytes(n)
            }
            1 => Vec::new(),
            _ => {
                let mut obj = String::from("{");
                for k in 0..(rng.next() % 6) {
                    if k > 0 {
                        obj.push(',');
                    }
                    obj.push_str(&format!("\"{}\":{}", rng.pick(&fields), rng.pick(&values)));
                }
                obj.push('}');
                obj.into_bytes()
            }
        };
        let (status, out) = send(&env, &request(method, &path, &body));
        assert!(
            status < 500 || status == 503 && out.contains("busy"),
            "request #{i}: {method} {path}: {status}\n{out}"
        );
        assert!(
            support::alive(pid as i64),
            "request #{i} killed the daemon\n{}",
            env.daemon_log()
        );
    }
    assert_serves_and_nothing_left(&env);
}
