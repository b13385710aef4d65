//! podman driving an OCI runtime, with everything private to the test: its
//! storage (`--root`, `--runroot`, `--tmpdir`, vfs driver), a
//! `containers.conf` of its own (`CONTAINERS_CONF`), and a cgroup parent
//! below the test's own cgroup (`--cgroup-manager cgroupfs`: podman puts
//! each container in `<parent>/libpod-<id>` and conmon in `<parent>/conmon`).
//!
//! The runtime keeps its state in its default root: podman 4.3 does not pass
//! `--runtime-flag root=...` to the `delete` of a `run --rm` container, which
//! would leave that state behind. Every container is started with a
//! `--cidfile`, so that the test knows its id and can ask the runtime
//! (`<runtime> state <id>`) whether it is gone.
//!
//! On drop: `podman rm -af`, then the [`TestCgroup`] kills what is left
//! (conmon, containers) and removes the cgroups, then the scratch directory is
//! unmounted and removed.

use super::{run_client, runtime::runtime};
use crate::{bins, skip, Rootfs, TempDir, TestCgroup};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicU32;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The `containers.conf` the tests use. `default_ulimits = []`: podman's
/// default raises RLIMIT_NOFILE, which needs CAP_SYS_RESOURCE (not every
/// root has it). No systemd, no journald: cgroupfs and a file of events.
pub const CONTAINERS_CONF: &str = "[containers]\n\
default_ulimits = []\n\
\n\
[engine]\n\
cgroup_manager = \"cgroupfs\"\n\
events_logger = \"file\"\n";

/// A private podman. Fields drop in order: the cgroup (kills), then the directory.
pub struct Podman {
    pub runtime: PathBuf,
    /// A busybox root filesystem for `--rootfs`.
    pub rootfs: Rootfs,
    /// The cgroup parent, relative to the hierarchies' roots.
    pub cgroup_parent: String,
    pub cg: TestCgroup,
    pub tmp: TempDir,
}

impl Podman {
    /// `None` (after [`skip`]) without root, podman, conmon, a static busybox
    /// or the runtime.
    pub fn new() -> Option<Podman> {
        if !skip::need_root() {
            return None;
        }
        skip::need_tool("podman")?;
        skip::need_tool("conmon")?;
        let runtime = skip::or_skip(runtime())?;
        let probe = skip::or_skip(bins::find("zctr-probe"))?;
        let tmp = TempDir::new("zctr-podman").unwrap();
        let rootfs = Rootfs::with_probe(tmp.join("rootfs"), &probe).unwrap();
        skip::or_skip(rootfs.with_busybox())?;
        std::fs::write(tmp.join("containers.conf"), CONTAINERS_CONF).unwrap();
        std::fs::create_dir(tmp.join("cids")).unwrap();
        let cg = TestCgroup::new().unwrap();
        Some(Podman {
            runtime,
            rootfs,
            cgroup_parent: cg.relative_path().to_string(),
            cg,
            tmp,
        })
    }

    /// `podman` with the global options and environment of this instance,
    /// run in the scratch directory (conmon writes an `oom` file into its
    /// working directory when a container is OOM-killed).
    pub fn command(&self) -> Command {
        let mut c = Command::new("podman");
        c.current_dir(self.tmp.path())
            .env("CONTAINERS_CONF", self.tmp.join("containers.conf"))
            .arg("--root")
            .arg(self.tmp.join("storage"))
            .arg("--runroot")
            .arg(self.tmp.join("runroot"))
            .arg("--tmpdir")
            .arg(self.tmp.join("libpod-tmp"))
            .args(["--storage-driver", "vfs"])
            .args(["--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file"])
            .arg("--runtime")
            .arg(&self.runtime);
        c
    }

    /// Runs `podman <global options> args...` (stdin /dev/null, output captured).
    pub fn run(&self, args: &[&str]) -> Output {
        run_client(self.command().args(args))
    }

    /// The options `podman run` needs for a container of this instance:
    /// `--network none --cgroup-parent <parent>`.
    pub fn run_options(&self) -> Vec<String> {
        vec![
            "--network".into(),
            "none".into(),
            "--cgroup-parent".into(),
            self.cgroup_parent.clone(),
        ]
    }

    /// `podman run <run_options> --cidfile <new file> <extra...> --rootfs
    /// <rootfs> <cmd...>`.
    pub fn run_container(&self, extra: &[&str], cmd: &[&str]) -> Output {
        let cidfile = self.tmp.join("cids").join(format!(
            "{}",
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut c = self.command();
        c.arg("run")
            .args(self.run_options())
            .arg("--cidfile")
            .arg(cidfile)
            .args(extra)
            .arg("--rootfs")
            .arg(self.rootfs.path())
            .args(cmd);
        run_client(&mut c)
    }

    /// `podman inspect --format <format> <name>`, trimmed (panics if it fails).
    pub fn inspect(&self, name: &str, format: &str) -> String {
        let out = self.run(&["inspect", "--format", format, name]);
        assert!(
            out.status.success(),
            "inspect {name}: {}",
            crate::describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The host directory of the container's cgroup for `controller` (v1;
    /// cgroup2 when `controller` is `""`): `<parent>/libpod-<id>`.
    pub fn container_cgroup(&self, id: &str, controller: &str) -> Option<PathBuf> {
        let base = if controller.is_empty() {
            self.cg.v2_dir()
        } else {
            self.cg.v1_dir(controller)
        }?;
        Some(base.join(format!("libpod-{id}")))
    }

    /// The ids of every container [`Podman::run_container`] created.
    pub fn container_ids(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.tmp.join("cids")) else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Whether the runtime still knows container `id` (`<runtime> state <id>`
    /// succeeds).
    pub fn runtime_knows(&self, id: &str) -> bool {
        run_client(Command::new(&self.runtime).args(["state", id]))
            .status
            .success()
    }

    /// The scratch directory everything lives in.
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Best effort: the cgroup and the directory clean up whatever is left.
        if let Ok(out) = crate::run_cmd(
            self.command().args(["rm", "-af", "-t", "0"]),
            super::CLIENT_TIMEOUT,
        ) {
            if !out.status.success() {
                eprintln!("zctr-tests: podman rm -af: {}", crate::describe(&out));
            }
        }
    }
}
