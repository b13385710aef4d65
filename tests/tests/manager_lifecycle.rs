//! End-to-end tests of the manager: a real `zctr daemon` (own state root,
//! socket and cgroup parent below a `TestCgroup`), real shims and containers
//! running the probe. Run as root after `scripts/build-static.sh` (the `zctr`
//! binary may also come from `target/debug`).

mod support;

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{zctr_bin, Env, T};
use zctr_tests::{bins, run_cmd};

/// `run ID --rootfs ROOTFS -- CMD...`
fn run_args<'a>(id: &'a str, rootfs: &'a str, cmd: &[&'a str]) -> Vec<&'a str> {
    support::run_args(id, rootfs, &[], cmd)
}

#[test]
fn manager_lifecycle_and_invalid_transitions() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();

    // create → created; its process waits before exec.
    env.zctr(&[
        "create",
        "c1",
        "--rootfs",
        &rootfs,
        "--",
        probe,
        "sleep",
        "inf",
        "--on-term",
        "0",
    ]);
    assert_eq!(env.status("c1"), "created");
    let insp = env.inspect("c1");
    assert_eq!(insp["shim_command"][1], "create");
    assert!(insp["shim"]["start_time"].as_u64().unwrap() > 0);
    env.zctr_fails(&["create", "c1", "--rootfs", &rootfs], "already_exists");
    env.zctr_fails(&["pause", "c1"], "invalid_state");
    env.zctr_fails(&["resume", "c1"], "invalid_state");

    env.zctr(&["start", "c1"]);
    assert_eq!(env.status("c1"), "running");
    env.zctr_fails(&["start", "c1"], "invalid_state");
    env.zctr_fails(&["resume", "c1"], "invalid_state");
    env.zctr_fails(&["delete", "c1"], "invalid_state");

    // ps shows the probe with pid 1 inside.
    let ps: Value = serde_json::from_str(&env.zctr(&["ps", "c1", "--json"])).unwrap();
    let procs = ps.as_array().unwrap();
    assert_eq!(procs.len(), 1, "{ps}");
    assert_eq!(procs[0]["ns_pid"], 1);
    assert_eq!(procs[0]["cmdline"][0], probe);
    assert!(env.cgroup_dirs("c1").iter().all(|d| d.is_dir()));

    env.zctr(&["pause", "c1"]);
    assert_eq!(env.status("c1"), "paused");
    env.zctr_fails(&["pause", "c1"], "invalid_state");
    env.zctr(&["resume", "c1"]);
    assert_eq!(env.status("c1"), "running");

    let init = procs[0]["pid"].as_i64().unwrap() as i32;
    assert!(zctr_tests::procs::wait_catches(init, libc::SIGTERM, T));
    env.zctr(&["kill", "c1", "TERM"]);
    let out = env.zctr(&["wait", "c1"]);
    assert_eq!(out.trim(), "0");
    assert_eq!(env.status("c1"), "stopped");
    env.zctr_fails(&["kill", "c1"], "invalid_state");
    env.zctr_fails(&["pause", "c1"], "invalid_state");
    env.zctr_fails(&["start", "c1"], "invalid_state");

    // An exit code and the logs.
    env.zctr(&run_args("c2", &rootfs, &[probe, "print", "hello-from-c2"]));
    let out = env.try_zctr(&["wait", "c2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    let logs = env.zctr(&["logs", "c2"]);
    assert!(logs.contains("hello-from-c2"), "{logs}");
    env.zctr(&run_args("c3", &rootfs, &[probe, "exit", "7"]));
    let out = env.try_zctr(&["wait", "c3"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(env.inspect("c3")["exit"]["code"], 7);

    // kill -9 is reported as a signal.
    env.zctr(&run_args("c4", &rootfs, &[probe, "sleep", "inf"]));
    env.zctr(&["kill", "c4", "KILL"]);
    let out = env.try_zctr(&["wait", "c4"]);
    assert_eq!(out.status.code(), Some(137));
    assert_eq!(env.inspect("c4")["exit"]["signal"], 9);

    // delete removes cgroup and state; force kills a running one.
    env.zctr(&run_args("c5", &rootfs, &[probe, "sleep", "inf"]));
    env.zctr(&["delete", "--force", "c5"]);
    for id in ["c1", "c2", "c3", "c4"] {
        env.zctr(&["delete", id]);
    }
    for id in ["c1", "c2", "c3", "c4", "c5"] {
        assert!(!env.root.join(id).exists(), "{id} state dir left");
        for d in env.cgroup_dirs(id) {
            assert!(!d.exists(), "{} left", d.display());
        }
    }
    env.zctr_fails(&["inspect", "c1"], "not_found");
    let list: Value = serde_json::from_str(&env.zctr(&["list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0);
}

#[test]
fn manager_bad_input_leaves_nothing_behind() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let missing = env.tmp.join("missing").display().to_string();
    let file = env.tmp.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let file = file.display().to_string();
    let bad_meta = env.tmp.join("meta.json");
    std::fs::write(&bad_meta, b"{\"version\": 1, \"nope\": 2}").unwrap();
    let bad_meta = bad_meta.display().to_string();
    let vol = format!("{missing}:/data");

    env.zctr_fails(&["inspect", "ghost"], "not_found");
    env.zctr_fails(&["start", "ghost"], "not_found");
    env.zctr_fails(
        &["run", "x1", "--rootfs", &missing, "--", "/bin/zctr-probe"],
        "rootfs_missing",
    );
    env.zctr_fails(
        &["run", "x2", "--rootfs", &file, "--", "/bin/zctr-probe"],
        "rootfs_not_dir",
    );
    env.zctr_fails(
        &["run", "x3", "--rootfs", &rootfs, "--profile", "superuser"],
        "bad_request",
    );
    env.zctr_fails(
        &[
            "run", "x4", "--rootfs", &rootfs, "--memory", "1", "--", "/x",
        ],
        "invalid_limits",
    );
    env.zctr_fails(
        &["run", "x5", "--rootfs", &rootfs, "--pids=-5", "--", "/x"],
        "invalid_limits",
    );
    env.zctr_fails(
        &["run", "x6", "--rootfs", &rootfs, "-v", &vol, "--", "/x"],
        "source_missing",
    );
    env.zctr_fails(
        &["run", "x7", "--rootfs", &rootfs, "--meta", &bad_meta],
        "bad_meta",
    );
    env.zctr_fails(&["run", "../x", "--rootfs", &rootfs], "bad_request");
    env.zctr_fails(&["kill", "ghost", "NOPE"], "invalid_signal");
    // Setup failure inside the shim: a command that does not exist.
    let err = env.zctr_fails(
        &["run", "x8", "--rootfs", &rootfs, "--", "/no/such/binary"],
        "setup_failed",
    );
    assert!(err.contains("find executable /no/such/binary"), "{err}");

    // A body that is not JSON, straight to the socket.
    let out = run_cmd(
        Command::new("curl")
            .args(["-s", "--unix-socket"])
            .arg(&env.socket)
            .args(["-X", "POST", "-d", "{not json", "http://zctr/v1/containers"]),
        T,
    );
    if let Ok(out) = out {
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(body.contains("\"bad_request\""), "{body}");
    }

    let list: Value = serde_json::from_str(&env.zctr(&["list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    for id in ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"] {
        assert!(!env.root.join(id).exists(), "{id}: state dir left");
        for d in env.cgroup_dirs(id) {
            assert!(!d.exists(), "{id}: {} left", d.display());
        }
    }
    // Only the shims' cgroup below the parent.
    for d in env.cg.dirs() {
        let names: Vec<String> = std::fs::read_dir(&d.path)
            .unwrap()
            .flatten()
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| n == "zctr-shims"), "{names:?}");
    }
}

#[test]
fn manager_second_daemon_on_one_root_is_refused() {
    let Some(env) = Env::new() else { return };
    let out = run_cmd(
        Command::new(zctr_bin())
            .arg("--socket")
            .arg(env.tmp.join("other.sock"))
            .arg("daemon")
            .arg("--root")
            .arg(&env.root)
            .arg("--cgroup-parent")
            .arg(&env.parent)
            .arg("--shim")
            .arg(bins::shim()),
        T,
    )
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked"), "{err}");
    let mode = std::fs::metadata(&env.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn manager_restart_keeps_containers_and_reports_exits() {
    let Some(mut env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    env.zctr(&run_args(
        "keep",
        &rootfs,
        &[probe, "sleep", "inf", "--on-term", "0"],
    ));
    env.zctr(&run_args("ends", &rootfs, &[probe, "sleep", "2"]));
    env.zctr(&run_args("victim", &rootfs, &[probe, "sleep", "inf"]));
    let keep_pid = env.inspect("keep")["init"]["pid"].as_i64().unwrap();
    let victim_shim = env.inspect("victim")["shim"]["pid"].as_i64().unwrap();

    env.kill_daemon();
    // While the daemon is away: one container exits, one shim is SIGKILLed.
    std::thread::sleep(Duration::from_secs(3));
    zctr_tests::signal(victim_shim as i32, libc::SIGKILL).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        Path::new(&format!("/proc/{keep_pid}")).exists(),
        "container died with the daemon"
    );

    env.start_daemon();
    assert_eq!(env.status("keep"), "running");
    let ends = env.inspect("ends");
    assert_eq!(ends["status"], "stopped");
    assert_eq!(ends["exit"]["code"], 0);
    let victim = env.inspect("victim");
    assert_eq!(victim["status"], "stopped");
    assert_eq!(victim["stop_reason"], "shim died");
    for d in env.cgroup_dirs("victim") {
        assert!(!d.exists(), "{} left", d.display());
    }
    // The reattached shim still takes commands and reports.
    let init = env.inspect("keep")["init"]["pid"].as_i64().unwrap() as i32;
    assert!(zctr_tests::procs::wait_catches(init, libc::SIGTERM, T));
    env.zctr(&["kill", "keep", "TERM"]);
    let out = env.zctr(&["wait", "keep"]);
    assert_eq!(out.trim(), "0");

    // Reconciliation is idempotent.
    env.kill_daemon();
    env.start_daemon();
    assert_eq!(env.inspect("victim")["stop_reason"], "shim died");
    assert_eq!(env.inspect("ends")["exit"]["code"], 0);
    for id in ["keep", "ends", "victim"] {
        env.zctr(&["delete", id]);
    }
}

#[test]
fn manager_fifty_concurrent_runs() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container().to_string();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let (env, rootfs, probe) = (&env, &rootfs, &probe);
                s.spawn(move || {
                    let id = format!("p{i}");
                    // Fifty at once under the VM's emulated CPUs take
                    // minutes: the limit is for a hang, not for speed.
                    let out = env.try_zctr_within(
                        &run_args(&id, rootfs, &[probe, "sleep", "inf", "--on-term", "0"]),
                        Duration::from_secs(300),
                    );
                    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    let list: Value = serde_json::from_str(&env.zctr(&["list", "--json"])).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 50);
    let mut pids: Vec<i64> = list.iter().map(|c| c["pid"].as_i64().unwrap()).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 50);
    assert!(list.iter().all(|c| c["status"] == "running"));
    for i in 0..50 {
        env.zctr(&["delete", "--force", &format!("p{i}")]);
    }
}

fn own_bounding() -> Vec<String> {
    zctr_tests::procs::own_bounding().unwrap()
}

#[test]
fn manager_privileged_container_gets_the_runtime_s_capabilities() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    // The privileged profile asks for every capability; where the runtime
    // itself runs with fewer (a restricted sandbox), the container gets
    // exactly the runtime's.
    env.zctr(&support::run_args(
        "priv",
        &rootfs,
        &["--profile", "privileged"],
        &[probe, "report"],
    ));
    let waited = env.try_zctr(&["wait", "priv"]);
    assert_eq!(waited.status.code(), Some(0), "{waited:?}");
    let report: Value = serde_json::from_str(env.logs("priv").lines().next().unwrap()).unwrap();
    for set in ["bounding", "effective", "permitted"] {
        let mut got: Vec<String> = report["caps"][set]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        got.sort();
        assert_eq!(got, own_bounding(), "{set}");
    }
    env.zctr(&["delete", "priv"]);

    // Asking explicitly for one the runtime lacks fails, naming it.
    let all = common::capability::ALL.map(common::capability::name);
    let own = own_bounding();
    if let Some(missing) = all.iter().find(|c| !own.contains(c)) {
        let config = env.tmp.join("cap-config.json");
        let body = serde_json::json!({
            "rootfs": rootfs,
            "profile": "privileged",
            "args": [probe, "report"],
            "capabilities": {"add": [missing]},
        });
        std::fs::write(&config, body.to_string()).unwrap();
        let err = env.zctr_fails(
            &["run", "capx", "--config", config.to_str().unwrap()],
            "setup_failed",
        );
        assert!(err.contains(missing.as_str()), "{err}");
        env.zctr_fails(&["inspect", "capx"], "not_found");
    }
}

#[test]
fn manager_idmapped_volume_is_owned_by_the_containers_root() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    // Host root's, 0700: out of reach for an unmapped container root.
    let vol = env.tmp.join("private-vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(vol.join("secret"), "s\n").unwrap();
    let spec = format!("{}:/v:idmap", vol.display());
    env.zctr(&support::run_args(
        "idm",
        &rootfs,
        &["-v", &spec],
        &[probe, "report", "--read", "/v/secret", "--write", "/v/new"],
    ));
    let waited = env.try_zctr(&["wait", "idm"]);
    assert_eq!(waited.status.code(), Some(0), "{waited:?}");
    let report: Value = serde_json::from_str(env.logs("idm").lines().next().unwrap()).unwrap();
    let checks = &report["checks"];
    let find = |kind: &str, path: &str| {
        checks[kind]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["path"] == path)
            .unwrap()
            .clone()
    };
    assert_eq!(find("read", "/v/secret")["ok"], true, "{report}");
    assert_eq!(find("write", "/v/new")["ok"], true, "{report}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(vol.join("new")).unwrap().uid(), 0);
    assert_eq!(
        env.inspect("idm")["config"]["volumes"][0]["idmap"],
        true,
        "inspect shows the option"
    );
    env.zctr(&["delete", "idm"]);
    // The same volume without the option stays closed.
    let spec = format!("{}:/v", vol.display());
    env.zctr(&support::run_args(
        "plain",
        &rootfs,
        &["-v", &spec],
        &[probe, "report", "--read", "/v/secret"],
    ));
    env.try_zctr(&["wait", "plain"]);
    let report: Value = serde_json::from_str(env.logs("plain").lines().next().unwrap()).unwrap();
    let read = report["checks"]["read"][0].clone();
    assert_eq!(read["ok"], false, "{report}");
    env.zctr(&["delete", "plain"]);
}

#[test]
fn manager_full_state_disk_is_a_clear_error_and_leaves_nothing() {
    let Some(env) = Env::with_small_state_disk(512) else {
        return;
    };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    // Fill the state disk to the last block.
    let filler = env.root.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
    }
    let err = env.zctr_fails(
        &run_args("full", &rootfs, &[probe, "exit", "0"]),
        "no_space",
    );
    assert!(err.contains("no space left"), "{err}");
    assert!(!env.root.join("full").exists(), "state dir left");
    for d in env.cgroup_dirs("full") {
        assert!(!d.exists(), "{} left", d.display());
    }
    let list: Value = serde_json::from_str(&env.zctr(&["list", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    // Room again: the same request succeeds.
    std::fs::remove_file(&filler).unwrap();
    env.zctr(&run_args("full", &rootfs, &[probe, "exit", "0"]));
    let waited = env.try_zctr(&["wait", "full"]);
    assert_eq!(waited.status.code(), Some(0), "{waited:?}");
    env.zctr(&["delete", "full"]);
}

#[test]
fn manager_run_wait_rm_is_one_call_that_exits_with_the_code_and_leaves_nothing() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();

    // --wait alone: the exit code is printed and returned; the container stays.
    let out = env.try_zctr(&support::run_args(
        "w1",
        &rootfs,
        &["--wait"],
        &[probe, "exit", "7"],
    ));
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
    assert_eq!(env.status("w1"), "stopped");
    env.zctr(&["delete", "w1"]);

    // --rm: the same, and nothing is left (record, state dir, cgroup).
    let out = env.try_zctr(&support::run_args(
        "w2",
        &rootfs,
        &["--rm"],
        &[probe, "exit", "3"],
    ));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    env.zctr_fails(&["inspect", "w2"], "not_found");
    assert!(env.cgroup_dirs("w2").iter().all(|d| !d.exists()));

    // rm without wait is refused over the API, before anything is made.
    let body = format!(r#"{{"id":"w3","config":{{"rootfs":"{rootfs}"}}}}"#);
    let out = run_cmd(
        Command::new("curl")
            .args(["-s", "--unix-socket"])
            .arg(&env.socket)
            .args([
                "-X",
                "POST",
                "http://zctr/v1/containers?rm=true",
                "-d",
                &body,
            ]),
        T,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "bad_request", "{v}");
    env.zctr_fails(&["inspect", "w3"], "not_found");

    // A client that hangs up mid-run: the container still runs to its end
    // and is removed.
    let mut client = Command::new(zctr_bin())
        .arg("--socket")
        .arg(&env.socket)
        .args(support::run_args(
            "w4",
            &rootfs,
            &["--rm"],
            &[probe, "sleep", "1"],
        ))
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while env.try_zctr(&["inspect", "w4"]).status.code() != Some(0) {
        assert!(t0.elapsed() < T, "w4 never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    client.kill().unwrap();
    client.wait().unwrap();
    while env.try_zctr(&["inspect", "w4"]).status.success() {
        assert!(t0.elapsed() < T, "w4 was never removed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(env.cgroup_dirs("w4").iter().all(|d| !d.exists()));
}

/// `zctr stop`: TERM first; KILL after the grace period for an init that
/// ignores TERM (a PID 1 without a handler does); a paused container is
/// killed at once; stopping a stopped container changes nothing.
#[test]
fn stop_terms_then_kills_after_the_grace_period() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();

    env.zctr(&run_args(
        "s1",
        &rootfs,
        &[probe, "sleep", "inf", "--on-term", "3"],
    ));
    let init = env.inspect("s1")["init"]["pid"].as_i64().unwrap() as i32;
    assert!(zctr_tests::procs::wait_catches(init, libc::SIGTERM, T));
    let t0 = std::time::Instant::now();
    assert_eq!(env.zctr(&["stop", "-t", "30", "s1"]).trim(), "3");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert_eq!(env.status("s1"), "stopped");

    env.zctr(&run_args("s2", &rootfs, &[probe, "sleep", "inf"]));
    let t0 = std::time::Instant::now();
    let out = env.zctr(&["stop", "--time", "1", "s2"]);
    let took = t0.elapsed();
    assert!(out.starts_with("137"), "{out}");
    assert!(
        took >= Duration::from_secs(1),
        "KILL before the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(env.inspect("s2")["exit"]["signal"], 9);
    // Again: nothing changes, same answer.
    assert!(env.zctr(&["stop", "s2"]).starts_with("137"));

    env.zctr(&run_args(
        "s3",
        &rootfs,
        &[probe, "sleep", "inf", "--on-term", "0"],
    ));
    env.zctr(&["pause", "s3"]);
    let t0 = std::time::Instant::now();
    assert!(env.zctr(&["stop", "s3"]).starts_with("137"));
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

    env.zctr_fails(&["stop", "ghost"], "not_found");
    for id in ["s1", "s2", "s3"] {
        env.zctr(&["delete", id]);
    }
}
