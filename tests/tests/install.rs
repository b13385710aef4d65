//! `scripts/install.sh`: into a staging directory (DESTDIR), the static
//! binaries, the systemd unit and the zinit file, with the install paths
//! filled in; the installed shim and monitor run a container for a daemon,
//! and the installed client agrees with it on the build.
//!
//! Run as root after `scripts/build-static.sh`.

mod support;

use std::process::Command;
use support::{run_args, DaemonSetup, Env, T};
use zctr_tests::{bins, run_cmd, TempDir};

#[test]
fn install_stages_binaries_and_service_files_that_work() {
    let stage = TempDir::new("zctr-install").unwrap();
    let prefix = "/opt/zctr-test";
    let out = run_cmd(
        Command::new("bash")
            .arg(bins::workspace_root().join("scripts/install.sh"))
            .arg(prefix)
            .env("DESTDIR", stage.path()),
        T,
    )
    .unwrap();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    let bin = stage.path().join("opt/zctr-test/bin");
    for b in ["zctr", "zctr-shim", "zctr-shim-monitor"] {
        let p = bin.join(b);
        assert!(
            bins::is_static_elf(&p).unwrap(),
            "{} is not a static executable",
            p.display()
        );
    }
    let unit = std::fs::read_to_string(
        stage
            .path()
            .join("opt/zctr-test/lib/systemd/system/zctr.service"),
    )
    .unwrap();
    assert!(
        unit.contains("ExecStart=/opt/zctr-test/bin/zctr daemon"),
        "{unit}"
    );
    assert!(unit.contains("KillMode=process"), "{unit}");
    assert!(!unit.contains('@'), "unfilled placeholder:\n{unit}");
    let zinit = std::fs::read_to_string(stage.path().join("etc/zinit/zctr.yaml")).unwrap();
    assert!(
        zinit.contains("exec: /opt/zctr-test/bin/zctr daemon"),
        "{zinit}"
    );
    assert!(!zinit.contains('@'), "{zinit}");
    assert!(stage
        .path()
        .join("opt/zctr-test/share/doc/zctr/api.md")
        .is_file());

    // The installed shim (and the monitor beside it) serve a daemon.
    let shim = bin.join("zctr-shim");
    let Some(env) = Env::with_daemon(DaemonSetup {
        wrapper: Vec::new(),
        env: vec![("ZCTR_TEST_SHIM".into(), shim.to_str().unwrap().into())],
    }) else {
        return;
    };
    let rootfs = env.rootfs_arg();
    let probe = env.rootfs.probe_in_container();
    env.zctr(&run_args("inst", &rootfs, &[], &[probe, "exit", "4"]));
    let out = env.try_zctr(&["wait", "inst"]);
    assert_eq!(out.status.code(), Some(4), "{}", zctr_tests::describe(&out));
    assert_eq!(
        env.inspect("inst")["shim_command"][0],
        shim.to_str().unwrap()
    );
    env.zctr(&["delete", "inst"]);
    let installed = run_cmd(
        Command::new(bin.join("zctr"))
            .arg("--socket")
            .arg(&env.socket)
            .arg("version"),
        T,
    )
    .unwrap();
    assert!(
        installed.status.success(),
        "{}",
        zctr_tests::describe(&installed)
    );
    assert!(
        String::from_utf8_lossy(&installed.stdout).contains(&format!("({})", shim.display())),
        "{}",
        zctr_tests::describe(&installed)
    );
}
