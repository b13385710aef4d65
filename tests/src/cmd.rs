//! Running commands with a time limit, and polling for conditions.

use crate::error::Context;
use crate::{sys, Error};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long to wait for stdout/stderr to reach EOF after the child was reaped
/// (a grandchild that escaped the process group may hold the pipes open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

type Buf = Arc<Mutex<Vec<u8>>>;

fn reader(mut src: impl Read + Send + 'static, buf: Buf) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match src.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&chunk[..n]),
            }
        }
    })
}

fn take(buf: &Buf) -> Vec<u8> {
    std::mem::take(&mut *buf.lock().unwrap_or_else(|p| p.into_inner()))
}

fn join_until(handles: Vec<JoinHandle<()>>, deadline: Instant) {
    for h in handles {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if h.is_finished() {
            let _ = h.join();
        }
    }
}

/// Run `cmd` with stdin from /dev/null and stdout/stderr captured, in a new
/// process group. Returns its `Output` whatever the exit status (check
/// `output.status` yourself). If it runs longer than `timeout`, the whole process
/// group is SIGKILLed and [`Error::Timeout`] carries the output seen so far.
pub fn run_cmd(cmd: &mut Command, timeout: Duration) -> Result<Output, Error> {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = spawn_retrying_etxtbsy(cmd).ctx(|| format!("spawn {desc}"))?;
    let (out, err): (Buf, Buf) = Default::default();
    let mut handles = Vec::new();
    if let Some(s) = child.stdout.take() {
        handles.push(reader(s, out.clone()));
    }
    if let Some(s) = child.stderr.take() {
        handles.push(reader(s, err.clone()));
    }
    let deadline = Instant::now() + timeout;
    let status: Option<ExitStatus> = loop {
        if let Some(st) = child.try_wait().ctx(|| format!("wait for {desc}"))? {
            break Some(st);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    match status {
        Some(status) => {
            join_until(handles, Instant::now() + DRAIN_GRACE);
            Ok(Output {
                status,
                stdout: take(&out),
                stderr: take(&err),
            })
        }
        None => {
            let _ = sys::kill(-(child.id() as i32), libc::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            join_until(handles, Instant::now() + DRAIN_GRACE);
            Err(Error::Timeout {
                command: desc,
                timeout,
                stdout: String::from_utf8_lossy(&take(&out)).into_owned(),
                stderr: String::from_utf8_lossy(&take(&err)).into_owned(),
            })
        }
    }
}

/// `cmd.spawn()`, retried for up to a second while exec fails with ETXTBSY: a
/// binary a test has just copied (e.g. the probe into a rootfs) stays "busy"
/// while a child forked meanwhile by another test thread still holds the copy's
/// write descriptor, until that child execs.
fn spawn_retrying_etxtbsy(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// `stdout` and `stderr` of an `Output` as one readable text (for assertion messages).
pub fn describe(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Poll `cond` every 10 ms until it returns true (→ `true`) or `timeout` passes (→ `false`).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
