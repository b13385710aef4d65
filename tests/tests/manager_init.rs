//! `zctr run --init`: the container's PID 1 is the shim's tiny init (no
//! binary in the container), which forwards signals to the process, reaps
//! orphaned zombies and exits with the process's code (docs/shim.md,
//! "--init"). A real daemon and real containers (see `support`).
//!
//! Not covered here: the refusal without a new PID namespace. The manager
//! always gives a container a PID namespace of its own (no host-pid
//! option), so the refusal is tested at the shim (`shim_init.rs`).

mod support;

use std::time::{Duration, Instant};
use support::{run_args, Env, T};
use zctr_tests::wait_until;

/// linux/capability.h.
const CAP_KILL: u32 = 5;

/// The host pids of the processes whose parent is `ppid`, with their state.
fn children_of(ppid: i64) -> Vec<(i64, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(st) = common::state::parse_proc_stat(&stat) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 1..];
        let parent: i64 = rest.split_whitespace().nth(1).unwrap().parse().unwrap();
        if parent == ppid {
            out.push((pid, st.state));
        }
    }
    out
}

fn init_pid(env: &Env, id: &str) -> i64 {
    env.inspect(id)["init"]["pid"].as_i64().unwrap()
}

/// One `Key: value` line of /proc/PID/status.
fn status_field(pid: i64, key: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// PID 1 is the init, not the process: `/proc/1/comm` says so, the shell
/// is PID 2; the init is out of the container's reach (not dumpable: its
/// exe, environ and fds cannot be opened) and holds no fd and no capability
/// but CAP_KILL; the process leads its own process group in the init's
/// session.
#[test]
fn the_init_is_pid_1_and_out_of_reach() {
    let Some(env) = Env::new() else { return };
    if zctr_tests::skip::or_skip(env.rootfs.with_busybox()).is_none() {
        return;
    }
    let rootfs = env.rootfs_arg();
    let script = "echo comm=$(cat /proc/1/comm); echo cmdline=$(cat /proc/1/cmdline); \
        echo self=$$; \
        cat /proc/1/exe >/dev/null; echo exe=$?; \
        cat /proc/1/environ >/dev/null; echo environ=$?; \
        ls /proc/1/fd; echo fd=$?; \
        echo ready; exec sleep 1000";
    env.zctr(&run_args(
        "pid1",
        &rootfs,
        &["--init"],
        &["/bin/sh", "-c", script],
    ));
    assert!(
        wait_until(T, || env.logs("pid1").contains("ready")),
        "{}",
        env.logs("pid1")
    );
    let logs = env.logs("pid1");
    for want in [
        "comm=zctr-init",
        "cmdline=zctr-init",
        "self=2",
        "exe=1",
        "environ=1",
        "fd=1",
    ] {
        assert!(logs.lines().any(|l| l == want), "no {want:?} in:\n{logs}");
    }
    assert!(
        logs.contains("/proc/1/exe") && logs.contains("Permission denied"),
        "{logs}"
    );

    // From the host: the init has no fd open, no capability but KILL.
    let init = init_pid(&env, "pid1");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{init}/comm")).unwrap(),
        "zctr-init\n"
    );
    // Its command line (readable by anyone) no longer shows the shim's,
    // with its host paths.
    let cmdline = std::fs::read(format!("/proc/{init}/cmdline")).unwrap();
    assert!(cmdline.starts_with(b"zctr-init\0"), "{cmdline:?}");
    assert!(cmdline[9..].iter().all(|&b| b == 0), "{cmdline:?}");
    let fds: Vec<_> = std::fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(fds.is_empty(), "the init holds fds {fds:?}");
    for key in ["CapEff", "CapPrm"] {
        let caps = u64::from_str_radix(&status_field(init, key), 16).unwrap();
        assert_eq!(caps & !(1 << CAP_KILL), 0, "{key} {caps:#x}");
    }
    let children = children_of(init);
    assert_eq!(children.len(), 1, "{children:?}");
    let (sleep, _) = children[0];
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{sleep}/comm")).unwrap(),
        "sleep\n"
    );
    assert_eq!(support::pgrp_and_session(sleep), (sleep, init));
    // Under the same seccomp filter and no_new_privs as the process.
    assert_eq!(status_field(init, "Seccomp"), "2");
    assert_eq!(status_field(sleep, "Seccomp"), "2");
    assert_eq!(
        status_field(init, "NoNewPrivs"),
        status_field(sleep, "NoNewPrivs")
    );
    // The process's mask is back to empty (the init blocks everything).
    assert_eq!(
        u64::from_str_radix(&status_field(sleep, "SigBlk"), 16).unwrap(),
        0
    );
    // `zctr ps` shows both, the init as PID 1 with its new command line.
    let ps: serde_json::Value = serde_json::from_str(&env.zctr(&["ps", "pid1", "--json"])).unwrap();
    let procs = ps.as_array().unwrap();
    assert_eq!(procs.len(), 2, "{ps}");
    let by_ns_pid = |n: i64| procs.iter().find(|p| p["ns_pid"] == n).unwrap();
    assert_eq!(by_ns_pid(1)["cmdline"][0], "zctr-init", "{ps}");
    assert_eq!(by_ns_pid(2)["cmdline"][0], "sleep", "{ps}");
    env.zctr(&["delete", "--force", "pid1"]);
}

/// The process's exit code is the container's; a signal sent to the
/// container (`stop`'s TERM, `kill`) reaches the process, which, not being
/// PID 1, dies of it at once: 128+N.
#[test]
fn exit_codes_and_signals_go_through_the_init() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();

    env.zctr(&run_args(
        "code",
        &rootfs,
        &["--init"],
        &[probe, "exit", "3"],
    ));
    let out = env.try_zctr(&["wait", "code"]);
    assert_eq!(out.status.code(), Some(3), "{}", env.logs("code"));
    assert_eq!(env.inspect("code")["exit"]["code"], 3);

    // Without --init the probe, as PID 1, ignores TERM and `stop` waits
    // out the grace period (manager_lifecycle.rs); with it, TERM goes to
    // the probe, PID 2.
    env.zctr(&run_args(
        "term",
        &rootfs,
        &["--init"],
        &[probe, "sleep", "inf"],
    ));
    let t0 = Instant::now();
    let out = env.zctr(&["stop", "-t", "30", "term"]);
    let took = t0.elapsed();
    assert_eq!(out.trim(), "143", "{out}");
    assert!(took < Duration::from_secs(20), "stop took {took:?}");
    assert_eq!(env.inspect("term")["exit"]["code"], 143);

    env.zctr(&run_args(
        "usr1",
        &rootfs,
        &["--init"],
        &[probe, "sleep", "inf"],
    ));
    env.zctr(&["kill", "usr1", "USR1"]);
    let out = env.try_zctr(&["wait", "usr1"]);
    assert_eq!(out.status.code(), Some(128 + libc::SIGUSR1));

    // Signal 34, which musl's sigfillset leaves out: forwarded too.
    env.zctr(&run_args(
        "rt",
        &rootfs,
        &["--init"],
        &[probe, "sleep", "inf"],
    ));
    env.zctr(&["kill", "rt", "34"]);
    let out = env.try_zctr(&["wait", "rt"]);
    assert_eq!(out.status.code(), Some(128 + 34));
    for id in ["code", "term", "usr1", "rt"] {
        env.zctr(&["delete", id]);
    }
}

/// Orphans reparented to PID 1 are reaped once they exit: the probe forks
/// children that fork grandchildren (reparented when their parent exits)
/// and never reaps. Without --init the probe is PID 1 and the zombies stay
/// (the check can fail); with it, none is left.
#[test]
fn orphaned_zombies_are_reaped() {
    let Some(env) = Env::new() else { return };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    let orphans = [probe, "orphans", "3", "2", "--hold", "600", "--no-reap"];
    let spawned = |id: &str| wait_until(T, || env.logs(id).contains("\"spawned\""));

    // Control: the probe as PID 1 keeps its zombies.
    env.zctr(&run_args("plain", &rootfs, &[], &orphans));
    assert!(spawned("plain"), "{}", env.logs("plain"));
    let pid1 = init_pid(&env, "plain");
    assert!(
        wait_until(T, || children_of(pid1)
            .iter()
            .filter(|(_, s)| *s == 'Z')
            .count()
            == 3),
        "{:?}",
        children_of(pid1)
    );
    env.zctr(&["delete", "--force", "plain"]);

    env.zctr(&run_args("reaped", &rootfs, &["--init"], &orphans));
    assert!(spawned("reaped"), "{}", env.logs("reaped"));
    let init = init_pid(&env, "reaped");
    let logs = env.logs("reaped");
    let line = logs.lines().find(|l| l.contains("\"spawned\"")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["grandchildren"].as_array().unwrap().len(), 3, "{line}");
    // The grandchildren (sleeping 2 s) went to the init, then ended and
    // were reaped: only the probe is left below it.
    assert!(
        wait_until(T, || children_of(init).len() == 1),
        "{:?}",
        children_of(init)
    );
    let c = children_of(init);
    assert_ne!(c[0].1, 'Z', "{c:?}");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{}/comm", c[0].0)).unwrap(),
        "zctr-probe\n"
    );
    env.zctr(&["delete", "--force", "reaped"]);
}
