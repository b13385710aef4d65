//! `run_wait`: create, start, wait and remove as one operation.

use super::*;

/// Plays the shim of a `run`: answers the start, then reports exit `code`.
async fn start_then_exit(mut far: FarEnd, code: i32) -> FarEnd {
    assert_eq!(far.recv().await, Some(ManagerMsg::Start));
    far.send(hello(ShimState::Created)).await;
    far.send(ShimMsg::Started).await;
    far.send(ShimMsg::Exited {
        status: ExitStatus::Code(code),
        oom_killed: false,
        at_ms: now_ms(),
    })
    .await;
    far
}

async fn far_end_of(shims: &FakeShims) -> FarEnd {
    for _ in 0..500 {
        if let Some(far) = shims.far.lock().unwrap().pop() {
            return far;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no shim was spawned");
}

#[tokio::test]
async fn run_wait_answers_with_the_exit_and_keeps_the_container_without_rm() {
    let shims = Arc::new(FakeShims::default());
    let h = harness(&shims);
    let call = {
        let (reg, req) = (h.reg.clone(), h.request("web"));
        tokio::spawn(async move { reg.run_wait(req, false).await })
    };
    let _far = start_then_exit(far_end_of(&shims).await, 3).await;
    let record = call.await.unwrap().unwrap();
    assert_eq!(record.exit.map(|e| e.exit_code), Some(3));
    assert_eq!(h.reg.get("web").unwrap().status(), Status::Stopped);
    assert!(h.dir("web").exists());
}

#[tokio::test]
async fn run_wait_with_rm_removes_the_container_even_when_the_caller_hung_up() {
    let shims = Arc::new(FakeShims::default());
    let h = harness(&shims);
    // The client gives up while the container runs.
    let call = h.reg.run_wait(h.request("web"), true);
    let far = far_end_of(&shims);
    let (gone, far) = tokio::join!(tokio::time::timeout(Duration::from_millis(200), call), far);
    assert!(gone.is_err(), "the call answered before the exit");
    let _far = start_then_exit(far, 0).await;
    let t0 = Instant::now();
    while h.reg.get("web").is_ok() {
        assert!(t0.elapsed() < Duration::from_secs(5), "never removed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!h.dir("web").exists());
    assert_eq!(h.calls().last().map(String::as_str), Some("remove web"));
}

#[tokio::test]
async fn run_wait_with_a_failed_start_removes_the_container() {
    let shims = Arc::new(FakeShims::default());
    let h = harness(&shims);
    let call = {
        let (reg, req) = (h.reg.clone(), h.request("web"));
        tokio::spawn(async move { reg.run_wait(req, true).await })
    };
    let mut far = far_end_of(&shims).await;
    assert_eq!(far.recv().await, Some(ManagerMsg::Start));
    far.send(hello(ShimState::Created)).await;
    far.send(ShimMsg::CommandFailed {
        errno: 2,
        message: "no such file".into(),
    })
    .await;
    let e = call.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");
    assert!(h.reg.get("web").is_err());
    assert!(!h.dir("web").exists());
}
