//! OCI bundles and the runc-style command-line runtimes (runc, crun,
//! zctr-oci) plus `zctr-shim run`, measured in a child process of their own
//! (`zctr-bench series ...`): crun runs in a private mount namespace where
//! /sys/fs/cgroup/unified is unmounted (crun 1.8.1 refuses hybrid hosts),
//! so its series runs there as a whole, without the namespace's cost in any
//! sample.

use crate::proc::{timed, wait_for};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The same minimal OCI config for every runtime: busybox rootfs read-only,
/// new mount, pid, ipc, uts and network namespaces, /proc and a /dev tmpfs,
/// no capabilities, cgroup `cgroups_path` (relative to every hierarchy).
pub fn config(rootfs: &Path, args: &[&str], cgroups_path: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": rootfs, "readonly": true},
        "process": {"terminal": false, "cwd": "/", "user": {"uid": 0, "gid": 0},
                    "args": args, "env": ["PATH=/bin"]},
        "hostname": "bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                           {"type": "mount"}, {"type": "network"}]
        }
    })
}

/// Writes a bundle (config.json only: the rootfs is shared) at `dir`.
pub fn bundle(dir: &Path, rootfs: &Path, args: &[&str], cgroups_path: &str) -> Result<PathBuf> {
    zctr_tests::bundle::write(dir, &config(rootfs, args, cgroups_path))?;
    Ok(dir.to_path_buf())
}

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `run` of /bin/true to its exit (and removal).
    Run,
    /// create, start, pause, resume, kill, delete, each timed.
    Lifecycle,
}

/// One series: a runtime, its state root, the bundles, how many samples.
pub struct Series {
    pub runtime: PathBuf,
    /// `zctr-shim` takes another command line than runc's.
    pub shim: bool,
    pub root: PathBuf,
    pub true_bundle: PathBuf,
    pub sleep_bundle: PathBuf,
    pub n: usize,
    pub warmup: usize,
    pub prefix: String,
}

impl Series {
    fn oci(&self) -> Command {
        let mut c = Command::new(&self.runtime);
        c.arg("--root").arg(&self.root);
        c
    }

    fn run_once(&self, id: &str) -> Result<f64> {
        if self.shim {
            let state = self.root.join(id);
            let ms = timed(
                Command::new(&self.runtime)
                    .args(["run", "--bundle"])
                    .arg(&self.true_bundle)
                    .args(["--id", id, "--state-dir"])
                    .arg(&state),
            )?;
            std::fs::remove_dir_all(&state).ok();
            return Ok(ms);
        }
        timed(
            self.oci()
                .args(["run", "--bundle"])
                .arg(&self.true_bundle)
                .arg(id),
        )
    }

    fn state_of(&self, id: &str) -> Option<String> {
        let out = crate::proc::output(self.oci().args(["state", id])).ok()?;
        let v: Value = serde_json::from_str(&out).ok()?;
        v["status"].as_str().map(str::to_string)
    }

    fn lifecycle_once(&self, id: &str, out: &mut BTreeMap<&'static str, Vec<f64>>) -> Result<()> {
        let mut step = |name: &'static str, args: &[&str]| -> Result<()> {
            let ms = timed(self.oci().args(args))?;
            out.entry(name).or_default().push(ms);
            Ok(())
        };
        let bundle = self.sleep_bundle.to_string_lossy().into_owned();
        step("create", &["create", "--bundle", &bundle, id])?;
        step("start", &["start", id])?;
        step("pause", &["pause", id])?;
        step("resume", &["resume", id])?;
        step("kill", &["kill", id, "KILL"])?;
        if !wait_for(Duration::from_secs(10), || {
            self.state_of(id).as_deref() == Some("stopped")
        }) {
            bail!("{id}: not stopped 10 s after kill");
        }
        step("delete", &["delete", id])
    }

    /// Runs the series; returns `{"run": [ms...]}` or one list per step.
    pub fn measure(&self, kind: Kind) -> Result<Value> {
        let mut out: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
        for i in 0..self.warmup + self.n {
            let id = format!("{}-{i}", self.prefix);
            match kind {
                Kind::Run => {
                    let ms = self.run_once(&id)?;
                    if i >= self.warmup {
                        out.entry("run").or_default().push(ms);
                    }
                }
                Kind::Lifecycle => {
                    let mut one = BTreeMap::new();
                    let r = self.lifecycle_once(&id, &mut one);
                    if r.is_err() {
                        let _ = crate::proc::output(self.oci().args(["delete", "--force", &id]));
                    }
                    r?;
                    if i >= self.warmup {
                        for (k, v) in one {
                            out.entry(k).or_default().extend(v);
                        }
                    }
                }
            }
        }
        Ok(json!(out))
    }

    /// The command line of this series in a child `zctr-bench series`.
    fn args(&self, kind: Kind) -> Vec<String> {
        let s = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            "series".into(),
            if kind == Kind::Run {
                "run"
            } else {
                "lifecycle"
            }
            .into(),
            s(&self.runtime),
            if self.shim { "shim" } else { "oci" }.into(),
            s(&self.root),
            s(&self.true_bundle),
            s(&self.sleep_bundle),
            self.n.to_string(),
            self.warmup.to_string(),
            self.prefix.clone(),
        ]
    }

    /// Parses [`Series::args`] (after `series`).
    pub fn from_args(a: &[String]) -> Result<(Kind, Series)> {
        let [kind, runtime, style, root, t, s, n, w, prefix] = a else {
            bail!("series: expected 9 arguments, got {}", a.len());
        };
        let kind = match kind.as_str() {
            "run" => Kind::Run,
            "lifecycle" => Kind::Lifecycle,
            k => bail!("series: unknown kind {k:?}"),
        };
        Ok((
            kind,
            Series {
                runtime: runtime.into(),
                shim: style == "shim",
                root: root.into(),
                true_bundle: t.into(),
                sleep_bundle: s.into(),
                n: n.parse().context("series: n")?,
                warmup: w.parse().context("series: warmup")?,
                prefix: prefix.clone(),
            },
        ))
    }

    /// Runs the series in a child process (for crun on a hybrid host: in a
    /// private mount namespace without /sys/fs/cgroup/unified; the host's
    /// mounts are untouched).
    pub fn measure_in_child(&self, kind: Kind, private_cgroup_ns: bool) -> Result<Value> {
        std::fs::create_dir_all(&self.root)?;
        let me = std::env::current_exe()?;
        let mut cmd = if private_cgroup_ns {
            let mut c = Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg("umount /sys/fs/cgroup/unified && exec \"$0\" \"$@\"")
                .arg(&me);
            c
        } else {
            Command::new(&me)
        };
        cmd.args(self.args(kind));
        let out = cmd.output().context("starting a series")?;
        if !out.status.success() {
            bail!(
                "series of {} failed: {}",
                self.runtime.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).context("series output")
    }
}
