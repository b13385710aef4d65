//! Adversarial tests of the daemon (issue 8, breaks 2, 4 and the CLI half of
//! 9): hostile files a container or a client names (`/etc/passwd` read by
//! `ps`, the image meta file), hostile API clients (idle connections beyond
//! the daemon's descriptor limit, slow headers, slow bodies) and a CLI
//! whose stdout is closed. Real daemon, real containers (see `support`).
//!
//! The daemon runs under `prlimit --as` in the file tests so that the old
//! unbounded reads fail (abort at the limit) instead of taking the host's
//! memory; the API tests lower its `RLIMIT_NOFILE` (soft and hard, so the
//! daemon cannot raise it) and its timeouts (`ZCTR_HEADER_TIMEOUT`,
//! `ZCTR_BODY_TIMEOUT`) to stay fast.

mod support;

use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{zctr_bin, DaemonSetup, Env};
use zctr_tests::{run_cmd, wait_until};

/// The longest a request in these tests may take on a loaded 2-core host.
const QUICK: Duration = Duration::from_secs(2);
/// Peak resident memory the daemon must stay under (it starts near 10 MiB).
const MAX_HWM_KIB: u64 = 64 << 10;

/// The daemon under an address-space limit (the old code's unbounded reads
/// end at it instead of in the host's OOM killer).
fn memory_capped() -> Option<Env> {
    zctr_tests::skip::need_tool("prlimit")?;
    Env::with_daemon(DaemonSetup {
        wrapper: ["prlimit", "--as=2147483648", "--"]
            .map(String::from)
            .to_vec(),
        env: Vec::new(),
    })
}

/// A field (in KiB) of /proc/PID/status, e.g. VmHWM.
fn status_kib(pid: i32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// utime + stime of `pid` in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat; `rest` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn assert_daemon_serves(env: &Env) {
    let (out, took) = support::timed(env, &["list", "--json"], Duration::from_secs(10));
    assert!(
        out.status.success() && took < QUICK,
        "list after {took:?}: {}\ndaemon log:\n{}",
        zctr_tests::describe(&out),
        env.daemon_log()
    );
}

/// Break 2: every hostile /etc/passwd a container can make, one after the
/// other in one running container: `ps` answers at once each time, the
/// daemon's memory stays small, a host file is never read, and a sound
/// passwd still names the user.
#[test]
fn hostile_passwd_does_not_hang_or_bloat_ps() {
    let Some(env) = memory_capped() else { return };
    if zctr_tests::skip::or_skip(env.rootfs.with_busybox()).is_none() {
        return;
    }
    // A host file that must never be shown: a passwd naming uid 0 "hostsecret".
    let decoy = env.tmp.join("decoy-passwd");
    std::fs::write(&decoy, "hostsecret:x:0:0::/:/bin/sh\n").unwrap();
    let decoy = decoy.display().to_string();
    let up = "../../../../../../../../../..";
    let b = "/bin/busybox";
    let stages: Vec<(&str, String)> = vec![
        (
            "symlink to /dev/zero",
            format!("{b} ln -s /dev/zero /etc/passwd"),
        ),
        ("FIFO", format!("{b} mkfifo /etc/passwd")),
        (
            "relative symlink to /etc/shadow",
            format!("{b} ln -s ../../../../etc/shadow /etc/passwd"),
        ),
        (
            "absolute symlink to /etc/shadow",
            format!("{b} ln -s /etc/shadow /etc/passwd"),
        ),
        (
            "absolute symlink to a host file",
            format!("{b} ln -s {decoy} /etc/passwd"),
        ),
        (
            "relative symlink to a host file",
            format!("{b} ln -s {up}{decoy} /etc/passwd"),
        ),
        (
            "100 MB file",
            format!("{b} dd if=/dev/zero of=/etc/passwd bs=1M seek=100 count=0"),
        ),
        (
            "a sound passwd",
            "echo root:x:0:0:root:/root:/bin/sh > /etc/passwd".to_string(),
        ),
    ];
    let ctl = env.volume_dir("ctl");
    let mut script = String::from(
        "stage() { /bin/busybox touch /ctl/ready-$1; \
         while [ ! -e /ctl/go-$1 ]; do /bin/busybox sleep 0.05; done; }\n",
    );
    for (i, (_, cmd)) in stages.iter().enumerate() {
        script.push_str(&format!(
            "{b} rm -f /etc/passwd; {cmd} || exit 1; stage {i}\n"
        ));
    }
    script.push_str("exec /bin/busybox sleep 1000\n");
    let vol = format!("{}:/ctl", ctl.display());
    let rootfs = env.rootfs_arg();
    env.zctr(&support::run_args(
        "s",
        &rootfs,
        &["-v", &vol],
        &["/bin/busybox", "sh", "-c", &script],
    ));

    let daemon = env.daemon_pid();
    for (i, (what, _)) in stages.iter().enumerate() {
        let ready = ctl.join(format!("ready-{i}"));
        assert!(
            wait_until(Duration::from_secs(20), || ready.exists()),
            "stage {i} ({what}) not reached; logs: {}",
            env.logs("s")
        );
        let (out, took) = support::timed(&env, &["ps", "s", "--json"], Duration::from_secs(10));
        assert!(
            out.status.success() && took < QUICK,
            "ps with {what}: after {took:?}: {}\ndaemon log:\n{}",
            zctr_tests::describe(&out),
            env.daemon_log()
        );
        let procs: Value = serde_json::from_slice(&out.stdout).unwrap();
        let users: Vec<&Value> = procs
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["user"])
            .collect();
        assert!(!users.is_empty(), "{what}: {procs}");
        if i + 1 == stages.len() {
            assert!(users.iter().all(|u| *u == "root"), "{what}: {procs}");
        } else {
            assert!(users.iter().all(|u| u.is_null()), "{what}: {procs}");
        }
        let hwm = status_kib(daemon, "VmHWM");
        assert!(hwm < MAX_HWM_KIB, "{what}: daemon peak RSS {hwm} KiB");
        std::fs::write(ctl.join(format!("go-{i}")), b"").unwrap();
    }
    eprintln!("daemon VmHWM {} KiB", status_kib(daemon, "VmHWM"));
    env.zctr(&["delete", "--force", "s"]);
    assert_daemon_serves(&env);
}

/// Break 2, meta: a meta file that is a device, a FIFO (also behind a
/// symlink), a directory or huge is refused at once with `bad_meta` naming
/// the file, and the create leaves nothing behind.
#[test]
fn hostile_meta_fails_fast_and_leaves_nothing() {
    let Some(env) = memory_capped() else { return };
    let fifo = env.tmp.join("meta.fifo");
    let out = run_cmd(Command::new("mkfifo").arg(&fifo), support::T).unwrap();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    let link = env.tmp.join("meta-link.json");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    let dir = env.tmp.join("meta-dir");
    std::fs::create_dir(&dir).unwrap();
    let huge = env.tmp.join("huge.json");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    // /dev/zero last: the old code's unbounded read ends the daemon.
    let cases: Vec<(PathBuf, &str)> = vec![
        (fifo.clone(), "FIFO"),
        (link, "FIFO"),
        (dir, "directory"),
        (huge, "larger than"),
        (PathBuf::from("/dev/zero"), "character device"),
    ];
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    for (meta, why) in &cases {
        let m = meta.display().to_string();
        let (out, took) = support::timed(
            &env,
            &[
                "create", "m", "--rootfs", &rootfs, "--meta", &m, "--", probe, "exit", "0",
            ],
            Duration::from_secs(10),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && took < QUICK,
            "meta {m}: after {took:?}: {}\ndaemon log:\n{}",
            zctr_tests::describe(&out),
            env.daemon_log()
        );
        assert!(err.contains("(bad_meta)"), "meta {m}: {err}");
        assert!(err.contains(&m) && err.contains(why), "meta {m}: {err}");
        assert!(!env.root.join("m").exists(), "meta {m}: state dir left");
        for d in env.cgroup_dirs("m") {
            assert!(!d.exists(), "meta {m}: cgroup {} left", d.display());
        }
        let list: Value = serde_json::from_str(&env.zctr(&["list", "--json"])).unwrap();
        assert_eq!(list, serde_json::json!([]), "meta {m}");
    }
    let hwm = status_kib(env.daemon_pid(), "VmHWM");
    assert!(hwm < MAX_HWM_KIB, "daemon peak RSS {hwm} KiB");
    // A sound meta still works.
    let good = env.tmp.join("good.json");
    std::fs::write(
        &good,
        r#"{"version": 1, "args": ["/bin/zctr-probe", "exit", "0"]}"#,
    )
    .unwrap();
    env.zctr(&[
        "create",
        "m",
        "--rootfs",
        &rootfs,
        "--meta",
        &good.display().to_string(),
    ]);
    env.zctr(&["delete", "--force", "m"]);
    assert_daemon_serves(&env);
}

/// The daemon with a descriptor limit it cannot raise and short timeouts.
fn api_env(nofile: u32) -> Option<Env> {
    zctr_tests::skip::need_tool("prlimit")?;
    Env::with_daemon(DaemonSetup {
        wrapper: vec![
            "prlimit".into(),
            format!("--nofile={nofile}:{nofile}"),
            "--".into(),
        ],
        env: vec![
            ("ZCTR_HEADER_TIMEOUT".into(), "2".into()),
            ("ZCTR_BODY_TIMEOUT".into(), "2".into()),
        ],
    })
}

/// Whether the server closed `s` (EOF or an error; data counts too: no
/// request was ever completed on these connections).
fn closed_by_server(mut s: &UnixStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    !matches!(s.read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock)
}

/// Break 4: 1100 idle connections against a daemon limited to 256
/// descriptors: it does not spin, still answers at once, and closes the
/// idle connections after the header timeout.
/// Raises this process's soft RLIMIT_NOFILE to its hard limit; `false`
/// (after a skip, a failure under CI) when even that is below `need`.
fn raise_own_nofile(need: u64) -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the local `lim` only.
    let ok = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0
        }
    };
    if !ok || lim.rlim_max < need {
        zctr_tests::skip::skip(format!(
            "RLIMIT_NOFILE hard limit {} is below the {need} descriptors this test holds",
            lim.rlim_max
        ));
        return false;
    }
    true
}

#[test]
fn idle_connections_beyond_the_fd_limit_do_not_starve_the_daemon() {
    const CONNS: usize = 1100;
    // This process holds the client ends (and the other tests of this
    // executable run beside it): the usual soft limit of 1,024 is too low.
    if !raise_own_nofile(CONNS as u64 + 512) {
        return;
    }
    let Some(env) = api_env(256) else { return };
    let held: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
    // Connects from a thread: against a daemon that stopped accepting, a
    // full backlog would block connect().
    let (h, sock) = (held.clone(), env.socket.clone());
    let opener = std::thread::spawn(move || {
        for _ in 0..CONNS {
            match UnixStream::connect(&sock) {
                Ok(s) => h.lock().unwrap().push(s),
                Err(e) => eprintln!("connect: {e}"),
            }
        }
    });
    wait_until(Duration::from_secs(20), || opener.is_finished());
    let opened = held.lock().unwrap().len();
    assert!(opened > 600, "only {opened} connections opened");
    std::thread::sleep(Duration::from_millis(300));

    let daemon = env.daemon_pid();
    let before = cpu_ticks(daemon);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(daemon) - before;
    // 2 s at 100 ticks/s: 200 ticks for a spinning core.
    assert!(
        used <= 20,
        "daemon used {used} ticks of CPU in 2 s while idle"
    );

    let (out, took) = support::timed(&env, &["list", "--json"], Duration::from_secs(10));
    assert!(
        out.status.success() && took < Duration::from_secs(1),
        "list with {opened} idle connections: after {took:?}: {}\ndaemon log:\n{}",
        zctr_tests::describe(&out),
        env.daemon_log()
    );

    // Header timeout 2 s: every idle connection is closed by then.
    let all_closed = wait_until(Duration::from_secs(6), || {
        held.lock().unwrap().iter().all(closed_by_server)
    });
    let open = held
        .lock()
        .unwrap()
        .iter()
        .filter(|s| !closed_by_server(s))
        .count();
    assert!(all_closed, "{open} of {opened} idle connections still open");
    let _ = opener.join();
    assert_daemon_serves(&env);
}

/// Break 4: a client sending its request head one byte per second is cut off
/// at the header timeout (2 s here), long before the head is complete.
#[test]
fn slowloris_client_is_cut_off() {
    let Some(env) = api_env(1024) else { return };
    let mut s = UnixStream::connect(&env.socket).unwrap();
    let head = b"GET /v1/containers HTTP/1.1\r\nhost: zctr\r\n\r\n";
    let start = Instant::now();
    let mut cut = None;
    for byte in head {
        if s.write_all(&[*byte]).is_err() || closed_by_server(&s) {
            cut = Some(start.elapsed());
            break;
        }
        s.set_nonblocking(false).unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    let cut = cut.expect("a slow request head was never cut off");
    assert!(cut < Duration::from_secs(5), "cut off only after {cut:?}");
    assert_daemon_serves(&env);
}

/// Break 4: a request body that stops arriving gets `408` at the body timeout.
#[test]
fn stalled_request_body_gets_408() {
    let Some(env) = api_env(1024) else { return };
    let mut s = UnixStream::connect(&env.socket).unwrap();
    s.write_all(
        b"POST /v1/containers HTTP/1.1\r\nhost: zctr\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{\"id\":",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let start = Instant::now();
    let mut resp = Vec::new();
    let mut buf = [0u8; 1024];
    while !resp.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => resp.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&resp);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "after {:?}: {text:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_daemon_serves(&env);
}

/// Break 9 (CLI): every printing command whose stdout reader is gone ends
/// quietly with status 141 (128 + SIGPIPE) instead of panicking.
#[test]
fn cli_with_a_closed_stdout_ends_quietly() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    env.zctr(&support::run_args(
        "c",
        &rootfs,
        &[],
        &[probe, "print", "hello"],
    ));
    env.zctr(&["wait", "c"]);
    let commands: [&[&str]; 6] = [
        &["list"],
        &["list", "--json"],
        &["inspect", "c"],
        &["logs", "c"],
        &["ps", "c"],
        &["wait", "c"],
    ];
    for args in commands {
        let mut child = Command::new(zctr_bin())
            .arg("--socket")
            .arg(&env.socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the client writes anything.
        drop(child.stdout.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = child.try_wait().unwrap();
        if status.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(141),
            "zctr {args:?}: {err}"
        );
        assert!(err.is_empty(), "zctr {args:?} wrote to stderr: {err}");
    }
    env.zctr(&["delete", "c"]);
}
