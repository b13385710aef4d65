//! What the manager reads from `/proc`: start times (so a reused pid is never
//! taken for a live shim) and the per-process facts `ps` shows.

use crate::safe_open::{self, SafeOpenError, PASSWD_MAX};
use common::state::{parse_proc_stat, ProcId};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

/// Field 22 of `/proc/PID/stat` (start time in clock ticks since boot).
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_proc_stat(&stat).map(|s| s.start_time)
}

/// The process identity of `pid` now, if it exists.
pub fn proc_id(pid: i32) -> Option<ProcId> {
    start_time(pid).map(|start_time| ProcId { pid, start_time })
}

/// Whether `p` is still the same live process (same pid and start time, not a zombie).
pub fn is_alive(p: &ProcId) -> bool {
    match fs::read_to_string(format!("/proc/{}/stat", p.pid))
        .ok()
        .as_deref()
        .and_then(parse_proc_stat)
    {
        Some(s) => s.start_time == p.start_time && s.state != 'Z' && s.state != 'X',
        None => false,
    }
}

/// One process of a container, as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Pid on the host.
    pub pid: i32,
    /// Pid inside the container's pid namespace (last NSpid entry).
    pub ns_pid: Option<i32>,
    /// Real uid on the host.
    pub uid: Option<u32>,
    /// Real uid inside the container (through the process's uid_map).
    pub ns_uid: Option<u32>,
    /// User name of `ns_uid` from the container's /etc/passwd, if found.
    pub user: Option<String>,
    /// State letter (R, S, D, T, Z, ...).
    pub state: String,
    pub cmdline: Vec<String>,
}

/// Longest command line `ps` reads of one process (the rest is cut off).
const CMDLINE_MAX: u64 = 64 << 10;

/// What `ps` shows about `pids`, the processes of one container. User names
/// come from the `/etc/passwd` that `root_pid` (the init when it is among
/// `pids`, else the first of them) sees as its own: read through
/// `/proc/PID/root` with [`safe_open::read_in_root`], so a hostile passwd
/// (a symlink out, a FIFO, a device, a huge file) only costs the names
/// (`user` is then `null` and clients show the number).
pub fn container_processes(id: &str, pids: &[i32], init: Option<i32>) -> Vec<ProcessInfo> {
    let root_pid = init
        .filter(|i| pids.contains(i))
        .or_else(|| pids.first().copied());
    let passwd = root_pid.and_then(|p| match container_passwd(p) {
        Ok(text) => Some(text),
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "ps: user names not shown");
            None
        }
    });
    pids.iter()
        .filter_map(|p| process_info(*p, passwd.as_deref()))
        .collect()
}

/// The `/etc/passwd` that process `pid` sees.
fn container_passwd(pid: i32) -> Result<String, SafeOpenError> {
    container_file(pid, "etc/passwd")
}

/// The text of `rel` (`etc/passwd`, `etc/group`) as process `pid` sees it:
/// resolved inside its root with [`safe_open::read_in_root`], at most
/// [`PASSWD_MAX`] bytes. Blocking.
pub fn container_file(pid: i32, rel: &str) -> Result<String, SafeOpenError> {
    let root = safe_open::open_root(Path::new(&format!("/proc/{pid}/root")))?;
    let bytes = safe_open::read_in_root(root.as_fd(), Path::new(rel), PASSWD_MAX)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Reads what `ps` shows about `pid`; `passwd` (the text of the
/// container's `/etc/passwd`) is used to name the user.
pub fn process_info(pid: i32, passwd: Option<&str>) -> Option<ProcessInfo> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ns_pid =
        status_field(&status, "NSpid").and_then(|v| v.split_whitespace().last()?.parse().ok());
    let uid: Option<u32> =
        status_field(&status, "Uid").and_then(|v| v.split_whitespace().next()?.parse().ok());
    let state = status_field(&status, "State")
        .and_then(|v| v.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let ns_uid = uid.and_then(|u| {
        let map = fs::read_to_string(format!("/proc/{pid}/uid_map")).ok()?;
        map_to_inside(&map, u)
    });
    let user = match (ns_uid, passwd) {
        (Some(u), Some(p)) => passwd_name(p, u),
        _ => None,
    };
    let cmdline = read_capped(&format!("/proc/{pid}/cmdline"), CMDLINE_MAX)
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default();
    Some(ProcessInfo {
        pid,
        ns_pid,
        uid,
        ns_uid,
        user,
        state,
        cmdline,
    })
}

/// At most `max` bytes of a /proc file (these report size 0, so no stat check).
fn read_capped(path: &str, max: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    fs::File::open(path)?.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then_some(v.trim())
    })
}

/// Maps a host uid to the uid inside, given a uid_map as read from the host
/// (`inside outside count` lines).
pub fn map_to_inside(uid_map: &str, host: u32) -> Option<u32> {
    uid_map.lines().find_map(|l| {
        let v: Vec<u64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let (inside, outside, count) = (*v.first()?, *v.get(1)?, *v.get(2)?);
        let h = u64::from(host);
        (h >= outside && h < outside + count).then(|| (inside + h - outside) as u32)
    })
}

fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2)?.parse::<u32>().ok()? == uid).then(|| f[0].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = proc_id(std::process::id() as i32).unwrap();
        assert!(is_alive(&me));
        assert!(!is_alive(&ProcId {
            pid: me.pid,
            start_time: me.start_time + 1
        }));
        let info = process_info(me.pid, None).unwrap();
        assert_eq!(info.pid, me.pid);
        assert!(!info.cmdline.is_empty());
    }

    #[test]
    fn uid_maps_and_passwd() {
        let map = "         0     100000      65536\n";
        assert_eq!(map_to_inside(map, 100000), Some(0));
        assert_eq!(map_to_inside(map, 101000), Some(1000));
        assert_eq!(map_to_inside(map, 5), None);
        let pw = "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/:/bin/sh\n";
        assert_eq!(passwd_name(pw, 1000).as_deref(), Some("web"));
        assert_eq!(passwd_name(pw, 7), None);
    }
}
