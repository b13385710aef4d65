//! zctr-oci's command line as runc's callers use it: run's exit code,
//! kill (names, numbers, --all), pause/resume, ps, list, delete --force,
//! unknown ids, features, spec, --log JSON lines.

mod oci_support;

use oci_support::{exists, Oci, T};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;
use zctr_tests::{bins, run_cmd};

#[test]
fn the_default_spec_runs_unmodified_but_for_its_command() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&["sh", "-c", "echo hello from $(hostname); exit 3"]);
    let id = o.id();
    let out = run_cmd(o.cmd().args(["run", "--bundle"]).arg(&o.bundle).arg(&id), T).unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", zctr_tests::describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from zctr\n");
    // run deletes what it created.
    assert!(!exists(&o.state_dir(&id)));
    for d in o.cgroup_dirs(&id) {
        assert!(!exists(&d), "{} left behind", d.display());
    }
    // Killed by a signal: 128+N (from outside: pid 1 of a pid namespace
    // ignores a SIGKILL from inside).
    o.spec["process"]["args"] = serde_json::json!(["sleep", "1000"]);
    let id = o.id();
    let run = o
        .cmd()
        .args(["run", "-b"])
        .arg(&o.bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    o.wait_status(&id, "running");
    o.ok(&["kill", &id, "9"]);
    let st = oci_support::wait_timeout(run, T);
    assert_eq!(st.code(), Some(137));
    assert!(!exists(&o.state_dir(&id)));
}

#[test]
fn spec_refuses_to_overwrite_and_features_is_json() {
    let tmp = zctr_tests::TempDir::new("zctr-oci-spec").unwrap();
    let ok = run_cmd(
        Command::new(bins::oci())
            .args(["spec", "-b"])
            .arg(tmp.path()),
        T,
    )
    .unwrap();
    assert!(ok.status.success(), "{}", zctr_tests::describe(&ok));
    let spec: Value =
        serde_json::from_slice(&std::fs::read(tmp.join("config.json")).unwrap()).unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    assert_eq!(spec["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(spec["process"]["terminal"], true);
    let again = run_cmd(
        Command::new(bins::oci())
            .args(["spec", "-b"])
            .arg(tmp.path()),
        T,
    )
    .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let f = run_cmd(Command::new(bins::oci()).arg("features"), T).unwrap();
    assert!(f.status.success());
    let v: Value = serde_json::from_slice(&f.stdout).unwrap();
    assert!(v["ociVersionMax"].as_str().unwrap().starts_with("1."));
    assert_eq!(v["linux"]["cgroup"]["systemd"], false);
    assert!(v["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&"pid".into()));
    assert!(v["linux"]["seccomp"]["enabled"].as_bool().unwrap());
}

#[test]
fn kill_pause_resume_ps_list_and_delete_force() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&["sh", "-c", "sleep 1000 & sleep 1000 & trap '' TERM; wait"]);
    let id = o.id();
    o.create_ok(&id, &[]);
    o.ok(&["start", &id]);
    let pid = o.state(&id)["pid"].as_i64().unwrap();
    // ps --format json: the init and its two children.
    let ok = zctr_tests::wait_until(Duration::from_secs(5), || {
        let v: Value =
            serde_json::from_slice(&o.ok(&["ps", "--format", "json", &id]).stdout).unwrap();
        v.as_array().map(|a| a.len()) == Some(3)
    });
    assert!(ok);
    let v: Value = serde_json::from_slice(&o.ok(&["ps", "-f", "json", &id]).stdout).unwrap();
    assert!(v.as_array().unwrap().contains(&pid.into()));
    let table = String::from_utf8(o.ok(&["ps", &id]).stdout).unwrap();
    assert!(table.starts_with("UID") || table.contains("PID"), "{table}");
    assert!(table.contains("sleep 1000"), "{table}");

    // list: json and quiet.
    let l: Value = serde_json::from_slice(&o.ok(&["list", "--format", "json"]).stdout).unwrap();
    let me = l
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap();
    assert_eq!(me["status"], "running");
    assert_eq!(me["pid"], pid);
    let q = String::from_utf8(o.ok(&["list", "-q"]).stdout).unwrap();
    assert!(q.lines().any(|l| l == id));

    o.ok(&["pause", &id]);
    assert_eq!(o.status(&id), "paused");
    o.fails(&["pause", &id]);
    o.ok(&["resume", &id]);
    assert_eq!(o.status(&id), "running");

    // TERM is trapped (ignored) by the init: still running. A number works too.
    o.ok(&["kill", &id, "TERM"]);
    o.ok(&["kill", &id, "15"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(o.status(&id), "running");
    let out = o.fails(&["delete", &id]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not stopped"));

    // kill --all KILL reaches every process.
    o.ok(&["kill", "--all", &id, "KILL"]);
    o.wait_status(&id, "stopped");
    let gone = zctr_tests::wait_until(Duration::from_secs(5), || {
        let v: Value = serde_json::from_slice(&o.ok(&["ps", "-f", "json", &id]).stdout).unwrap();
        v.as_array().is_some_and(|a| a.is_empty())
    });
    assert!(gone);
    // A stopped container: kill without --all says so.
    let out = o.fails(&["kill", &id, "KILL"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    o.ok(&["delete", &id]);

    // delete --force of a running container.
    let id = o.id();
    o.create_ok(&id, &[]);
    o.ok(&["start", &id]);
    o.ok(&["delete", "--force", &id]);
    assert!(!exists(&o.state_dir(&id)));
    for d in o.cgroup_dirs(&id) {
        assert!(!exists(&d), "{} left behind", d.display());
    }
}

#[test]
fn unknown_ids_and_usage_errors_exit_1_with_runcs_wording_and_json_logs() {
    let tmp = zctr_tests::TempDir::new("zctr-oci-cli").unwrap();
    let log = tmp.join("log.json");
    let out = run_cmd(
        Command::new(bins::oci())
            .arg("--root")
            .arg(tmp.join("root"))
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "delete", "nosuch"]),
        T,
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("container does not exist"));
    let text = std::fs::read_to_string(&log).unwrap();
    let line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert_eq!(line["msg"], "container does not exist");
    assert!(line["time"].as_str().unwrap().ends_with('Z'));
    for args in [
        &["state", "nosuch"][..],
        &["start", "nosuch"],
        &["kill", "nosuch"],
        &["create"],
        &["kill", "x", "NOSIG"],
        &["bogus"],
        &["create", "--bogus", "x"],
    ] {
        let out = run_cmd(
            Command::new(bins::oci())
                .arg("--root")
                .arg(tmp.join("root"))
                .args(args),
            T,
        )
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            zctr_tests::describe(&out)
        );
        assert!(!out.stderr.is_empty());
    }
    let out = run_cmd(
        Command::new(bins::oci())
            .arg("--root")
            .arg(tmp.join("root"))
            .args(["--systemd-cgroup", "create", "x"]),
        T,
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--systemd-cgroup"));
    assert!(!tmp.join("root/x").exists());
}

#[test]
fn exec_runs_in_the_container_and_returns_its_code() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&["sleep", "1000"]);
    let id = o.id();
    o.create_ok(&id, &[]);
    o.ok(&["start", &id]);
    let out = run_cmd(
        o.cmd().args([
            "exec",
            "-e",
            "FOO=bar",
            "-u",
            "1000:1000",
            &id,
            "sh",
            "-c",
            "echo $FOO $(id -u):$(id -g) $(hostname); exit 7",
        ]),
        T,
    )
    .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", zctr_tests::describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bar 1000:1000 zctr\n");
    // Detached, with a pid file: the process runs in the container's cgroup.
    let pid_file = o.tmp.join("exec.pid");
    let out = run_cmd(
        o.cmd()
            .args(["exec", "--detach", "--pid-file"])
            .arg(&pid_file)
            .args([&id, "sleep", "1000"]),
        T,
    )
    .unwrap();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.ok(&["ps", "-f", "json", &id]).stdout).unwrap();
    assert!(v.as_array().unwrap().contains(&pid.into()), "{v}");
    o.ok(&["kill", &id, "KILL"]);
    o.wait_status(&id, "stopped");
    let out = o.fails(&["exec", &id, "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
    o.ok(&["delete", &id]);
}

/// The value of the first of `files` found in the container's cgroup dirs.
fn cgroup_value(o: &Oci, id: &str, files: &[&str]) -> Option<String> {
    o.cgroup_dirs(id).iter().find_map(|d| {
        files
            .iter()
            .find_map(|f| std::fs::read_to_string(d.join(f)).ok())
            .map(|s| s.trim().to_string())
    })
}

#[test]
fn update_changes_limits_live_from_flags_and_from_stdin() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&["sleep", "1000"]);
    let id = o.id();
    o.create_ok(&id, &[]);
    o.ok(&["start", &id]);
    let mem = ["memory.limit_in_bytes", "memory.max"];
    if cgroup_value(&o, &id, &mem).is_none() || cgroup_value(&o, &id, &["pids.max"]).is_none() {
        zctr_tests::skip::skip("no memory or pids controller for the test cgroup");
        return;
    }
    o.ok(&["update", "--memory", "100m", "--pids-limit=50", &id]);
    assert_eq!(cgroup_value(&o, &id, &mem).as_deref(), Some("104857600"));
    assert_eq!(cgroup_value(&o, &id, &["pids.max"]).as_deref(), Some("50"));
    let mut child = o
        .cmd()
        .args(["update", "-r", "-", &id])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"memory":{"limit":209715200}}"#)
        .unwrap();
    assert!(oci_support::wait_timeout(child, T).success());
    assert_eq!(cgroup_value(&o, &id, &mem).as_deref(), Some("209715200"));
    // The saved config follows.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(o.state_dir(&id).join("state.json")).unwrap())
            .unwrap();
    assert_eq!(
        saved["config"]["linux"]["resources"]["memory"]["limit"],
        209715200
    );
    assert_eq!(saved["config"]["linux"]["resources"]["pids"]["limit"], 50);
    o.fails(&["update", "--memory", "lots", &id]);
    o.ok(&["delete", "--force", &id]);
}
