//! Recovery from the state root.

use super::*;

fn shim_status(exit: Option<ExitRecord>) -> ShimStatus {
    ShimStatus {
        id: "web".into(),
        shim: DEAD,
        init: None,
        state: if exit.is_some() {
            ShimStateName::Stopped
        } else {
            ShimStateName::Running
        },
        created_ms: 1,
        started_ms: Some(2),
        exit,
        execs: Vec::new(),
    }
}

fn write_status(dir: &Path, s: &ShimStatus) {
    std::fs::write(dir.join(STATUS_FILE), serde_json::to_vec(s).unwrap()).unwrap();
}

#[tokio::test]
async fn recovery_stops_a_container_whose_shim_died_with_the_exit_it_left() {
    let h = harness(&Arc::new(FakeShims::default()));
    h.persist(&h.record("web", Status::Running, Some(DEAD)));
    let exit = ExitRecord::new(ExitStatus::Code(3), false, 1234);
    write_status(&h.dir("web"), &shim_status(Some(exit)));
    h.persist(&h.record("gone", Status::Running, Some(DEAD)));
    h.reg.recover().await.unwrap();

    let web = h.reg.get("web").unwrap().record();
    assert_eq!(web.status, Status::Stopped);
    let info = web.exit.expect("an exit");
    assert_eq!((info.exit_code, info.code, info.at_ms), (3, Some(3), 1234));
    assert_eq!(web.stop_reason, None);
    let on_disk: ContainerRecord = h.reg.env.store.load("web").unwrap();
    assert_eq!(on_disk.status, Status::Stopped);
    // No status.json exit: the shim died.
    let gone = h.reg.get("gone").unwrap().record();
    assert_eq!(gone.status, Status::Stopped);
    assert_eq!(gone.exit, None);
    assert_eq!(gone.stop_reason.as_deref(), Some(container::SHIM_DIED));
    // Whatever was left in their cgroups is killed, the cgroups removed.
    let calls = h.calls();
    for id in ["web", "gone"] {
        for call in ["kill_all", "remove"] {
            assert!(calls.contains(&format!("{call} {id}")), "{calls:?}");
        }
    }
}

#[tokio::test]
async fn recovery_removes_an_unfinished_creation_and_leaves_what_is_no_container() {
    let h = harness(&Arc::new(FakeShims::default()));
    h.persist(&h.record("half", Status::Creating, None));
    write_status(&h.dir("half"), &shim_status(None));
    // A container dir without a record: its creation did not get far.
    std::fs::create_dir(h.dir("bare")).unwrap();
    // No container id: not ours to judge.
    std::fs::create_dir(h.dir("-not-an-id")).unwrap();
    std::fs::write(h.dir("-not-an-id").join("keep"), b"x").unwrap();
    h.reg.recover().await.unwrap();

    assert!(h.reg.list().is_empty());
    assert!(!h.dir("half").exists());
    assert!(!h.dir("bare").exists());
    assert!(h.dir("-not-an-id").join("keep").exists());
    assert_eq!(
        h.calls(),
        [
            "kill_all bare",
            "remove bare",
            "kill_all half",
            "remove half"
        ]
    );
}

#[tokio::test]
async fn recovery_keeps_stopped_records_and_reconnects_live_shims() {
    let shims = Arc::new(FakeShims {
        connectable: true,
        ..FakeShims::default()
    });
    let h = harness(&shims);
    let mut done = h.record("done", Status::Stopped, Some(DEAD));
    done.stop_reason = Some("killed on delete".into());
    h.persist(&done);
    let me = crate::procfs::proc_id(std::process::id() as i32).unwrap();
    h.persist(&h.record("live", Status::Running, Some(me)));
    h.reg.recover().await.unwrap();

    let d = h.reg.get("done").unwrap().record();
    assert_eq!(d.status, Status::Stopped);
    assert_eq!(d.stop_reason.as_deref(), Some("killed on delete"));
    let live = h.reg.get("live").unwrap();
    assert_eq!(live.status(), Status::Running);
    assert!(live.link().is_some());
    let mut far = shims.far_end();
    far.send(hello(ShimState::Running)).await;
    // Twice is safe: what is listed stays as it is.
    h.reg.recover().await.unwrap();
    assert!(Arc::ptr_eq(&live, &h.reg.get("live").unwrap()));
    assert_eq!(h.calls(), ["kill_all done", "remove done"]);
}

#[tokio::test]
async fn recovery_uses_the_cgroup_the_record_names() {
    let h = harness(&Arc::new(FakeShims::default()));
    // Created by another build, which named its cgroup without the suffix.
    let mut old = h.record("old", Status::Running, Some(DEAD));
    old.cgroup = "zctr-test/old-style".into();
    h.persist(&old);
    // A record naming a cgroup outside the daemon's parent is not trusted.
    let mut odd = h.record("odd", Status::Running, Some(DEAD));
    odd.cgroup = "elsewhere/odd".into();
    h.persist(&odd);
    h.reg.recover().await.unwrap();
    let calls = h.calls();
    for call in [
        "kill_all old-style",
        "remove old-style",
        "kill_all odd",
        "remove odd",
    ] {
        assert!(calls.contains(&call.to_string()), "{calls:?}");
    }
    assert!(!calls.iter().any(|c| c.contains("elsewhere")), "{calls:?}");
}
