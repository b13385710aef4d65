//! Unit tests of the registry, without root: cgroups are a recording fake
//! ([`FakeCgroups`]), shims a fake ([`FakeShims`]) whose far end of a
//! socketpair the test speaks for, the state root a temp dir.

use super::exchange::{self, ExchangeError};
use super::*;
use crate::container::{self, ShimLink};
use crate::model::{now_ms, ContainerRecord, CreateRequest, Status};
use crate::shim_conn::{self, ShimConnError, ShimReader, ShimWriter};
use crate::spawn::{OsShims, ShimFuture, SpawnError, Spawned};
use crate::testutil::{FakeCgroups, TempDir};
use common::config::ContainerConfig;
use common::protocol::{encode_frame_vec, ExitStatus, FrameBuffer, ManagerMsg, ShimMsg, ShimState};
use common::state::{ExitRecord, ProcId, ShimStateName, ShimStatus, STATUS_FILE};
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::Notify;

/// A process that does not exist (no pid is this large).
const DEAD: ProcId = ProcId {
    pid: i32::MAX,
    start_time: 1,
};

/// The shim's end of a fake shim's socketpair: the test speaks for the shim.
struct FarEnd {
    stream: UnixStream,
    buf: FrameBuffer,
}

impl FarEnd {
    async fn send(&mut self, msg: ShimMsg) {
        let bytes = encode_frame_vec(&msg).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// The next request from the daemon; `None` when it hung up.
    async fn recv(&mut self) -> Option<ManagerMsg> {
        let mut chunk = [0u8; 256];
        loop {
            if let Some(m) = self.buf.next_frame::<ManagerMsg>().unwrap() {
                return Some(m);
            }
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend(&chunk[..n]),
            }
        }
    }
}

/// A connected shim link: the daemon's halves and the shim's end.
fn socketpair() -> (ShimReader, ShimWriter, FarEnd) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let (r, w) = shim_conn::split(ours);
    let far = FarEnd {
        stream: theirs,
        buf: FrameBuffer::new(),
    };
    (r, w, far)
}

/// Shims as the test wants them: `spawn` waits for `gate` (if any), then
/// fails with `fail` (if set) or reports a shim created on a socketpair;
/// `connect` answers while `connectable`. Far ends go to `far`.
#[derive(Default)]
struct FakeShims {
    gate: Option<Arc<Notify>>,
    fail: Mutex<Option<SpawnError>>,
    connectable: bool,
    far: Mutex<Vec<FarEnd>>,
}

impl FakeShims {
    fn failing(e: SpawnError) -> Self {
        Self {
            fail: Mutex::new(Some(e)),
            ..Self::default()
        }
    }

    fn far_end(&self) -> FarEnd {
        self.far.lock().unwrap().pop().expect("a far end")
    }
}

impl Shims for FakeShims {
    fn spawn<'a>(
        &'a self,
        _argv: &'a [String],
        _log: &'a Path,
        _cgroup_procs: &'a [PathBuf],
    ) -> ShimFuture<'a, Result<Spawned, SpawnError>> {
        Box::pin(async move {
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            if let Some(e) = self.fail.lock().unwrap().take() {
                return Err(e);
            }
            let (reader, writer, far) = socketpair();
            self.far.lock().unwrap().push(far);
            Ok(Spawned {
                shim: DEAD,
                init_pid: i32::MAX,
                reader,
                writer,
            })
        })
    }

    fn connect<'a>(
        &'a self,
        _state_dir: &'a Path,
    ) -> ShimFuture<'a, Result<(ShimReader, ShimWriter), ShimConnError>> {
        Box::pin(async move {
            if !self.connectable {
                return Err(ShimConnError::Io(io::ErrorKind::ConnectionRefused.into()));
            }
            let (r, w, far) = socketpair();
            self.far.lock().unwrap().push(far);
            Ok((r, w))
        })
    }
}

struct Harness {
    t: TempDir,
    cgroups: Arc<FakeCgroups>,
    reg: Arc<Registry>,
}

/// A registry on a fresh state root, shims from `shims` started as `shim`.
fn harness_with(shims: Arc<dyn Shims>, shim: &Path) -> Harness {
    let t = TempDir::new("registry");
    std::fs::create_dir(t.path().join("rootfs")).unwrap();
    let store = Store::open(&t.path().join("root")).unwrap();
    let cgroups = Arc::new(FakeCgroups::default());
    let settings = Settings {
        shim: shim.to_path_buf(),
        cgroup_parent: CgroupPath::new("zctr-test").unwrap(),
    };
    let reg = Registry::new(store, cgroups.clone(), shims, settings);
    Harness { t, cgroups, reg }
}

fn harness(shims: &Arc<FakeShims>) -> Harness {
    harness_with(shims.clone(), Path::new("/nonexistent/zctr-shim"))
}

impl Harness {
    fn request(&self, id: &str) -> CreateRequest {
        let mut config = ContainerConfig::new(self.t.path().join("rootfs"));
        config.args = Some(vec!["/bin/true".into()]);
        CreateRequest {
            id: ContainerId::new(id).unwrap(),
            config,
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.reg.env.store.dir(id)
    }

    /// A record of `id` in `status`, as create would have written it.
    fn record(&self, id: &str, status: Status, shim: Option<ProcId>) -> ContainerRecord {
        let req = self.request(id);
        let cg = container_cgroup(&self.reg.settings.cgroup_parent, &req.id).unwrap();
        ContainerRecord {
            id: req.id,
            config: req.config,
            status,
            cgroup: cg.to_string(),
            state_dir: self.dir(id),
            bundle: self.dir(id).join("bundle"),
            shim_command: Vec::new(),
            shim,
            init: None,
            exposed_ports: Vec::new(),
            created_ms: now_ms(),
            started_ms: None,
            finished_ms: None,
            exit: None,
            stop_reason: None,
        }
    }

    /// Writes the record of `id` to the state root (for recovery).
    fn persist(&self, record: &ContainerRecord) {
        let id = record.id.as_str();
        self.reg.env.store.create_dir(id).unwrap();
        self.reg.env.store.save(id, record).unwrap();
    }

    /// Lists a container of `id` in `status`, without a shim.
    fn listed(&self, id: &str, status: Status) -> Arc<Container> {
        let record = self.record(id, status, Some(DEAD));
        self.persist(&record);
        let cg = container_cgroup(&self.reg.settings.cgroup_parent, &record.id).unwrap();
        let c = Container::new(record, cg);
        self.reg.table.insert(c.clone());
        c
    }

    /// Lists a container of `id` in `status`, linked to a fake shim.
    fn linked(&self, id: &str, status: Status) -> (Arc<Container>, FarEnd) {
        let c = self.listed(id, status);
        let (r, w, far) = socketpair();
        container::attach(self.reg.env.clone(), c.clone(), r, w);
        (c, far)
    }

    /// The cgroup calls so far, with the container paths shortened to ids.
    fn calls(&self) -> Vec<String> {
        self.cgroups
            .calls()
            .into_iter()
            .map(|c| c.replace("zctr-test/", "").replace(CGROUP_SUFFIX, ""))
            .collect()
    }
}

/// The error of an operation that must fail.
fn failed<T>(r: Result<T>) -> Error {
    match r {
        Ok(_) => panic!("the operation succeeded"),
        Err(e) => e,
    }
}

async fn settled(c: &Container) -> Status {
    let mut rx = c.subscribe();
    let done = rx.wait_for(|s| *s != Status::Creating);
    tokio::time::timeout(Duration::from_secs(10), done)
        .await
        .expect("the creation ends")
        .map(|s| *s)
        .unwrap()
}

async fn stopped(c: &Container) {
    assert!(c.wait_stopped(Some(Duration::from_secs(10))).await);
}

// ----- create and its rollback -----

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

// ----- transitions -----

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

// ----- the request/reply exchange -----

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
    let state = exchange::command(&c, ManagerMsg::Kill { signal: 15 }, COMMAND_LIMIT).await;
    assert_eq!(state.unwrap(), Some(ShimState::Running));
    let _far = reply.await.unwrap();
    // The registry's form of a timeout.
    let e = exchange::command(&c, ManagerMsg::Status, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "container web: shim command timed out");
}

const COMMAND_LIMIT: Duration = Duration::from_secs(10);

fn hello(state: ShimState) -> ShimMsg {
    ShimMsg::Hello {
        shim_pid: DEAD.pid,
        init_pid: DEAD.pid,
        state,
    }
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
    let e = exchange::command(&c, ManagerMsg::Kill { signal: 99 }, COMMAND_LIMIT)
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
    let got = exchange::exchange(link_of(&c), &[ManagerMsg::Status], COMMAND_LIMIT, |m| {
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

// ----- recovery -----

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
