//! End-to-end tests of what the manager's cgroups do to real containers:
//! pause freezes and resume thaws, the memory limit OOM-kills (and is reported
//! as such), the pids limit contains a fork bomb, and `ps` lists the right
//! processes. A real `zctr daemon` (see `support`), real shims, containers
//! running the probe. Run as root after `scripts/build-static.sh`.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;
use support::{read_counter, run_args, Env, T};
use zctr_tests::{run_cmd, wait_until};

#[test]
fn manager_pause_freezes_and_resume_thaws() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    let vol = env.volume_dir("vol");
    let volume = format!("{}:/data", vol.display());
    let count = vol.join("count");

    env.zctr(&run_args(
        "ctr",
        &rootfs,
        &["-v", &volume],
        &[probe, "counter", "/data/count"],
    ));
    assert!(
        wait_until(Duration::from_secs(10), || read_counter(&count)
            .is_some_and(|n| n >= 3)),
        "the counter does not count: {:?}\nlogs: {}",
        read_counter(&count),
        env.logs("ctr")
    );

    env.zctr(&["pause", "ctr"]);
    assert_eq!(env.status("ctr"), "paused");
    let frozen_at = read_counter(&count).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        read_counter(&count).unwrap(),
        frozen_at,
        "the counter advanced while paused"
    );
    // Still frozen a while later, and ps still sees the process.
    let ps: Value = serde_json::from_str(&env.zctr(&["ps", "ctr", "--json"])).unwrap();
    assert_eq!(ps.as_array().unwrap().len(), 1, "{ps}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read_counter(&count).unwrap(), frozen_at);

    env.zctr(&["resume", "ctr"]);
    assert_eq!(env.status("ctr"), "running");
    assert!(
        wait_until(Duration::from_secs(5), || read_counter(&count)
            .is_some_and(|n| n >= frozen_at + 3)),
        "the counter did not advance after resume: {:?} (frozen at {frozen_at})",
        read_counter(&count)
    );

    // A paused container can be killed (KILL also thaws it) and deleted.
    env.zctr(&["pause", "ctr"]);
    env.zctr(&["kill", "ctr", "KILL"]);
    let out = env.try_zctr(&["wait", "ctr"]);
    assert_eq!(out.status.code(), Some(137), "{out:?}");
    env.zctr(&["delete", "ctr"]);
    for d in env.cgroup_dirs("ctr") {
        assert!(!d.exists(), "{} left", d.display());
    }
}

#[test]
fn manager_memory_limit_oom_kills_and_reports_it() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    let limit = 32u64 << 20;
    let limit_arg = limit.to_string();

    env.zctr(&run_args(
        "hog",
        &rootfs,
        &["--memory", &limit_arg],
        &[probe, "alloc", "128", "--touch"],
    ));
    let out = env.try_zctr(&["wait", "hog"]);
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        out.status.code(),
        Some(137),
        "wait printed {printed:?}; logs: {}",
        env.logs("hog")
    );
    assert_eq!(printed, "137");

    let insp = env.inspect("hog");
    assert_eq!(insp["status"], "stopped");
    assert_eq!(insp["exit"]["signal"], 9, "{insp}");
    assert_eq!(insp["exit"]["oom_killed"], true, "{insp}");
    assert_eq!(insp["exit"]["exit_code"], 137);
    assert!(insp["stop_reason"].is_null(), "{insp}");
    assert_eq!(insp["config"]["limits"]["memory_bytes"], limit);

    // The wait API answers the same, with the OOM flag.
    let wait = run_cmd(
        Command::new("curl")
            .args(["-sS", "--unix-socket"])
            .arg(&env.socket)
            .args(["-X", "POST", "http://zctr/v1/containers/hog/wait"]),
        T,
    );
    if let Ok(out) = wait {
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["exit"]["oom_killed"], true, "{v}");
            assert_eq!(v["exit"]["signal"], 9, "{v}");
        }
    }

    // It got somewhere, but not past the limit.
    let logs = env.logs("hog");
    assert!(logs.contains("allocated 1 MiB"), "{logs}");
    assert!(!logs.contains("done 128 MiB"), "{logs}");
    let most = logs
        .lines()
        .filter_map(|l| l.strip_prefix("allocated ")?.strip_suffix(" MiB"))
        .filter_map(|n| n.parse::<u64>().ok())
        .max()
        .unwrap();
    assert!(most <= 32, "allocated {most} MiB under a 32 MiB limit");

    env.zctr(&["delete", "hog"]);
    for d in env.cgroup_dirs("hog") {
        assert!(!d.exists(), "{} left", d.display());
    }
}

#[test]
fn manager_pids_limit_contains_a_fork_bomb() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();

    env.zctr(&run_args(
        "bomb",
        &rootfs,
        &["--pids", "20"],
        &[probe, "forkbomb", "500", "--hold", "3"],
    ));
    // While it holds its children: the limit is in place and holds.
    let pids_dir = env.cgroup_dir_for("bomb", "pids");
    assert!(
        wait_until(Duration::from_secs(10), || env
            .logs("bomb")
            .contains("\"succeeded\"")),
        "no forkbomb report: {}",
        env.logs("bomb")
    );
    let max = std::fs::read_to_string(pids_dir.join("pids.max")).unwrap();
    assert_eq!(max.trim(), "20");
    let current: u64 = std::fs::read_to_string(pids_dir.join("pids.current"))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(0);
    assert!(current <= 20, "pids.current {current}");
    let inspect_pids = env.inspect("bomb")["pids"].as_array().unwrap().len();
    assert!(inspect_pids <= 20, "{inspect_pids} pids in the container");

    // The host can still fork.
    let out = run_cmd(&mut Command::new("true"), T).unwrap();
    assert!(out.status.success());

    let out = env.try_zctr(&["wait", "bomb"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let logs = env.logs("bomb");
    let report: Value = logs
        .lines()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("no JSON report in {logs}"));
    assert_eq!(report["requested"], 500, "{report}");
    let ok = report["succeeded"].as_u64().unwrap();
    assert!(ok < 20, "{ok} forks succeeded under pids=20: {report}");
    assert!(ok > 0, "no fork succeeded at all: {report}");
    assert_eq!(report["errno"], libc::EAGAIN, "{report}");
    assert_eq!(report["error"], "EAGAIN", "{report}");

    env.zctr(&["delete", "bomb"]);
    for d in env.cgroup_dirs("bomb") {
        assert!(!d.exists(), "{} left", d.display());
    }
}

#[test]
fn manager_ps_lists_the_containers_processes() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();

    // The init plus three waiting children.
    env.zctr(&run_args(
        "family",
        &rootfs,
        &[],
        &[probe, "forkbomb", "3", "--hold", "120"],
    ));
    let ps_json = || -> Vec<Value> {
        let v: Value = serde_json::from_str(&env.zctr(&["ps", "family", "--json"])).unwrap();
        v.as_array().unwrap().clone()
    };
    assert!(
        wait_until(Duration::from_secs(10), || ps_json().len() == 4),
        "{:?}",
        ps_json()
    );
    let procs = ps_json();
    let insp = env.inspect("family");
    let init_pid = insp["init"]["pid"].as_i64().unwrap();
    let shim_pid = insp["shim"]["pid"].as_i64().unwrap();

    // The shim's own view of its init (status.json) agrees with the manager.
    let state_dir = insp["state_dir"].as_str().unwrap();
    let status: Value =
        serde_json::from_slice(&std::fs::read(format!("{state_dir}/status.json")).unwrap())
            .unwrap();
    assert_eq!(status["init"]["pid"].as_i64(), Some(init_pid), "{status}");
    assert_eq!(status["shim"]["pid"].as_i64(), Some(shim_pid), "{status}");

    // Pid 1 inside is the init on the host; the others are 2..=4 inside.
    let inits: Vec<&Value> = procs.iter().filter(|p| p["ns_pid"] == 1).collect();
    assert_eq!(inits.len(), 1, "{procs:?}");
    assert_eq!(inits[0]["pid"].as_i64(), Some(init_pid), "{procs:?}");
    let ns_pids: BTreeSet<i64> = procs
        .iter()
        .map(|p| p["ns_pid"].as_i64().unwrap())
        .collect();
    assert_eq!(ns_pids, BTreeSet::from([1, 2, 3, 4]), "{procs:?}");

    // Exactly the processes of the container's cgroup; not the shim.
    let host_pids: BTreeSet<i64> = procs.iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    assert!(!host_pids.contains(&shim_pid));
    for d in env.cgroup_dirs("family") {
        let in_cgroup: BTreeSet<i64> = std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert_eq!(in_cgroup, host_pids, "{}", d.display());
    }
    let insp_pids: BTreeSet<i64> = insp["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect();
    assert_eq!(insp_pids, host_pids);

    for p in &procs {
        assert_eq!(p["cmdline"][0], probe, "{p}");
        assert_eq!(p["cmdline"][1], "forkbomb", "{p}");
        // The unprivileged profile: root inside, mapped to an unprivileged uid outside.
        assert_eq!(p["ns_uid"], 0, "{p}");
        assert_eq!(p["user"], "root", "{p}");
        assert_ne!(p["uid"], 0, "{p}");
        assert!(p["state"].as_str().is_some_and(|s| !s.is_empty()), "{p}");
    }

    // The table form names the same pids.
    let table = env.zctr(&["ps", "family"]);
    assert!(table.lines().next().unwrap().contains("NSPID"), "{table}");
    assert_eq!(table.lines().count(), 5, "{table}");
    for pid in &host_pids {
        assert!(table.contains(&pid.to_string()), "{table}");
    }

    env.zctr(&["delete", "--force", "family"]);
    for pid in host_pids {
        assert!(
            wait_until(Duration::from_secs(5), || !support::alive(pid)),
            "{pid} survived delete"
        );
    }
}
