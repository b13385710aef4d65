//! The per-container monitor next to conmon's, on the same bundle: idle
//! memory (RSS, PSS) and log throughput (bytes/s through the monitor into
//! its log, and the monitor's CPU per GiB). zctr's monitor is started with
//! `zctr-shim create` + `start` (what the daemon runs), conmon with runc as
//! its runtime (what podman runs), both with a 1 MiB log cap.

use crate::oci;
use crate::proc::{cpu_ticks, output, pss_kib, rss_kib, wait_for, TICK_S};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Setup {
    pub shim: PathBuf,
    pub work: PathBuf,
    pub rootfs: PathBuf,
    pub cgroup: String,
}

/// A container under one of the two monitors.
struct Monitored {
    id: String,
    dir: PathBuf,
    monitor_pid: u32,
    conmon: bool,
}

fn pid_file(p: &Path) -> Result<u32> {
    let s = std::fs::read_to_string(p).with_context(|| format!("read {}", p.display()))?;
    s.trim()
        .parse()
        .with_context(|| format!("{}: {s:?}", p.display()))
}

impl Setup {
    fn runc(&self) -> Command {
        let mut c = Command::new("runc");
        c.arg("--root").arg(self.work.join("runc-root"));
        c
    }

    /// Creates `id` (args `args`) under zctr's monitor or conmon; not started.
    fn create(&self, id: &str, args: &[&str], conmon: bool) -> Result<Monitored> {
        let dir = self.work.join(id);
        let cg = format!("{}/{id}", self.cgroup);
        oci::bundle(&dir, &self.rootfs, args, &cg)?;
        let monitor_pid = if conmon {
            let s = |p: PathBuf| p.to_string_lossy().into_owned();
            std::fs::create_dir_all(dir.join("exit"))?;
            output(
                Command::new("conmon")
                    .args(["--api-version", "1", "-c", id, "-u", id, "-n", id])
                    .args(["-r", "/usr/sbin/runc", "-b"])
                    .arg(&dir)
                    .args(["-p", &s(dir.join("pid"))])
                    .args(["-l", &format!("k8s-file:{}", s(dir.join("ctr.log")))])
                    .args(["--log-size-max", "1048576", "--log-level", "error"])
                    .args(["--exit-dir", &s(dir.join("exit"))])
                    .args(["--socket-dir-path", &s(dir.clone())])
                    .args(["--conmon-pidfile", &s(dir.join("conmon.pid"))])
                    .args(["--runtime-arg", "--root", "--runtime-arg"])
                    .arg(self.work.join("runc-root")),
            )?;
            // conmon returns at once; runc create runs under it, and has
            // created the container once it wrote the container's pid file.
            if !wait_for(Duration::from_secs(30), || dir.join("pid").exists()) {
                bail!("{id}: conmon did not create the container within 30 s");
            }
            pid_file(&dir.join("conmon.pid"))?
        } else {
            output(
                Command::new(&self.shim)
                    .args(["create", "--bundle"])
                    .arg(&dir)
                    .args(["--id", id, "--state-dir"])
                    .arg(dir.join("state")),
            )?;
            let st: Value = serde_json::from_slice(&std::fs::read(dir.join("state/status.json"))?)?;
            st["shim"]["pid"]
                .as_u64()
                .context("status.json: no shim pid")? as u32
        };
        Ok(Monitored {
            id: id.to_string(),
            dir,
            monitor_pid,
            conmon,
        })
    }

    fn start(&self, m: &Monitored) -> Result<()> {
        if m.conmon {
            output(self.runc().args(["start", &m.id]))?;
        } else {
            output(
                Command::new(&self.shim)
                    .args(["start", "--state-dir"])
                    .arg(m.dir.join("state")),
            )?;
        }
        Ok(())
    }

    fn exited(&self, m: &Monitored) -> bool {
        if m.conmon {
            m.dir.join("exit").join(&m.id).exists()
        } else {
            std::fs::read_to_string(m.dir.join("state/status.json"))
                .map(|s| s.contains("\"state\":\"stopped\""))
                .unwrap_or(false)
        }
    }

    /// Kills the container and removes what it left.
    fn remove(&self, m: &Monitored) {
        if m.conmon {
            let _ = output(self.runc().args(["kill", &m.id, "KILL"]));
            wait_for(Duration::from_secs(10), || self.exited(m));
            let _ = output(self.runc().args(["delete", "--force", &m.id]));
        } else {
            let _ = output(
                Command::new(&self.shim)
                    .args(["kill", "--state-dir"])
                    .arg(m.dir.join("state"))
                    .arg("KILL"),
            );
            wait_for(Duration::from_secs(10), || self.exited(m));
        }
        // The monitor leaves once its output is drained.
        wait_for(Duration::from_secs(10), || !alive(m.monitor_pid));
        let _ = std::fs::remove_dir_all(&m.dir);
    }

    /// Mean idle RSS and PSS of `k` monitors of `sleep` containers.
    pub fn idle_memory(&self, k: usize, conmon: bool) -> Result<Value> {
        let tag = if conmon { "conmon" } else { "zctr" };
        let mut ms = Vec::new();
        let r = (|| -> Result<Value> {
            for i in 0..k {
                let m = self.create(
                    &format!("mem-{tag}-{i}"),
                    &["/bin/sleep", "1000000"],
                    conmon,
                )?;
                ms.push(m);
                self.start(ms.last().unwrap())?;
            }
            // zctr's monitor releases what it does not need after 1 s idle.
            std::thread::sleep(Duration::from_secs(3));
            let rss: Vec<u64> = ms.iter().filter_map(|m| rss_kib(m.monitor_pid)).collect();
            let pss: Vec<u64> = ms.iter().filter_map(|m| pss_kib(m.monitor_pid)).collect();
            if rss.len() != k || pss.len() != k {
                bail!("{tag}: some monitors are gone");
            }
            Ok(
                json!({"monitors": k, "rss_kib": rss.iter().sum::<u64>() / k as u64,
                      "pss_kib": pss.iter().sum::<u64>() / k as u64}),
            )
        })();
        for m in &ms {
            self.remove(m);
        }
        r
    }

    /// One container writing `mib` MiB to stdout; returns (seconds from
    /// start to exit seen, monitor CPU seconds).
    fn log_once(&self, id: &str, mib: usize, conmon: bool) -> Result<(f64, f64)> {
        let count = format!("count={}", mib * 16);
        let m = self.create(id, &["/bin/dd", "if=/dev/zero", "bs=65536", &count], conmon)?;
        let r = (|| -> Result<(f64, f64)> {
            let base = cpu_ticks(m.monitor_pid).unwrap_or(0);
            let mut ticks = base;
            let t0 = Instant::now();
            self.start(&m)?;
            let secs = loop {
                if let Some(t) = cpu_ticks(m.monitor_pid) {
                    ticks = t;
                }
                if self.exited(&m) {
                    break t0.elapsed().as_secs_f64();
                }
                if t0.elapsed() > Duration::from_secs(600) {
                    bail!("{id}: still writing after 600 s");
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            // The monitor's last ticks: until it exits (or is a zombie).
            wait_for(Duration::from_secs(5), || match cpu_ticks(m.monitor_pid) {
                Some(t) => {
                    ticks = t;
                    !alive(m.monitor_pid)
                }
                None => true,
            });
            Ok((secs, (ticks - base) as f64 * TICK_S))
        })();
        self.remove(&m);
        r
    }

    /// Log throughput: `runs` containers each writing `mib` MiB.
    pub fn log_throughput(&self, mib: usize, runs: usize, conmon: bool) -> Result<Value> {
        let tag = if conmon { "conmon" } else { "zctr" };
        let (mut bps, mut cpu_per_gib) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let (secs, cpu) = self.log_once(&format!("log-{tag}-{i}"), mib, conmon)?;
            bps.push((mib << 20) as f64 / secs);
            cpu_per_gib.push(cpu * 1024.0 / mib as f64);
        }
        Ok(
            json!({"mib_per_run": mib, "bytes_per_second": crate::stats::samples("B/s", &bps),
                  "monitor_cpu_s_per_gib": crate::stats::samples("s", &cpu_per_gib)}),
        )
    }
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let state = s[s.rfind(')')? + 2..].chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}
