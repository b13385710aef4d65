//! The request/reply exchange with a shim.

use super::*;
use crate::registry::exchange::{self, ExchangeError, COMMAND_TIMEOUT};

fn link_of(c: &Container) -> ShimLink {
    c.link().expect("linked")
}

#[tokio::test]
async fn an_exchange_times_out_cleanly_and_the_link_still_works() {
    let h = harness(&Arc::new(FakeShims::default()));
    let (c, mut far) = h.linked("web", Status::Running);
    let started = Instant::now();
    let got = exchange::exchange(
        link_of(&c),
        &[ManagerMsg::Status],
        Duration::from_millis(200),
        |m| matches!(m, ShimMsg::Hello { .. }).then_some(()),
    )
    .await;
    assert_eq!(got, Err(ExchangeError::TimedOut));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(far.recv().await, Some(ManagerMsg::Status));
    // Nothing of the late exchange stays in the way of the next one.
    let reply = tokio::spawn(async move {
        assert_eq!(far.recv().await, Some(ManagerMsg::Kill { signal: 15 }));
        assert_eq!(far.recv().await, Some(ManagerMsg::Status));
        far.send(hello(ShimState::Running)).await;
        far
    });
    let state = exchange::command(&c, ManagerMsg::Kill { signal: 15 }, COMMAND_TIMEOUT).await;
    assert_eq!(state.unwrap(), Some(ShimState::Running));
    let _far = reply.await.unwrap();
    // The registry's form of a timeout.
    let e = exchange::command(&c, ManagerMsg::Status, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "container web: shim command timed out");
}

#[tokio::test]
async fn an_exchange_ignores_unrelated_events() {
    let h = harness(&Arc::new(FakeShims::default()));
    let (c, mut far) = h.linked("web", Status::Running);
    let shim = tokio::spawn(async move {
        assert_eq!(far.recv().await, Some(ManagerMsg::Kill { signal: 99 }));
        assert_eq!(far.recv().await, Some(ManagerMsg::Status));
        far.send(ShimMsg::Created { pid: DEAD.pid }).await;
        far.send(ShimMsg::Started).await;
        far.send(ShimMsg::CommandFailed {
            errno: 22,
            message: "bad signal".into(),
        })
        .await;
        far.send(hello(ShimState::Running)).await;
        far
    });
    let e = exchange::command(&c, ManagerMsg::Kill { signal: 99 }, COMMAND_TIMEOUT)
        .await
        .unwrap_err();
    match e {
        Error::ShimCommand { errno, message } => {
            assert_eq!((errno, message.as_str()), (22, "bad signal"))
        }
        e => panic!("{e}"),
    }
    let _far = shim.await.unwrap();
}

#[tokio::test]
async fn an_exchange_notices_at_once_that_the_shim_is_gone() {
    let h = harness(&Arc::new(FakeShims::default()));
    let (c, mut far) = h.linked("web", Status::Running);
    let shim = tokio::spawn(async move {
        assert_eq!(far.recv().await, Some(ManagerMsg::Status));
        // The shim dies: its end of the connection closes.
    });
    let started = Instant::now();
    let got = exchange::exchange(link_of(&c), &[ManagerMsg::Status], COMMAND_TIMEOUT, |m| {
        matches!(m, ShimMsg::Hello { .. }).then_some(())
    })
    .await;
    assert_eq!(got, Err(ExchangeError::Gone));
    assert!(started.elapsed() < Duration::from_secs(3), "{started:?}");
    shim.await.unwrap();
}

#[tokio::test]
async fn start_reports_a_shim_that_dies_as_unavailable_at_once() {
    let shims = Arc::new(FakeShims::default());
    let h = harness(&shims);
    let c = h.reg.create(h.request("web")).await.unwrap();
    let mut far = shims.far_end();
    let shim = tokio::spawn(async move {
        assert_eq!(far.recv().await, Some(ManagerMsg::Start));
    });
    let started = Instant::now();
    let e = h.reg.start("web").await.unwrap_err();
    assert!(matches!(e, Error::ShimUnavailable(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3), "{started:?}");
    shim.await.unwrap();
    // Its monitor saw it die (its pid is gone) and recorded that.
    stopped(&c).await;
    assert_eq!(
        c.record().stop_reason.as_deref(),
        Some(container::SHIM_DIED)
    );
}

#[tokio::test]
async fn start_waits_for_started() {
    let shims = Arc::new(FakeShims::default());
    let h = harness(&shims);
    let c = h.reg.create(h.request("web")).await.unwrap();
    let mut far = shims.far_end();
    let shim = tokio::spawn(async move {
        assert_eq!(far.recv().await, Some(ManagerMsg::Start));
        far.send(hello(ShimState::Created)).await;
        far.send(ShimMsg::Started).await;
        far
    });
    h.reg.start("web").await.unwrap();
    assert_eq!(c.status(), Status::Running);
    let _far = shim.await.unwrap();
}
