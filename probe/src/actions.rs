//! The subcommands other than `report`.

use crate::errno::Errno;
use crate::sys::{self, Forked};
use serde_json::json;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Print one line to stdout and flush it (so it reaches a log pipe immediately).
pub fn out(line: &str) -> io::Result<()> {
    let mut o = io::stdout().lock();
    writeln!(o, "{line}")?;
    o.flush()
}

/// Sleep for `secs` (forever if `None`).
pub fn sleep(secs: Option<Duration>) {
    match secs {
        Some(d) => std::thread::sleep(d),
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}

/// `sleep SECS [--on-term CODE]`
pub fn sleep_cmd(secs: Option<Duration>, on_term: Option<i32>) -> io::Result<()> {
    if let Some(code) = on_term {
        sys::exit_on_signal(libc::SIGTERM, code)?;
        sys::exit_on_signal(libc::SIGINT, code)?;
    }
    sleep(secs);
    Ok(())
}

/// `print TEXT`
pub fn print(text: &str) -> io::Result<()> {
    out(text)?;
    let mut e = io::stderr().lock();
    writeln!(e, "{text}")?;
    e.flush()
}

/// `orphans N SECS`: each child forks a grandchild, reports its pid and exits.
pub fn orphans(children: u32, secs: Duration, hold: Duration, reap: bool) -> io::Result<()> {
    let (mut rx, tx) = UnixStream::pair()?;
    let mut child_pids = Vec::new();
    for _ in 0..children {
        match sys::fork()? {
            Forked::Child => {
                drop(rx);
                let code = match sys::fork() {
                    Ok(Forked::Child) => {
                        drop(tx);
                        sys::detach_stdio();
                        std::thread::sleep(secs);
                        sys::exit_now(0);
                    }
                    Ok(Forked::Parent(gc)) => {
                        let mut tx = &tx;
                        i32::from(tx.write_all(&gc.to_le_bytes()).is_err())
                    }
                    Err(_) => 1,
                };
                sys::exit_now(code);
            }
            Forked::Parent(pid) => child_pids.push(pid),
        }
    }
    drop(tx);
    for &pid in &child_pids {
        sys::wait(pid, false)?;
    }
    let mut buf = Vec::new();
    rx.read_to_end(&mut buf)?;
    let grandchildren: Vec<i32> = buf
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    out(
        &json!({"event": "spawned", "children": child_pids, "grandchildren": grandchildren})
            .to_string(),
    )?;

    let deadline = Instant::now() + hold;
    let mut reaped = Vec::new();
    while Instant::now() < deadline {
        if reap {
            while let Ok(Some(pid)) = sys::wait(-1, true) {
                reaped.push(pid);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(Duration::from_millis(20).min(left));
    }
    out(&json!({"event": "done", "reaped": reaped}).to_string())
}

/// `alloc MIB [--touch]`: allocate in 1 MiB chunks, then hold.
pub fn alloc(mib: u64, touch: bool, hold: Option<Duration>) -> io::Result<()> {
    const MIB: usize = 1 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for n in 1..=mib {
        let chunk = if touch {
            vec![0xa5u8; MIB]
        } else {
            Vec::with_capacity(MIB)
        };
        chunks.push(std::hint::black_box(chunk));
        out(&format!("allocated {n} MiB"))?;
    }
    out(&format!("done {mib} MiB"))?;
    sleep(hold);
    drop(std::hint::black_box(chunks));
    Ok(())
}

/// `counter PATH`: write 1, 2, 3, ... every 100 ms (temp file + rename).
pub fn counter(path: &str) -> io::Result<()> {
    let tmp = format!("{path}.tmp");
    let mut n: u64 = 0;
    loop {
        n += 1;
        std::fs::write(&tmp, format!("{n}\n"))?;
        std::fs::rename(&tmp, path)?;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `forkbomb N`: fork waiting children until N or the first failure.
pub fn forkbomb(count: u32, hold: Duration) -> io::Result<()> {
    let mut pids = Vec::new();
    let mut failure: Option<Errno> = None;
    for _ in 0..count {
        match sys::fork() {
            Ok(Forked::Child) => {
                if sys::die_with_parent().is_err() {
                    sys::exit_now(1);
                }
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            Ok(Forked::Parent(pid)) => pids.push(pid),
            Err(e) => {
                failure = Some(Errno::from(&e));
                break;
            }
        }
    }
    let result = json!({
        "requested": count,
        "succeeded": pids.len(),
        "errno": failure.as_ref().map(|f| f.errno),
        "error": failure.as_ref().map(|f| f.error.clone()),
    });
    let printed = out(&result.to_string());
    std::thread::sleep(hold);
    for &pid in &pids {
        let _ = sys::kill(pid, libc::SIGKILL);
    }
    for &pid in &pids {
        let _ = sys::wait(pid, false);
    }
    printed
}

/// Makes `dir`, then `depth` directories named `d`, each inside the last:
/// one process, relative `mkdir` + `chdir`, so no path ever grows long.
/// Prints `deeptree=DEPTH` when done.
pub fn deep_tree(dir: &str, depth: u32) -> io::Result<()> {
    std::fs::create_dir(dir)?;
    std::env::set_current_dir(dir)?;
    for _ in 0..depth {
        std::fs::create_dir("d")?;
        std::env::set_current_dir("d")?;
    }
    out(&format!("deeptree={depth}"))
}
