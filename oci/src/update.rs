//! `update`: new limits for a live container, from `-r FILE` (`-` is
//! stdin; a LinuxResources JSON, as containerd sends it) or runc's flags,
//! applied to its cgroup and saved in state.json's config.

use crate::cli::{Global, UpdateArgs};
use crate::error::{Context, Error, Result};
use crate::state::{self, Dir};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
use std::io::Read;

/// The most an `-r` file may hold.
const MAX: u64 = 1024 * 1024;

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|_| Error::new(format!("--{flag}: invalid value {v:?}")))
}

/// A size as runc takes it: bytes, or with a k/m/g suffix (1024-based); -1 unlimited.
fn size(flag: &str, v: &str) -> Result<i64> {
    let t = v.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (n, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: i64 = num(flag, n)?;
    Ok(if n < 0 { n } else { n.saturating_mul(mul) })
}

/// The resources the flags ask for (only those given are set).
pub fn from_flags(values: &[(String, String)]) -> Result<LinuxResources> {
    let mut r = LinuxResources::default();
    let mut mem = LinuxMemory::default();
    let mut cpu = LinuxCpu::default();
    let (mut has_mem, mut has_cpu) = (false, false);
    for (flag, v) in values {
        match flag.as_str() {
            "memory" => {
                mem.set_limit(Some(size(flag, v)?));
                has_mem = true;
            }
            "memory-swap" => {
                mem.set_swap(Some(size(flag, v)?));
                has_mem = true;
            }
            "memory-reservation" => {
                mem.set_reservation(Some(size(flag, v)?));
                has_mem = true;
            }
            "cpu-shares" => {
                cpu.set_shares(Some(num(flag, v)?));
                has_cpu = true;
            }
            "cpu-quota" => {
                cpu.set_quota(Some(num(flag, v)?));
                has_cpu = true;
            }
            "cpu-period" => {
                cpu.set_period(Some(num(flag, v)?));
                has_cpu = true;
            }
            "cpu-rt-period" => {
                cpu.set_realtime_period(Some(num(flag, v)?));
                has_cpu = true;
            }
            "cpu-rt-runtime" => {
                cpu.set_realtime_runtime(Some(num(flag, v)?));
                has_cpu = true;
            }
            "cpuset-cpus" => {
                cpu.set_cpus(Some(v.clone()));
                has_cpu = true;
            }
            "cpuset-mems" => {
                cpu.set_mems(Some(v.clone()));
                has_cpu = true;
            }
            "pids-limit" => {
                let mut p = LinuxPids::default();
                p.set_limit(num(flag, v)?);
                r.set_pids(Some(p));
            }
            "blkio-weight" => {
                let mut b = LinuxBlockIo::default();
                b.set_weight(Some(num(flag, v)?));
                r.set_block_io(Some(b));
            }
            other => {
                return Err(Error::new(format!(
                    "update --{other} is not supported by zctr-oci"
                )))
            }
        }
    }
    if has_mem {
        r.set_memory(Some(mem));
    }
    if has_cpu {
        r.set_cpu(Some(cpu));
    }
    Ok(r)
}

fn read_resources(src: &str) -> Result<LinuxResources> {
    let mut bytes = Vec::new();
    let what = || format!("--resources {src}");
    if src == "-" {
        std::io::stdin()
            .take(MAX)
            .read_to_end(&mut bytes)
            .ctx(what)?;
    } else {
        let f = zctr_shim::setup::readfile::read_in(
            std::path::Path::new(src)
                .parent()
                .unwrap_or(std::path::Path::new(".")),
            &std::path::Path::new(src)
                .file_name()
                .ok_or_else(|| Error::new(what()))?
                .to_string_lossy(),
            MAX,
        )
        .map_err(|e| Error::at(what(), e))?;
        bytes = f;
    }
    serde_json::from_slice(&bytes).ctx(what)
}

pub fn update(g: &Global, u: &UpdateArgs) -> Result<()> {
    let d = Dir::of(&g.root, &u.id)?;
    if !d.exists() {
        return Err(state::not_exist(&u.id));
    }
    let mut s = d.load_existing()?;
    if d.status(&s) == state::Status::Stopped {
        return Err(Error::new(format!("container {} is stopped", u.id)));
    }
    let r = match &u.resources {
        Some(src) if u.values.is_empty() => read_resources(src)?,
        Some(_) => {
            return Err(Error::new(
                "update: give either --resources or the single-value flags, not both",
            ))
        }
        None => from_flags(&u.values)?,
    };
    let path = zctr_cgroups::CgroupPath::new(&s.cgroup).map_err(|e| Error::at("cgroup", e))?;
    crate::cgroup::detect()?.update(&path, &r)?;
    // Keep the saved config in step (the new values over the old ones).
    let new = serde_json::to_value(&r).ctx(|| "resources".into())?;
    let old = &mut s.config["linux"]["resources"];
    if let (Some(old), Some(new)) = (old.as_object_mut(), new.as_object()) {
        for (k, v) in new {
            old.insert(k.clone(), v.clone());
        }
    } else {
        *old = new;
    }
    d.save(&s)
}
