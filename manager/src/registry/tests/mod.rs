//! Unit tests of the registry, without root: cgroups are a recording fake
//! ([`FakeCgroups`]), shims a fake ([`FakeShims`]) whose far end of a
//! socketpair the test speaks for, the state root a temp dir. One file per
//! job of the registry: `create` (with rollback and transitions),
//! `exchange`, `recover`.

mod create;
mod exchange;
mod recover;
mod run_wait;

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
            restart_count: 0,
            stopped_by_user: false,
            backoff_step: 0,
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

fn hello(state: ShimState) -> ShimMsg {
    ShimMsg::Hello {
        shim_pid: DEAD.pid,
        init_pid: DEAD.pid,
        state,
    }
}
