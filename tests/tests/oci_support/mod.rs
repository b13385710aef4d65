//! Shared by the `oci_*` end-to-end tests: a bundle made by `zctr-oci spec`
//! on a busybox + probe rootfs, a state root, a cgroup below the test's
//! own; every container is force-deleted and everything removed on drop.
#![allow(dead_code)]

use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use zctr_tests::{bins, run_cmd, Rootfs, TempDir, TestCgroup};

pub const T: Duration = Duration::from_secs(30);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Root and a static busybox, or a skip (a failure under CI=true).
pub fn ready() -> bool {
    if !zctr_tests::skip::need_root() {
        return false;
    }
    if zctr_tests::busybox_path().is_none() {
        zctr_tests::skip::skip("needs a static busybox");
        return false;
    }
    true
}

/// One bundle and state root; `ids` are force-deleted on drop.
pub struct Oci {
    pub cg: TestCgroup,
    pub rootfs: Rootfs,
    pub bundle: PathBuf,
    pub root: PathBuf,
    pub spec: Value,
    pub ids: std::cell::RefCell<Vec<String>>,
    pub tmp: TempDir,
}

impl Drop for Oci {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = run_cmd(self.cmd().args(["delete", "--force", id]), T);
        }
    }
}

impl Oci {
    /// `zctr-oci spec`, then: rootfs path absolute, terminal off, `args`,
    /// cgroupsPath below the test cgroup.
    pub fn new(args: &[&str]) -> Oci {
        let tmp = TempDir::new("zctr-oci-e2e").unwrap();
        let rootfs = Rootfs::new(tmp.join("rootfs")).unwrap();
        rootfs.with_busybox().unwrap();
        let cg = TestCgroup::new().unwrap();
        let bundle = tmp.join("bundle");
        fs::create_dir_all(&bundle).unwrap();
        let out = run_cmd(
            Command::new(bins::oci())
                .args(["spec", "--bundle"])
                .arg(&bundle),
            T,
        )
        .unwrap();
        assert!(out.status.success(), "{}", zctr_tests::describe(&out));
        let mut spec: Value =
            serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
        spec["root"]["path"] = rootfs.path().display().to_string().into();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = serde_json::json!(args);
        let o = Oci {
            cg,
            rootfs,
            bundle,
            root: tmp.join("state"),
            spec,
            ids: Default::default(),
            tmp,
        };
        o.write_spec();
        o
    }

    /// A fresh id, deleted on drop; the config's cgroupsPath gets a leaf of its own.
    pub fn id(&mut self) -> String {
        let id = format!(
            "oci{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        self.ids.borrow_mut().push(id.clone());
        self.spec["linux"]["cgroupsPath"] = format!("{}/{id}", self.cg.relative_path()).into();
        self.write_spec();
        id
    }

    pub fn cgroup_of(&self, id: &str) -> String {
        format!("{}/{id}", self.cg.relative_path())
    }

    pub fn write_spec(&self) {
        zctr_tests::bundle::write(&self.bundle, &self.spec).unwrap();
    }

    /// `zctr-oci --root R` (args to add).
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bins::oci());
        c.arg("--root").arg(&self.root);
        c
    }

    /// A command whose output is captured (not for create/run -d: the init
    /// would hold the pipes).
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = run_cmd(self.cmd().args(args), T).unwrap();
        assert!(
            out.status.success(),
            "zctr-oci {args:?} failed\n{}",
            zctr_tests::describe(&out)
        );
        out
    }

    pub fn fails(&self, args: &[&str]) -> Output {
        let out = run_cmd(self.cmd().args(args), T).unwrap();
        assert!(
            !out.status.success(),
            "zctr-oci {args:?} succeeded\n{}",
            zctr_tests::describe(&out)
        );
        out
    }

    /// `create --bundle B ID` with stdio to files under the scratch dir
    /// (`<id>.out`, `<id>.err`); returns its exit status and stderr text.
    pub fn create(&self, id: &str, extra: &[&str]) -> (ExitStatus, String) {
        let out = fs::File::create(self.tmp.join(format!("{id}.out"))).unwrap();
        let err_path = self.tmp.join(format!("{id}.err"));
        let err = fs::File::create(&err_path).unwrap();
        let mut c = self.cmd();
        c.arg("create")
            .arg("--bundle")
            .arg(&self.bundle)
            .args(extra)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let status = wait_timeout(c.spawn().unwrap(), T);
        (status, fs::read_to_string(err_path).unwrap_or_default())
    }

    pub fn create_ok(&self, id: &str, extra: &[&str]) {
        let (st, err) = self.create(id, extra);
        assert!(st.success(), "create {id} failed: {err}");
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_slice(&self.ok(&["state", id]).stdout).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until `state` reports `want` (a container that does not exist
    /// yet is waited for too).
    pub fn wait_status(&self, id: &str, want: &str) {
        let ok = zctr_tests::wait_until(Duration::from_secs(10), || {
            run_cmd(self.cmd().args(["state", id]), T)
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
                .is_some_and(|v| v["status"] == want)
        });
        assert!(ok, "{id} never became {want}");
    }

    pub fn out_of(&self, id: &str) -> String {
        fs::read_to_string(self.tmp.join(format!("{id}.out"))).unwrap_or_default()
    }

    pub fn err_of(&self, id: &str) -> String {
        fs::read_to_string(self.tmp.join(format!("{id}.err"))).unwrap_or_default()
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// The container's cgroup directory in each hierarchy the test cgroup has.
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        self.cg.dirs().iter().map(|d| d.path.join(id)).collect()
    }
}

/// Waits for `child`, killing it after `limit`.
pub fn wait_timeout(mut child: Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("timed out after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// (state letter, parent pid) of `pid`.
pub fn stat(pid: i32) -> Option<(char, i32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Pids of processes whose executable is one of zctr's own and whose parent is `parent`.
pub fn zctr_children_of(parent: i32) -> Vec<i32> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if stat(pid).map(|s| s.1) != Some(parent) {
            continue;
        }
        let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        let name = exe
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("zctr-oci") || name.starts_with("zctr-shim") {
            v.push(pid);
        }
    }
    v
}

pub fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}
