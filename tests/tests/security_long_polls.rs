//! Long-lived requests against a real daemon: `wait` and `logs --follow`
//! outlive the connection timeouts, cannot lock short requests out, and
//! share one inotify instance however many there are. Split from
//! security_daemon.rs (the same harness and rules).

mod support;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{zctr_bin, DaemonSetup, Env};
use zctr_tests::wait_until;

const QUICK: Duration = Duration::from_secs(2);

/// Break 4, the other side: the header timeout (1 s here) never cuts a
/// response that is still streaming or a request still in flight.
#[test]
fn long_wait_and_follow_outlive_the_header_timeout() {
    let Some(env) = Env::with_daemon(DaemonSetup {
        wrapper: Vec::new(),
        env: vec![("ZCTR_HEADER_TIMEOUT".into(), "1".into())],
    }) else {
        return;
    };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    // Prints "spawned" at once and "done" 3 s later.
    env.zctr(&support::run_args(
        "f",
        &rootfs,
        &[],
        &[probe, "orphans", "0", "0", "--hold", "3"],
    ));
    let start = Instant::now();
    let logs = env.zctr(&["logs", "--follow", "f"]);
    assert!(start.elapsed() > Duration::from_millis(2500), "{logs}");
    assert!(logs.contains("done"), "{logs}");

    env.zctr(&support::run_args(
        "w",
        &rootfs,
        &[],
        &[probe, "sleep", "3"],
    ));
    let start = Instant::now();
    assert_eq!(env.zctr(&["wait", "w"]).trim(), "0");
    assert!(start.elapsed() > Duration::from_millis(2500));
    env.zctr(&["delete", "f"]);
    env.zctr(&["delete", "w"]);
}

/// Sends `POST /v1/containers/{id}/wait` on a new connection.
fn raw_wait(env: &Env, id: &str) -> UnixStream {
    let mut s = UnixStream::connect(&env.socket).unwrap();
    write!(
        s,
        "POST /v1/containers/{id}/wait HTTP/1.1\r\nhost: zctr\r\ncontent-length: 0\r\n\r\n"
    )
    .unwrap();
    s
}

/// What the server sent on `s` within `limit` (until it stops sending).
fn answer(s: &mut UnixStream, limit: Duration) -> String {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Review 2.3: long polls (`wait` here) have their own cap, a quarter of the
/// connection cap (16 here: 4). As many `wait`s as the connection cap on a
/// running container: 4 stay in flight, the others get `503 busy` at once,
/// and `list` and `create` still work (before: every slot was held and every
/// other client got `503 busy`). The 4 waits end when the container does.
#[test]
fn long_polls_never_lock_out_short_requests() {
    let Some(env) = Env::with_daemon(DaemonSetup {
        wrapper: Vec::new(),
        env: vec![("ZCTR_MAX_CONNECTIONS".into(), "16".into())],
    }) else {
        return;
    };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    env.zctr(&support::run_args(
        "w",
        &rootfs,
        &[],
        &[probe, "sleep", "600"],
    ));
    let mut waits: Vec<UnixStream> = (0..16).map(|_| raw_wait(&env, "w")).collect();
    let mut busy = 0;
    let mut pending = Vec::new();
    for mut s in waits.drain(..) {
        let text = answer(&mut s, Duration::from_millis(500));
        if text.is_empty() {
            pending.push(s);
        } else {
            assert!(
                text.starts_with("HTTP/1.1 503") && text.contains("\"busy\""),
                "{text}"
            );
            assert!(text.contains("long-polling"), "{text}");
            busy += 1;
        }
    }
    assert_eq!((pending.len(), busy), (4, 12), "waits in flight, refused");

    let (out, took) = support::timed(&env, &["list", "--json"], Duration::from_secs(10));
    assert!(
        out.status.success() && took < QUICK,
        "list with 4 waits in flight: after {took:?}: {}",
        zctr_tests::describe(&out)
    );
    let (out, _) = support::timed(
        &env,
        &[
            "create", "c", "--rootfs", &rootfs, "--", probe, "print", "x",
        ],
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    env.zctr(&["inspect", "c"]);
    env.zctr(&["delete", "c"]);

    env.zctr(&["kill", "w", "KILL"]);
    for s in &mut pending {
        let text = answer(s, Duration::from_secs(10));
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }
    env.zctr(&["delete", "w"]);
}

/// The descriptors of `pid` whose link reads `target` (e.g. `anon_inode:inotify`).
fn fds_to(pid: i32, target: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == target)
                })
                .count()
        })
        .unwrap_or(0)
}

/// The socket descriptors of `pid`.
fn socket_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Review 1.5a: 200 `logs --follow` at once (more than root's default
/// `max_user_instances` of 128, which one inotify instance per follower
/// used up for every root process on the host). The daemon holds one inotify
/// instance whatever the number of followers, and each follower gets all of
/// the output, in order.
#[test]
fn two_hundred_followers_share_one_inotify_instance() {
    const FOLLOWERS: usize = 200;
    const LINES: usize = 3000;
    let Some(env) = Env::with_daemon(DaemonSetup {
        wrapper: Vec::new(),
        // Room for 200 long polls (a quarter of the connection cap).
        env: vec![("ZCTR_MAX_CONNECTIONS".into(), "1024".into())],
    }) else {
        return;
    };
    if zctr_tests::skip::or_skip(env.rootfs.with_busybox()).is_none() {
        return;
    }
    let rootfs = env.rootfs_arg();
    let lines = LINES.to_string();
    env.zctr(&["create", "f", "--rootfs", &rootfs, "--", "seq", "1", &lines]);
    let daemon = env.daemon_pid();
    let sockets_before = socket_fds(daemon);
    struct Followers(Vec<std::process::Child>);
    impl Drop for Followers {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut followers = Followers(Vec::new());
    let outs: Vec<PathBuf> = (0..FOLLOWERS)
        .map(|i| env.tmp.join(format!("follow-{i}.out")))
        .collect();
    for out in &outs {
        let child = Command::new(zctr_bin())
            .arg("--socket")
            .arg(&env.socket)
            .args(["logs", "--follow", "f"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        followers.0.push(child);
    }
    let attached = wait_until(Duration::from_secs(30), || {
        socket_fds(daemon) >= sockets_before + FOLLOWERS
    });
    assert!(
        attached,
        "only {} followers connected",
        socket_fds(daemon) - sockets_before
    );
    // Let every follower open its log and watch.
    std::thread::sleep(Duration::from_secs(2));
    let instances = fds_to(daemon, "anon_inode:inotify");
    assert_eq!(
        instances, 1,
        "the daemon holds {instances} inotify instances for {FOLLOWERS} followers"
    );

    env.zctr(&["start", "f"]);
    assert_eq!(env.zctr(&["wait", "f"]).trim(), "0");
    let want: String = (1..=LINES).map(|i| format!("{i}\n")).collect();
    for (i, child) in followers.0.iter_mut().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "follower {i} did not end");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "follower {i}: {status}");
        let got = std::fs::read_to_string(&outs[i]).unwrap();
        assert!(got == want, "follower {i} got {} bytes", got.len());
    }
    assert_eq!(fds_to(daemon, "anon_inode:inotify"), 1);
    env.zctr(&["delete", "f"]);
}
