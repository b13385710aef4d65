//! Running commands with a time measurement, and reading /proc.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn scratch(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "zctr-bench-{}-{}.{what}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Runs `cmd` (stdin null) with stdout and stderr in files, never pipes: a
/// container or monitor a command leaves behind (`runc create`, conmon,
/// `zctr-shim create`) inherits them and would hold a pipe open for its
/// whole life. Returns the wall time in ms and stdout; fails unless it
/// exits 0, with its stderr.
fn run(cmd: &mut Command) -> Result<(f64, String)> {
    let (out_path, err_path) = (scratch("stdout"), scratch("stderr"));
    let files = File::create(&out_path).and_then(|o| Ok((o, File::create(&err_path)?)));
    let (out, err) = files.context("creating scratch files")?;
    let t0 = Instant::now();
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("running {cmd:?}"));
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    let status = status?;
    if !status.success() {
        bail!("{cmd:?}: {status}: {}", stderr.trim());
    }
    Ok((ms, stdout))
}

/// Runs `cmd` (see [`run`]); returns the wall time in ms.
pub fn timed(cmd: &mut Command) -> Result<f64> {
    run(cmd).map(|(ms, _)| ms)
}

/// Runs `cmd` (see [`run`]); returns its stdout.
pub fn output(cmd: &mut Command) -> Result<String> {
    run(cmd).map(|(_, out)| out)
}

/// Polls `cond` every 10 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn field_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// VmRSS of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    field_kib(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        "VmRSS",
    )
}

/// Pss of `pid` in KiB (smaps_rollup).
pub fn pss_kib(pid: u32) -> Option<u64> {
    field_kib(
        &std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?,
        "Pss",
    )
}

/// utime + stime of `pid` in clock ticks (USER_HZ, 100 on Linux).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat; `after` starts at field 3.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Seconds per clock tick in /proc/PID/stat (USER_HZ is 100 on Linux).
pub const TICK_S: f64 = 0.01;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(rss_kib(me).unwrap() > 0);
        assert!(pss_kib(me).unwrap() > 0);
        assert!(cpu_ticks(me).is_some());
        assert_eq!(field_kib("VmRSS:\t  1234 kB\n", "VmRSS"), Some(1234));
    }
}
