//! A private `zctr daemon` (own state root, socket and cgroup parent below
//! the benchmark's cgroup), started, restarted and removed by the bench.

use crate::api::Api;
use crate::proc::wait_for;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    bin: PathBuf,
    shim: PathBuf,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub cgroup_parent: String,
    child: Option<Child>,
}

impl Daemon {
    pub fn new(bin_dir: &Path, dir: &Path, cgroup_parent: &str) -> Self {
        Self {
            bin: bin_dir.join("zctr"),
            shim: bin_dir.join("zctr-shim"),
            dir: dir.to_path_buf(),
            socket: dir.join("zctr.sock"),
            cgroup_parent: cgroup_parent.to_string(),
            child: None,
        }
    }

    pub fn api(&self) -> Api {
        Api::new(&self.socket)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The `zctr` client on this daemon's socket.
    pub fn cli(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--socket").arg(&self.socket);
        c
    }

    /// Starts the daemon; returns once it answers a ping (ms from spawn).
    pub fn start(&mut self) -> Result<f64> {
        std::fs::create_dir_all(&self.dir)?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("daemon.log"))?;
        let t0 = Instant::now();
        let child = Command::new(&self.bin)
            .arg("--socket")
            .arg(&self.socket)
            .arg("daemon")
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--shim")
            .arg(&self.shim)
            .args(["--max-connections", "512", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .context("starting zctr daemon")?;
        self.child = Some(child);
        let api = self.api();
        if !wait_for(Duration::from_secs(120), || {
            api.call("GET", "/v1/ping", None).is_ok()
        }) {
            bail!(
                "the daemon did not answer within 120 s: {}",
                self.log_tail()
            );
        }
        Ok(t0.elapsed().as_secs_f64() * 1e3)
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Stops the daemon with SIGTERM (its containers keep running).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let t0 = Instant::now();
            while c.try_wait()?.is_none() {
                if t0.elapsed() > Duration::from_secs(20) {
                    c.kill()?;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(())
    }

    /// Force-deletes every container, then stops the daemon.
    pub fn teardown(&mut self) {
        if self.child.is_some() {
            let api = self.api();
            if let Ok(list) = api.call("GET", "/v1/containers", None) {
                for c in list.as_array().into_iter().flatten() {
                    if let Some(id) = c["id"].as_str() {
                        let _ =
                            api.call("DELETE", &format!("/v1/containers/{id}?force=true"), None);
                    }
                }
            }
        }
        let _ = self.stop();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.teardown();
    }
}
