//! The daemon harness shared by the manager end-to-end tests
//! (`manager_lifecycle.rs`, `manager_limits.rs`, `manager_restart.rs`): a real `zctr daemon` with its own state root,
//! socket and cgroup parent below a `TestCgroup`, started in a process group
//! of its own so a test can `kill -9` the whole group. Everything is removed
//! on drop, also while unwinding from a failed assertion: the daemon's group
//! is SIGKILLed, the test cgroup's drop kills every shim and container process
//! below it, and the scratch directory is unmounted and removed.
#![allow(dead_code)]

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use zctr_tests::{bins, run_cmd, wait_until, Rootfs, TempDir, TestCgroup};

/// Time limit of one client command.
pub const T: Duration = Duration::from_secs(60);

pub fn zctr_bin() -> PathBuf {
    bins::find("zctr").unwrap_or_else(|_| bins::workspace_root().join("target/debug/zctr"))
}

/// How the daemon is started beyond the harness's own arguments.
#[derive(Debug, Clone, Default)]
pub struct DaemonSetup {
    /// A command the daemon runs under, e.g. `["prlimit", "--nofile=256", "--"]`.
    pub wrapper: Vec<String>,
    /// Environment variables of the daemon (e.g. `ZCTR_HEADER_TIMEOUT`).
    pub env: Vec<(String, String)>,
}

pub struct Env {
    daemon: Option<Child>,
    pub setup: DaemonSetup,
    pub socket: PathBuf,
    pub root: PathBuf,
    pub parent: String,
    pub rootfs: Rootfs,
    // Dropped in this order: cgroup (kills processes), then the directory.
    pub cg: TestCgroup,
    pub tmp: TempDir,
}

impl Env {
    /// `None` when not root: the test skips (fails under `CI=true`, see
    /// [`zctr_tests::skip`]).
    pub fn new() -> Option<Env> {
        Env::build(None, DaemonSetup::default())
    }

    /// Like [`Env::new`], the daemon started as `setup` says (also on restarts).
    pub fn with_daemon(setup: DaemonSetup) -> Option<Env> {
        Env::build(None, setup)
    }

    /// Like [`Env::new`], with the state root on a tmpfs of `kib` KiB of its
    /// own (unmounted with the scratch directory), so that it can be filled.
    pub fn with_small_state_disk(kib: u32) -> Option<Env> {
        Env::build(Some(kib), DaemonSetup::default())
    }

    fn build(state_kib: Option<u32>, setup: DaemonSetup) -> Option<Env> {
        if !zctr_tests::skip::need_root() {
            return None;
        }
        let tmp = TempDir::new("zctr-mgr").unwrap();
        let cg = TestCgroup::new().unwrap();
        let rootfs = Rootfs::new(tmp.join("rootfs")).unwrap();
        let mut env = Env {
            daemon: None,
            setup,
            socket: tmp.join("zctr.sock"),
            root: tmp.join("state"),
            parent: cg.relative_path().to_string(),
            rootfs,
            cg,
            tmp,
        };
        if let Some(kib) = state_kib {
            std::fs::create_dir_all(&env.root).unwrap();
            let out = zctr_tests::run_cmd(
                Command::new("mount")
                    .args(["-t", "tmpfs", "-o", &format!("size={kib}k,mode=0700")])
                    .arg("zctr-test-state")
                    .arg(&env.root),
                T,
            )
            .unwrap();
            assert!(out.status.success(), "{}", zctr_tests::describe(&out));
        }
        env.start_daemon();
        Some(env)
    }

    /// Starts the daemon as the leader of a new process group and waits until
    /// it answers.
    pub fn start_daemon(&mut self) {
        assert!(self.daemon.is_none(), "daemon already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.tmp.join("daemon.log"))
            .unwrap();
        let mut cmd = match self.setup.wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(zctr_bin());
                c
            }
            None => Command::new(zctr_bin()),
        };
        let child = cmd
            .envs(self.setup.env.iter().map(|(k, v)| (k, v)))
            .arg("--socket")
            .arg(&self.socket)
            .arg("daemon")
            .arg("--root")
            .arg(&self.root)
            .arg("--cgroup-parent")
            .arg(&self.parent)
            .arg("--shim")
            .arg(self.shim_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        self.daemon = Some(child);
        let up = wait_until(Duration::from_secs(20), || {
            self.try_zctr(&["list"]).status.success()
        });
        assert!(
            up,
            "daemon did not come up on {}: {}",
            self.socket.display(),
            self.daemon_log()
        );
    }

    /// The shim the daemon is given: `ZCTR_TEST_SHIM` among the setup's
    /// environment variables (read here, not by the daemon), else the build's.
    fn shim_path(&self) -> PathBuf {
        self.setup
            .env
            .iter()
            .find(|(k, _)| k == "ZCTR_TEST_SHIM")
            .map(|(_, v)| PathBuf::from(v))
            .unwrap_or_else(bins::shim)
    }

    /// The daemon's pid (= its process group id).
    pub fn daemon_pid(&self) -> i32 {
        self.daemon.as_ref().expect("daemon running").id() as i32
    }

    /// `kill -9 -- -PGID`: SIGKILL to every process of the daemon's group, then reap it.
    pub fn kill_daemon_group(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = zctr_tests::signal(-(d.id() as i32), libc::SIGKILL);
            let _ = d.kill();
            let _ = d.wait();
        }
    }

    /// SIGKILL to the daemon process alone, then reap it.
    pub fn kill_daemon(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = d.kill();
            let _ = d.wait();
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.tmp.join("daemon.log")).unwrap_or_default()
    }

    pub fn try_zctr(&self, args: &[&str]) -> Output {
        self.try_zctr_within(args, T)
    }

    /// [`Env::try_zctr`] with another time limit.
    pub fn try_zctr_within(&self, args: &[&str], limit: Duration) -> Output {
        run_cmd(
            Command::new(zctr_bin())
                .arg("--socket")
                .arg(&self.socket)
                .args(args),
            limit,
        )
        .unwrap()
    }

    /// Runs a client command that must succeed; returns stdout.
    pub fn zctr(&self, args: &[&str]) -> String {
        let out = self.try_zctr(args);
        assert!(
            out.status.success(),
            "zctr {args:?} failed: {}\n{}\ndaemon log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.daemon_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a client command that must fail with the API error `code`; returns stderr.
    pub fn zctr_fails(&self, args: &[&str], code: &str) -> String {
        let out = self.try_zctr(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "zctr {args:?} succeeded");
        assert!(err.contains(&format!("({code})")), "zctr {args:?}: {err}");
        err
    }

    pub fn inspect(&self, id: &str) -> Value {
        serde_json::from_str(&self.zctr(&["inspect", id])).unwrap()
    }

    pub fn status(&self, id: &str) -> String {
        self.inspect(id)["status"].as_str().unwrap().to_string()
    }

    pub fn logs(&self, id: &str) -> String {
        self.zctr(&["logs", id])
    }

    pub fn rootfs_arg(&self) -> String {
        self.rootfs.path().display().to_string()
    }

    /// The container's cgroup directory in every hierarchy.
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        self.cg
            .dirs()
            .iter()
            .map(|d| d.path.join(cgroup_name(id)))
            .collect()
    }

    /// The container's cgroup directory holding `controller`'s files (v1
    /// hierarchy of that controller, else cgroup2).
    pub fn cgroup_dir_for(&self, id: &str, controller: &str) -> PathBuf {
        self.cg
            .dir_for(controller)
            .unwrap_or_else(|| panic!("no hierarchy for {controller}"))
            .join(cgroup_name(id))
    }

    /// A host directory every container user may write to, for a volume.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.tmp.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        dir
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_daemon_group();
    }
}

/// The name of container `id`'s cgroup below the daemon's cgroup parent
/// (docs/architecture.md, "Cgroups").
pub fn cgroup_name(id: &str) -> String {
    format!("{id}.zctr")
}

/// `run ID --rootfs ROOTFS [EXTRA...] -- CMD...`
pub fn run_args<'a>(
    id: &'a str,
    rootfs: &'a str,
    extra: &[&'a str],
    cmd: &[&'a str],
) -> Vec<&'a str> {
    let mut v = vec!["run", id, "--rootfs", rootfs];
    v.extend_from_slice(extra);
    v.push("--");
    v.extend_from_slice(cmd);
    v
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| common::state::parse_proc_stat(&s))
        .is_some_and(|st| st.state != 'Z' && st.state != 'X')
}

/// (process group, session) of `pid` from /proc/PID/stat.
pub fn pgrp_and_session(pid: i64) -> (i64, i64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

/// The number a `zctr-probe counter` wrote last (None before the first write).
pub fn read_counter(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Runs `zctr ARGS` with a short time limit; returns (output, elapsed).
pub fn timed(env: &Env, args: &[&str], limit: Duration) -> (std::process::Output, Duration) {
    let start = std::time::Instant::now();
    let out = run_cmd(
        Command::new(zctr_bin())
            .arg("--socket")
            .arg(&env.socket)
            .args(args),
        limit,
    )
    .unwrap_or_else(|e| panic!("zctr {args:?} did not answer within {limit:?}: {e}"));
    (out, start.elapsed())
}

/// Waits for `child` (its output piped) at most `limit`; SIGKILLs it after.
pub fn wait_child(child: std::process::Child, limit: Duration) -> Output {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = zctr_tests::signal(pid, libc::SIGKILL);
            panic!("pid {pid} did not end within {limit:?}");
        }
    }
}

/// `zctr ARGS` spawned with its stdin, stdout and stderr piped.
pub fn spawn_zctr(env: &Env, args: &[&str]) -> Child {
    Command::new(zctr_bin())
        .arg("--socket")
        .arg(&env.socket)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}
