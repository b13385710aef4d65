//! Create, its rollback, and the transitions it leads to.

use super::*;

#[tokio::test]
async fn a_failed_spawn_rolls_back_the_cgroup_and_the_state_dir() {
    let shims = Arc::new(FakeShims::failing(SpawnError::Died {
        status: "exit status: 3".into(),
        log: String::new(),
    }));
    let h = harness(&shims);
    let e = failed(h.reg.create(h.request("web")).await);
    assert!(matches!(e, Error::Spawn(SpawnError::Died { .. })), "{e}");
    assert_eq!(
        h.calls(),
        [
            "create web",
            "procs_files zctr-shims",
            "kill_all web",
            "remove web"
        ]
    );
    assert!(!h.dir("web").exists());
    assert!(matches!(h.reg.get("web"), Err(Error::NotFound(_))));
    // The id is free again.
    *shims.fail.lock().unwrap() = None;
    h.reg.create(h.request("web")).await.unwrap();
}

#[tokio::test]
async fn a_setup_failure_reported_by_the_shim_rolls_back() {
    // The real spawn path, with a script for a shim: it sends `SetupFailed
    // { step: "mount", errno: 2, message: "x" }` on fd 3 (the bytes of
    // common's golden test) and exits 1.
    let t = TempDir::new("registry-shim");
    let shim = t.path().join("fake-shim");
    std::fs::write(
        &shim,
        "#!/bin/sh\nprintf 'ZCTR\\001\\000\\012\\000\\000\\000\\004\\005mount\\004\\001x' >&3\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let h = harness_with(Arc::new(OsShims), &shim);
    let e = failed(h.reg.create(h.request("web")).await);
    match e {
        Error::Spawn(SpawnError::SetupFailed { step, errno, .. }) => {
            assert_eq!((step.as_str(), errno), ("mount", 2))
        }
        e => panic!("{e}"),
    }
    assert_eq!(
        h.calls(),
        [
            "create web",
            "procs_files zctr-shims",
            "kill_all web",
            "remove web"
        ]
    );
    assert!(!h.dir("web").exists());
    assert!(h.reg.list().is_empty());
}

#[tokio::test]
async fn a_created_container_is_recorded_and_linked() {
    let shims = Arc::new(FakeShims::default());
    let h = harness(&shims);
    let c = h.reg.create(h.request("web")).await.unwrap();
    assert_eq!(c.status(), Status::Created);
    assert!(c.link().is_some());
    let on_disk: ContainerRecord = h.reg.env.store.load("web").unwrap();
    assert_eq!(on_disk.status, Status::Created);
    assert_eq!(on_disk.shim, Some(DEAD));
    assert!(h.dir("web").join("bundle/config.json").is_file());
    let e = failed(h.reg.create(h.request("web")).await);
    assert!(matches!(e, Error::AlreadyExists(_)), "{e}");
}

#[tokio::test]
async fn a_dropped_caller_does_not_cancel_create() {
    let gate = Arc::new(Notify::new());
    let shims = Arc::new(FakeShims {
        gate: Some(gate.clone()),
        ..FakeShims::default()
    });
    let h = harness(&shims);
    // The client hangs up while the shim is being started.
    let call = h.reg.create(h.request("web"));
    assert!(tokio::time::timeout(Duration::from_millis(200), call)
        .await
        .is_err());
    let c = h.reg.get("web").unwrap();
    assert_eq!(c.status(), Status::Creating);
    gate.notify_one();
    assert_eq!(settled(&c).await, Status::Created);
    assert!(c.link().is_some());
    let on_disk: ContainerRecord = h.reg.env.store.load("web").unwrap();
    assert_eq!(on_disk.status, Status::Created);
}

#[tokio::test]
async fn a_dropped_caller_does_not_cancel_a_rollback() {
    let gate = Arc::new(Notify::new());
    let shims = Arc::new(FakeShims {
        gate: Some(gate.clone()),
        fail: Mutex::new(Some(SpawnError::Timeout(Duration::from_secs(60)))),
        ..FakeShims::default()
    });
    let h = harness(&shims);
    let call = h.reg.create(h.request("web"));
    assert!(tokio::time::timeout(Duration::from_millis(200), call)
        .await
        .is_err());
    gate.notify_one();
    // An operation waits for the creation's outcome: here, none is left.
    let e = h.reg.delete("web", true).await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    assert!(!h.dir("web").exists());
    assert_eq!(h.calls()[2..], ["kill_all web", "remove web"]);
}

#[tokio::test]
async fn invalid_transitions_give_the_documented_errors() {
    let h = harness(&Arc::new(FakeShims::default()));
    h.listed("up", Status::Running);
    h.listed("down", Status::Stopped);
    h.listed("frozen", Status::Paused);
    let cases = [
        (
            h.reg.start("up").await,
            "container up: cannot start a running container",
        ),
        (
            h.reg.pause("down").await,
            "container down: cannot pause a stopped container",
        ),
        (
            h.reg.resume("up").await,
            "container up: cannot resume a running container",
        ),
        (
            h.reg.kill("down", 15).await,
            "container down: cannot kill a stopped container",
        ),
        (
            h.reg.start("frozen").await,
            "container frozen: cannot start a paused container",
        ),
        (
            h.reg.delete("up", false).await,
            "container up: cannot delete a running container (stop it first or use force)",
        ),
    ];
    for (got, want) in cases {
        let e = got.unwrap_err();
        assert!(matches!(e, Error::InvalidState { .. }), "{e}");
        assert_eq!(e.to_string(), want);
    }
    let e = h.reg.start("nope").await.unwrap_err();
    assert!(matches!(e, Error::NotFound(_)), "{e}");
    // Nothing was tried: no freeze, no kill, no removal.
    assert_eq!(h.calls(), Vec::<String>::new());
    // A valid one still goes through.
    h.reg.pause("up").await.unwrap();
    assert_eq!(h.reg.get("up").unwrap().status(), Status::Paused);
    assert_eq!(h.calls(), ["freeze up"]);
}
