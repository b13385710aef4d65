//! Many containers through the API: creation rate with 1, 8, 32 concurrent
//! clients, deletion of all, the daemon's memory with 0/100/N containers,
//! the monitors' memory, and a daemon restart with N live containers.

use crate::api::Api;
use crate::daemon::Daemon;
use crate::proc::{pss_kib, rss_kib, wait_for};
use crate::stats;
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Runs `op(i)` for every `i` in `range` on `clients` threads; returns the
/// wall time in seconds and each call's latency in ms.
fn concurrently(
    range: std::ops::Range<usize>,
    clients: usize,
    op: impl Fn(usize) -> Result<()> + Sync,
) -> Result<(f64, Vec<f64>)> {
    let next = AtomicUsize::new(range.start);
    let lat = Mutex::new(Vec::new());
    let err = Mutex::new(None);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= range.end || err.lock().unwrap().is_some() {
                    break;
                }
                let t = Instant::now();
                match op(i) {
                    Ok(()) => lat.lock().unwrap().push(t.elapsed().as_secs_f64() * 1e3),
                    Err(e) => *err.lock().unwrap() = Some(e),
                }
            });
        }
    });
    if let Some(e) = err.into_inner().unwrap() {
        return Err(e);
    }
    Ok((t0.elapsed().as_secs_f64(), lat.into_inner().unwrap()))
}

fn create(api: &Api, rootfs: &Path, id: &str) -> Result<()> {
    let body = json!({"id": id, "config": {"rootfs": rootfs, "args": ["/bin/sleep", "1000000"]}});
    api.call("POST", "/v1/containers?start=true", Some(&body))
        .map(drop)
}

fn delete(api: &Api, id: &str) -> Result<()> {
    api.call("DELETE", &format!("/v1/containers/{id}?force=true"), None)
        .map(drop)
}

fn round(kind: &str, clients: usize, n: usize, secs: f64, lat: &[f64]) -> Value {
    json!({"op": kind, "clients": clients, "containers": n, "seconds": secs,
           "per_second": n as f64 / secs, "latency_ms": stats::samples("ms", lat)})
}

/// Daemon RSS after the containers have settled (monitors idle after 1 s).
fn settled_rss(d: &Daemon) -> u64 {
    std::thread::sleep(Duration::from_secs(2));
    rss_kib(d.pid()).unwrap_or(0)
}

/// Mean RSS and PSS (KiB) of the shims of the first `k` containers.
fn monitors(api: &Api, k: usize) -> Result<Value> {
    let (mut rss, mut pss, mut n) = (0, 0, 0);
    for i in 0..k {
        let v = api.call("GET", &format!("/v1/containers/s-{i}"), None)?;
        let Some(pid) = v["shim"]["pid"].as_u64() else {
            continue;
        };
        if let (Some(r), Some(p)) = (rss_kib(pid as u32), pss_kib(pid as u32)) {
            rss += r;
            pss += p;
            n += 1;
        }
    }
    if n == 0 {
        bail!("no shim of s-0..s-{k} could be read");
    }
    Ok(json!({"monitors": n, "rss_kib": rss / n, "pss_kib": pss / n}))
}

pub fn run(d: &mut Daemon, rootfs: &Path, n: usize, clients: &[usize]) -> Result<Value> {
    let api = d.api();
    let mut rss = serde_json::Map::new();
    rss.insert("0".into(), json!(settled_rss(d)));
    let mut rounds = Vec::new();
    let mut monitor = Value::Null;
    let mut restart = Value::Null;
    for (r, &c) in clients.iter().enumerate() {
        let first = r == 0;
        let mark = if first { 100.min(n) } else { 0 };
        // The first round stops at 100 to weigh the daemon and the monitors.
        let (s1, mut lat) = concurrently(0..mark, c, |i| create(&api, rootfs, &format!("s-{i}")))?;
        if first && mark > 0 {
            rss.insert(mark.to_string(), json!(settled_rss(d)));
            monitor = monitors(&api, mark.min(20))?;
        }
        let (s2, lat2) = concurrently(mark..n, c, |i| create(&api, rootfs, &format!("s-{i}")))?;
        lat.extend(lat2);
        rounds.push(round("create", c, n, s1 + s2, &lat));
        if first {
            rss.insert(n.to_string(), json!(settled_rss(d)));
            restart = restart_with(d, n)?;
        }
        let api = d.api();
        let (s, lat) = concurrently(0..n, c, |i| delete(&api, &format!("s-{i}")))?;
        rounds.push(round("delete", c, n, s, &lat));
        let left = api.call("GET", "/v1/containers", None)?;
        if left.as_array().map(Vec::len) != Some(0) {
            bail!("containers left after deleting all: {left}");
        }
    }
    Ok(json!({"daemon_rss_kib": rss, "monitor": monitor, "rounds": rounds, "restart": restart}))
}

/// Stops the daemon with `n` live containers, starts it again, and times
/// the start to the first answer and to the full, reconciled list.
fn restart_with(d: &mut Daemon, n: usize) -> Result<Value> {
    d.stop()?;
    let t0 = Instant::now();
    let ping_ms = d.start()?;
    let api = d.api();
    let all_running = || {
        api.call("GET", "/v1/containers", None)
            .ok()
            .and_then(|v| {
                let a = v.as_array()?.clone();
                Some(a.len() == n && a.iter().all(|c| c["status"] == "running"))
            })
            .unwrap_or(false)
    };
    if !wait_for(Duration::from_secs(300), all_running) {
        bail!("after a restart the daemon does not list {n} running containers");
    }
    let listed_ms = t0.elapsed().as_secs_f64() * 1e3;
    Ok(
        json!({"containers": n, "serving_ms": ping_ms, "all_listed_running_ms": listed_ms,
              "daemon_rss_kib_after": rss_kib(d.pid())}),
    )
}
