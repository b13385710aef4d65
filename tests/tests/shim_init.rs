//! `zctr-shim run --init` (docs/shim.md, "--init"): the process is set up
//! exactly as without the init, only as PID 2 below it; the exit code goes
//! through; refused without a new PID namespace. Run as root after
//! `scripts/build-static.sh`.

mod shim_support;

use serde_json::Value;
use shim_support::*;
use std::process::{Command, Output};
use zctr_tests::{run_cmd, wait_until};

/// `zctr-shim run --init --bundle B` in the foreground (config written first).
fn run_init(c: &Ctr) -> Output {
    c.write_spec();
    let mut cmd = Command::new(&c.shim_bin);
    cmd.args(["run", "--init", "--id", &c.id])
        .arg("--bundle")
        .arg(&c.bundle);
    if let Some(dir) = &c.overlay {
        cmd.arg("--rootfs-overlay").arg(dir);
    }
    run_cmd(&mut cmd, T).unwrap()
}

fn report_of(out: &Output) -> Value {
    assert!(out.status.success(), "{}", zctr_tests::describe(out));
    parse_report(&out.stdout)
        .unwrap_or_else(|| panic!("no JSON report\n{}", zctr_tests::describe(out)))
}

/// The probe's report with and without --init: the same ids, groups,
/// capabilities, no_new_privs, seccomp mode, cwd, args, env, fds and
/// limits; only its pid (2, child of the init, PID 1) differs.
#[test]
fn the_process_is_set_up_as_without_init() {
    if !root_or_skip("the_process_is_set_up_as_without_init") {
        return;
    }
    let c = Ctr::unprivileged(&[]);
    let plain = c.report();
    assert!(wait_until(T, || c.no_processes()));
    let with_init = report_of(&run_init(&c));
    assert!(wait_until(T, || c.no_processes()));
    assert_eq!((&plain["pid"], &plain["ppid"]), (&1.into(), &0.into()));
    assert_eq!(
        (&with_init["pid"], &with_init["ppid"]),
        (&2.into(), &1.into())
    );
    for field in [
        "uid",
        "gid",
        "groups",
        "uid_map",
        "gid_map",
        "caps",
        "no_new_privs",
        "seccomp",
        "hostname",
        "cwd",
        "args",
        "env",
        "rlimit_nofile",
        "oom_score_adj",
        "errors",
    ] {
        assert_eq!(plain[field], with_init[field], "{field}");
    }
    assert_eq!(plain["seccomp"], 2, "the profile has a filter");
    // The same fds (the pipes are new ones: their inodes differ).
    let fds = |r: &Value| -> Vec<(i64, String)> {
        r["fds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let target = f["target"].as_str().unwrap();
                let kind = target.split(":[").next().unwrap().to_string();
                (f["fd"].as_i64().unwrap(), kind)
            })
            .collect()
    };
    assert_eq!(fds(&plain), fds(&with_init));
    assert_eq!(fds(&plain).len(), 3, "{}", plain["fds"]);
}

#[test]
fn the_exit_code_goes_through_the_init() {
    if !root_or_skip("the_exit_code_goes_through_the_init") {
        return;
    }
    let c = Ctr::unprivileged(&[PROBE, "exit", "3"]);
    let out = run_init(&c);
    assert_eq!(out.status.code(), Some(3), "{}", zctr_tests::describe(&out));
    assert!(wait_until(T, || c.no_processes()));
}

/// Without a PID namespace of its own the init would not be PID 1: refused
/// before anything is made. The same config runs without --init.
#[test]
fn init_is_refused_without_a_new_pid_namespace() {
    if !root_or_skip("init_is_refused_without_a_new_pid_namespace") {
        return;
    }
    // Privileged: without a PID namespace of its own, a user namespace
    // could not mount /proc.
    let mut c = Ctr::new(
        common::config::Profile::Privileged,
        common::config::NetworkMode::Private,
        &[PROBE, "exit", "0"],
    );
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != "pid");
    let out = run_init(&c);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", zctr_tests::describe(&out));
    assert!(
        err.contains("--init needs a new PID namespace"),
        "{}",
        zctr_tests::describe(&out)
    );
    assert!(c.no_processes());
    let out = c.run();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
}

/// `zctr-shim exec` into a container whose PID 1 is the init: the new
/// process joins the init's namespaces (PID namespace included) and its
/// exit code comes back; the container's process goes on.
#[test]
fn exec_reaches_a_container_with_an_init() {
    if !root_or_skip("exec_reaches_a_container_with_an_init") {
        return;
    }
    let mut c = Ctr::unprivileged(&[PROBE, "sleep", "inf"]);
    // `create` through a wrapper that adds --init (Ctr starts `create`
    // itself); every other command goes through unchanged.
    let wrapper = c.tmp.join("shim-with-init");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$1\" in create) shift; exec {} create --init \"$@\";; esac\nexec {} \"$@\"\n",
            c.shim_bin.display(),
            c.shim_bin.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    c.shim_bin = wrapper;
    c.create_ok();
    c.ctl_ok("start", &[]);
    c.wait_status("running", |s| s["state"] == "running");
    let init = c.init_pid();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{init}/comm")).unwrap(),
        "zctr-init\n"
    );
    let out = run_cmd(
        Command::new(&c.shim_bin)
            .args(["exec", "--state-dir"])
            .arg(&c.state)
            .arg("--bundle")
            .arg(&c.bundle)
            .args(["--", PROBE, "report"]),
        T,
    )
    .unwrap();
    let r = report_of(&out);
    let ns = |n: &str| {
        std::fs::read_link(format!("/proc/{init}/ns/{n}"))
            .unwrap()
            .display()
            .to_string()
    };
    for n in ["pid", "mnt", "user", "uts", "ipc", "net"] {
        assert_eq!(r["namespaces"][n].as_str().unwrap(), ns(n), "{n}");
    }
    assert!(r["pid"].as_i64().unwrap() > 2, "{}", r["pid"]);
    let out = run_cmd(
        Command::new(&c.shim_bin)
            .args(["exec", "--state-dir"])
            .arg(&c.state)
            .arg("--bundle")
            .arg(&c.bundle)
            .args(["--", PROBE, "exit", "5"]),
        T,
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", zctr_tests::describe(&out));
    assert_eq!(c.status().unwrap()["state"], "running");
    c.ctl_ok("kill", &["TERM"]);
    let st = c.wait_status("stopped", |s| s["state"] == "stopped");
    assert_eq!(st["exit"]["code"], 143, "{st}");
}
