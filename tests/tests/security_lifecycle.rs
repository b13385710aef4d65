//! Hostile lifecycle cases (issue 8, breaks 5, 6, 7 and the first half of 9)
//! through a real daemon: a shim killed while its container is paused, delete
//! --force from every state, clients that hang up during create, ids that
//! name cgroup files, and a container init stopped before `start`. After each
//! case nothing may be left: no container process, no cgroup in any
//! hierarchy, no state directory, no shim.

mod support;

use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::{alive, run_args, Env, T};
use zctr_tests::wait_until;

/// How long the daemon may take to notice and clean up after a dead shim.
// Long enough for the emulated CPUs of the cgroup v2 VM (scripts/vm-test.sh).
const SETTLE: Duration = Duration::from_secs(120);

/// Directories below the daemon's cgroup parent in every hierarchy, other
/// than the shims' cgroup: each one is a container's cgroup left behind.
fn leftover_cgroups(env: &Env) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for d in env.cg.dirs() {
        for e in std::fs::read_dir(&d.path).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() && e.file_name() != "zctr-shims" {
                left.push(e.path());
            }
        }
    }
    left
}

/// Entries of the state root other than the daemon's lock file.
fn leftover_state(env: &Env) -> Vec<PathBuf> {
    std::fs::read_dir(&env.root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != common::layout::LOCK_FILE)
        // The daemon's event log (and its rotated file) is the daemon's.
        .filter(|e| {
            !e.file_name()
                .to_string_lossy()
                .starts_with(common::layout::EVENTS_FILE)
        })
        .map(|e| e.path())
        .collect()
}

/// Live processes in the shims' cgroup (any hierarchy).
fn live_shims(env: &Env) -> Vec<i64> {
    let mut pids = Vec::new();
    for d in env.cg.dirs() {
        let procs = d.path.join("zctr-shims/cgroup.procs");
        if let Ok(s) = std::fs::read_to_string(procs) {
            pids.extend(s.lines().filter_map(|l| l.trim().parse::<i64>().ok()));
        }
    }
    pids.retain(|p| alive(*p));
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Waits until nothing of any container is left, then says what is.
fn assert_nothing_left(env: &Env) {
    let clean = wait_until(SETTLE, || {
        leftover_cgroups(env).is_empty()
            && leftover_state(env).is_empty()
            && live_shims(env).is_empty()
    });
    assert!(
        clean,
        "left behind: cgroups {:?}, state {:?}, shims {:?}\ndaemon log:\n{}",
        leftover_cgroups(env),
        leftover_state(env),
        live_shims(env),
        env.daemon_log()
    );
}

fn init_pid(env: &Env, id: &str) -> i64 {
    env.inspect(id)["init"]["pid"].as_i64().unwrap()
}

fn shim_pid(env: &Env, id: &str) -> i64 {
    env.inspect(id)["shim"]["pid"].as_i64().unwrap()
}

/// The state letter of /proc/PID/stat (`T` stopped, `D` frozen, ...).
fn proc_state(pid: i64) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    common::state::parse_proc_stat(&s).map(|st| st.state)
}

fn assert_gone(env: &Env, pid: i64, what: &str) {
    assert!(
        wait_until(SETTLE, || !alive(pid)),
        "{what} {pid} still there (state {:?})\ndaemon log:\n{}",
        proc_state(pid),
        env.daemon_log()
    );
}

/// One raw HTTP/1.1 request on the daemon's socket; returns (status, body).
fn raw(env: &Env, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = UnixStream::connect(&env.socket).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: zctr\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn create_body(env: &Env, id: &str) -> String {
    let probe = env.rootfs.probe_in_container();
    serde_json::json!({
        "id": id,
        "config": {
            "rootfs": env.rootfs_arg(),
            "args": [probe, "sleep", "inf"],
        }
    })
    .to_string()
}

/// Break 5: the shim of a paused container is SIGKILLed. Its init must not
/// stay frozen: the daemon kills it (thawed first, in every hierarchy),
/// reports the container stopped, and delete removes every cgroup.
#[test]
fn security_shim_killed_while_paused_leaves_nothing_frozen() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    env.zctr(&run_args("frozen", &rootfs, &[], &[probe, "sleep", "inf"]));
    let (init, shim) = (init_pid(&env, "frozen"), shim_pid(&env, "frozen"));
    env.zctr(&["pause", "frozen"]);
    assert_eq!(env.status("frozen"), "paused");

    zctr_tests::signal(shim as i32, libc::SIGKILL).unwrap();
    assert!(
        wait_until(SETTLE, || env.status("frozen") == "stopped"),
        "still {}",
        env.status("frozen")
    );
    assert_eq!(env.inspect("frozen")["stop_reason"], "shim died");
    // Stopped means stopped: the init is gone, not frozen.
    assert_gone(&env, init, "the paused container's init");
    env.zctr(&["delete", "frozen"]);
    assert_nothing_left(&env);
}

/// Break 6 (and 5): delete --force ends a container from every state:
/// created, running, paused, paused with its shim dead, and creating (it
/// waits for the creation to finish, then deletes).
#[test]
fn security_delete_force_works_from_every_state() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    let cmd = [probe, "sleep", "inf"];

    env.zctr(&[
        "create",
        "f-created",
        "--rootfs",
        &rootfs,
        "--",
        probe,
        "sleep",
        "inf",
    ]);
    env.zctr(&run_args("f-running", &rootfs, &[], &cmd));
    env.zctr(&run_args("f-paused", &rootfs, &[], &cmd));
    env.zctr(&["pause", "f-paused"]);
    env.zctr(&run_args("f-dead-shim", &rootfs, &[], &cmd));
    env.zctr(&["pause", "f-dead-shim"]);
    let ids = ["f-created", "f-running", "f-paused", "f-dead-shim"];
    let inits: Vec<i64> = ids.iter().map(|id| init_pid(&env, id)).collect();
    zctr_tests::signal(shim_pid(&env, "f-dead-shim") as i32, libc::SIGKILL).unwrap();
    for id in ids {
        env.zctr(&["delete", "--force", id]);
        env.zctr_fails(&["inspect", id], "not_found");
    }
    for (pid, id) in inits.into_iter().zip(ids) {
        assert_gone(&env, pid, id);
    }

    // Creating: caught between the request and its answer.
    let body = create_body(&env, "f-creating");
    let seen_creating = std::thread::scope(|s| {
        let creator = s.spawn(|| raw(&env, "POST", "/v1/containers", &body));
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = false;
        while Instant::now() < deadline && !creator.is_finished() {
            let (code, b) = raw(&env, "GET", "/v1/containers/f-creating", "");
            if code == 200 && b.contains("\"creating\"") {
                seen = true;
                let (code, b) = raw(&env, "DELETE", "/v1/containers/f-creating?force=true", "");
                assert_eq!(code, 204, "delete --force of a creating container: {b}");
                break;
            }
        }
        let (code, b) = creator.join().unwrap();
        assert_eq!(code, 201, "{b}");
        seen
    });
    if seen_creating {
        env.zctr_fails(&["inspect", "f-creating"], "not_found");
    } else {
        // Too quick to be caught this time: the plain case still holds.
        eprintln!("note: the creation of f-creating was not seen in progress");
        env.zctr(&["delete", "--force", "f-creating"]);
    }
    assert_nothing_left(&env);
}

/// Break 6: 30 clients send `POST /v1/containers?start=true` and hang up
/// after 0 to 58 ms. Every operation runs to its end anyway: once things
/// settle each container is running (and deletable) or gone, never left
/// `creating` with a live shim, a cgroup and a state directory.
#[test]
fn security_clients_hanging_up_during_create_leave_nothing_half_made() {
    let Some(env) = Env::new() else { return };
    std::thread::scope(|s| {
        for i in 0..30u64 {
            let env = &env;
            s.spawn(move || {
                let body = create_body(env, &format!("h{i}"));
                let mut sock = UnixStream::connect(&env.socket).unwrap();
                let _ = write!(
                    sock,
                    "POST /v1/containers?start=true HTTP/1.1\r\nhost: zctr\r\n\
                     content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                // Like `curl -m 0.02`: give up after a few milliseconds.
                std::thread::sleep(Duration::from_millis(2 * (i % 30)));
                drop(sock);
            });
        }
    });
    let list = || -> Vec<Value> {
        let v: Value = serde_json::from_str(&env.zctr(&["list", "--json"])).unwrap();
        v.as_array().unwrap().clone()
    };
    let settled = wait_until(SETTLE, || {
        list()
            .iter()
            .all(|c| c["status"] != "creating" && c["status"] != "created")
    });
    let all = list();
    assert!(
        settled,
        "half-made containers remain: {:?}\ndaemon log:\n{}",
        all.iter()
            .map(|c| format!("{}={}", c["id"], c["status"]))
            .collect::<Vec<_>>(),
        env.daemon_log()
    );
    assert!(!all.is_empty(), "no request was accepted at all");
    eprintln!("{} of 30 abandoned requests made a container", all.len());
    for c in &all {
        assert_eq!(c["status"], "running", "{c}");
    }
    for c in &all {
        env.zctr(&["delete", "--force", c["id"].as_str().unwrap()]);
    }
    assert_nothing_left(&env);
}

/// Break 7: ids that are the names of kernel cgroup files run and delete
/// cleanly (the container's cgroup is `<id>.zctr`), leaving no directory.
#[test]
fn security_ids_naming_cgroup_files_work_and_leave_nothing() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    let ids = [
        "cpu.cfs_quota_us",
        "cgroup.procs",
        "tasks",
        "notify_on_release",
        "memory.limit_in_bytes",
        "release_agent",
        "cgroup.kill",
        "freezer.state",
        "zctr-shims",
    ];
    for id in ids {
        env.zctr(&run_args(id, &rootfs, &[], &[probe, "sleep", "inf"]));
        assert_eq!(env.status(id), "running");
        let init = init_pid(&env, id).to_string();
        for dir in env.cgroup_dirs(id) {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            assert!(
                procs.lines().any(|l| l == init),
                "{id}: init not in {}",
                dir.display()
            );
        }
    }
    for id in ids {
        env.zctr(&["delete", "--force", id]);
    }
    assert_nothing_left(&env);
}

/// Break 9 (first half): the container's init, SIGSTOPped before `start`,
/// still runs the container's program: `start` resumes it (until it execs,
/// it runs the shim's code, not the container's) and succeeds.
#[test]
fn security_start_resumes_an_init_stopped_before_start() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    env.zctr(&[
        "create",
        "stopped",
        "--rootfs",
        &rootfs,
        "--",
        probe,
        "print",
        "ran-after-sigstop",
    ]);
    let init = init_pid(&env, "stopped");
    zctr_tests::signal(init as i32, libc::SIGSTOP).unwrap();
    assert!(wait_until(Duration::from_secs(5), || proc_state(init) == Some('T')));

    let began = Instant::now();
    env.zctr(&["start", "stopped"]);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    assert_eq!(env.zctr(&["wait", "stopped"]).trim(), "0");
    assert!(env.logs("stopped").contains("ran-after-sigstop"));
    env.zctr(&["delete", "stopped"]);
    assert_nothing_left(&env);
}
