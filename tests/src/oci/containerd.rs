//! A private containerd (own config, root, state and socket; no CRI plugin)
//! started by the test inside a [`TestCgroup`], and its `ctr` client in a
//! namespace of its own. Its shims (containerd-shim-runc-v2) are born in the
//! same cgroup and run the OCI runtime given by `ctr run --runc-binary`. The
//! containers' cgroups go below a second, sibling [`TestCgroup`] that holds
//! no process itself (on cgroup v2 only such a cgroup can hand controllers to
//! its children).
//!
//! On drop: every task is killed and deleted and every container deleted
//! through ctr, containerd is stopped (SIGTERM, then SIGKILL), the cgroups
//! kill what is left (shims, containers) and is removed, the runtime's state
//! of the namespace is removed, and the scratch directory is unmounted and
//! removed.

use super::{check, run_client, runtime::runtime};
use crate::error::Context;
use crate::{skip, wait_until, Error, TempDir, TestCgroup};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Where containerd-shim-runc-v2 keeps the runtime's state (`--root`) of a
/// namespace: `<RUNC_ROOT>/<namespace>`.
pub const RUNC_ROOT: &str = "/run/containerd/runc";

/// How long containerd gets to come up, and to exit after SIGTERM.
const DAEMON_WAIT: Duration = Duration::from_secs(20);

/// containerd's config: everything under `dir`, the CRI plugin disabled.
pub fn config_toml(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "version = 2\n\
         root = \"{d}/root\"\n\
         state = \"{d}/state\"\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
         \n\
         [grpc]\n\
         \x20 address = \"{d}/containerd.sock\"\n\
         \n\
         [ttrpc]\n\
         \x20 address = \"{d}/containerd.sock.ttrpc\"\n\
         \n\
         [debug]\n\
         \x20 address = \"\"\n\
         \n\
         [metrics]\n\
         \x20 address = \"\"\n"
    )
}

/// A running private containerd (see the module docs for the clean-up).
pub struct Containerd {
    daemon: Option<Child>,
    pub runtime: PathBuf,
    pub socket: PathBuf,
    /// The ctr namespace, unique per instance: `zctr-test-<pid>-<n>`.
    pub namespace: String,
    /// The snapshotter (`native`: plain directories, no mounts to leak).
    pub snapshotter: &'static str,
    /// `None` only while dropping (removed before the host leftovers).
    cg: Option<TestCgroup>,
    /// The parent of the containers' cgroups; `None` only while dropping.
    containers_cg: Option<TestCgroup>,
    pub tmp: TempDir,
}

impl Containerd {
    /// Starts containerd; `None` (after [`skip`]) without root, containerd,
    /// ctr, containerd-shim-runc-v2 or the runtime.
    pub fn start() -> Option<Containerd> {
        if !skip::need_root() {
            return None;
        }
        for tool in ["containerd", "ctr", "containerd-shim-runc-v2"] {
            skip::need_tool(tool)?;
        }
        let runtime = skip::or_skip(runtime())?;
        let tmp = TempDir::new("zctr-containerd").unwrap();
        let config = tmp.join("config.toml");
        std::fs::write(&config, config_toml(tmp.path())).unwrap();
        let cg = TestCgroup::new().unwrap();
        let containers_cg = TestCgroup::new().unwrap();
        let log = std::fs::File::create(tmp.join("containerd.log")).unwrap();
        let mut cmd = Command::new("containerd");
        cmd.current_dir(tmp.path())
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        let daemon = cg.spawn(&mut cmd).unwrap();
        let mut c = Containerd {
            daemon: Some(daemon),
            runtime,
            socket: tmp.join("containerd.sock"),
            namespace: format!(
                "zctr-test-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
            snapshotter: "native",
            cg: Some(cg),
            containers_cg: Some(containers_cg),
            tmp,
        };
        let up = wait_until(DAEMON_WAIT, || {
            c.socket.exists() && c.ctr(&["version"]).status.success()
        });
        assert!(up, "containerd did not come up: {}", c.log());
        if let Some(Ok(Some(st))) = c.daemon.as_mut().map(Child::try_wait) {
            panic!("containerd exited ({st}): {}", c.log());
        }
        Some(c)
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a <socket> -n <namespace>` with no arguments yet.
    pub fn ctr_command(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&self.socket).arg("-n").arg(&self.namespace);
        c
    }

    /// Runs `ctr -a <socket> -n <namespace> args...`, output captured.
    pub fn ctr(&self, args: &[&str]) -> Output {
        run_client(self.ctr_command().args(args))
    }

    /// `ctr image import --snapshotter <s> <tar>`.
    pub fn import(&self, tar: &Path) -> Result<Output, Error> {
        let mut c = self.ctr_command();
        c.args(["image", "import", "--snapshotter", self.snapshotter])
            .arg(tar);
        check("ctr image import", run_client(&mut c))
    }

    /// The test cgroup containerd and its shims run in.
    pub fn daemon_cg(&self) -> &TestCgroup {
        self.cg.as_ref().expect("cgroup present until drop")
    }

    /// The test cgroup the containers' cgroups are made below.
    pub fn containers_cg(&self) -> &TestCgroup {
        self.containers_cg
            .as_ref()
            .expect("cgroup present until drop")
    }

    /// Every process in either test cgroup (containerd, shims, containers).
    pub fn pids(&self) -> Vec<u32> {
        let mut all = self.daemon_cg().pids();
        all.extend(self.containers_cg().pids());
        all
    }

    /// The cgroup path (relative to the hierarchies' roots) for container
    /// `id`: below [`Containerd::containers_cg`].
    pub fn cgroup_of(&self, id: &str) -> String {
        format!("{}/{id}", self.containers_cg().relative_path())
    }

    /// The host directories of container `id`'s cgroup, one per hierarchy.
    pub fn cgroup_dirs(&self, id: &str) -> Vec<PathBuf> {
        self.containers_cg()
            .dirs()
            .iter()
            .map(|d| d.path.join(id))
            .collect()
    }

    /// Where ctr makes the fifos of a task's stdio (`--fifo-dir`; ctr's
    /// default, /run/containerd/fifo, keeps those of detached processes).
    pub fn fifo_dir(&self) -> PathBuf {
        self.tmp.join("fifo")
    }

    /// `ctr run --snapshotter <s> --fifo-dir <fifo_dir> --runc-binary <runtime>
    /// --cgroup <cgroup_of(id)> <extra...> <image> <id> <cmd...>`.
    pub fn run(&self, extra: &[&str], image: &str, id: &str, cmd: &[&str]) -> Output {
        let mut c = self.ctr_command();
        c.args(["run", "--snapshotter", self.snapshotter])
            .arg("--fifo-dir")
            .arg(self.fifo_dir())
            .arg("--runc-binary")
            .arg(&self.runtime)
            .arg("--cgroup")
            .arg(self.cgroup_of(id))
            .args(extra)
            .arg(image)
            .arg(id)
            .args(cmd);
        run_client(&mut c)
    }

    /// `ctr task exec --fifo-dir <fifo_dir> --exec-id <exec_id> <extra...> <id> <cmd...>`.
    pub fn exec(&self, extra: &[&str], id: &str, exec_id: &str, cmd: &[&str]) -> Output {
        let mut c = self.ctr_command();
        c.args(["task", "exec", "--fifo-dir"])
            .arg(self.fifo_dir())
            .args(["--exec-id", exec_id])
            .args(extra)
            .arg(id)
            .args(cmd);
        run_client(&mut c)
    }

    /// The pids `ctr task ps <id>` lists.
    pub fn task_pids(&self, id: &str) -> Vec<i32> {
        let out = self.ctr(&["task", "ps", id]);
        assert!(
            out.status.success(),
            "ctr task ps: {}",
            crate::describe(&out)
        );
        parse_first_column(&String::from_utf8_lossy(&out.stdout))
    }

    /// The status `ctr task ls` shows for task `id` (`RUNNING`, `PAUSED`, `STOPPED`...).
    pub fn task_status(&self, id: &str) -> Option<String> {
        let out = self.ctr(&["task", "ls"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.first() == Some(&id))
            .and_then(|f| f.get(2).map(|s| s.to_string()))
    }

    /// Best effort: kill and delete every task, delete every container.
    fn remove_all(&self) {
        let ids = |what: &str| -> Vec<String> {
            let out = self.ctr(&[what, "ls", "-q"]);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        };
        for id in ids("task") {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", &id]);
            let _ = self.ctr(&["task", "delete", "-f", &id]);
        }
        for id in ids("container") {
            let _ = self.ctr(&["container", "delete", &id]);
        }
    }

    /// SIGTERM containerd and wait; SIGKILL if it does not exit in time.
    fn stop_daemon(&mut self) {
        let Some(mut d) = self.daemon.take() else {
            return;
        };
        let _ = crate::signal(d.id() as i32, libc::SIGTERM);
        if !wait_until(DAEMON_WAIT, || matches!(d.try_wait(), Ok(Some(_)))) {
            let _ = crate::signal(d.id() as i32, libc::SIGKILL);
        }
        let _ = d.wait();
    }

    /// The sockets of shims still recorded in the state directory (each
    /// task's `address` file), to remove after the shims are gone.
    fn shim_sockets(&self) -> Vec<PathBuf> {
        let tasks = self
            .tmp
            .join("state/io.containerd.runtime.v2.task")
            .join(&self.namespace);
        let Ok(entries) = std::fs::read_dir(tasks) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("address")).ok())
            .filter_map(|a| a.trim().strip_prefix("unix://").map(PathBuf::from))
            .filter(|p| p.starts_with("/run/containerd/s/"))
            .collect()
    }

    /// Removes what outlives containerd: shim sockets and the runtime's state
    /// of this namespace.
    fn remove_host_leftovers(&self, sockets: &[PathBuf]) -> Result<(), Error> {
        for s in sockets {
            match std::fs::remove_file(s) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).ctx(|| format!("rm {}", s.display()))
                }
                _ => {}
            }
        }
        crate::remove_tree(&Path::new(RUNC_ROOT).join(&self.namespace))
    }
}

/// The first column (pids) of `ctr task ps` output, header skipped.
pub fn parse_first_column(text: &str) -> Vec<i32> {
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let sockets = self.shim_sockets();
        if self.daemon.is_some() {
            self.remove_all();
        }
        self.stop_daemon();
        // Shims and containers still alive die with the cgroups; then
        // nothing holds their state any more.
        for cg in [self.cg.take(), self.containers_cg.take()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = cg.remove() {
                eprintln!("zctr-tests: containerd cgroup: {e}");
            }
        }
        if let Err(e) = self.remove_host_leftovers(&sockets) {
            eprintln!("zctr-tests: containerd leftovers: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_keeps_everything_in_the_directory_and_has_no_cri() {
        let c = config_toml(Path::new("/tmp/x"));
        for want in [
            "root = \"/tmp/x/root\"",
            "state = \"/tmp/x/state\"",
            "address = \"/tmp/x/containerd.sock\"",
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]",
        ] {
            assert!(c.contains(want), "{want} missing in\n{c}");
        }
    }

    #[test]
    fn task_ps_pids_are_read_from_the_first_column() {
        let text = "PID      INFO\n21560    -\n21575    -\n";
        assert_eq!(parse_first_column(text), vec![21560, 21575]);
    }
}
