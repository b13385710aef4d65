//! End-to-end: a monitor whose state directory was replaced (`delete x;
//! run x` made a new one at the same path) writes nothing into the new one:
//! not its stale `status.json`, and it does not remove the new socket.
//! Run as root after `scripts/build-static.sh`.

mod shim_support;

use shim_support::*;

#[test]
fn an_old_monitor_leaves_a_new_state_dir_at_its_path_alone() {
    if !root_or_skip("stale monitor") {
        return;
    }
    let c = Ctr::unprivileged(&[PROBE, "sleep", "inf"]);
    c.create_ok();
    c.ctl_ok("start", &[]);
    c.wait_status("running", |s| s["state"] == "running");
    let (shim, init) = (c.shim_pid(), c.init_pid());
    // The old directory moves away; a new container's takes its path.
    std::fs::rename(&c.state, c.tmp.join("state-old")).unwrap();
    std::fs::create_dir(&c.state).unwrap();
    let new_status = r#"{"new":"container"}"#;
    std::fs::write(c.state.join("status.json"), new_status).unwrap();
    std::fs::write(c.state.join("shim.sock"), "").unwrap();
    // The old container's init dies: its monitor records the exit and leaves.
    // SAFETY: plain kill(2) of the container's init.
    assert_eq!(unsafe { libc::kill(init, libc::SIGKILL) }, 0);
    let gone = zctr_tests::wait_until(T, || {
        !std::path::Path::new(&format!("/proc/{shim}")).exists()
    });
    assert!(gone, "the old monitor did not exit");
    assert_eq!(
        std::fs::read_to_string(c.state.join("status.json")).unwrap(),
        new_status,
        "the old monitor wrote into the new directory"
    );
    assert!(
        c.state.join("shim.sock").exists(),
        "the old monitor removed the new socket"
    );
    assert!(!c.state.join(".status.json.tmp").exists());
    assert!(c.no_processes());
}
