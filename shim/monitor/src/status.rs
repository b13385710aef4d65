//! The shim's persisted view of its container: `status.json`, replaced atomically.

use common::layout::STATUS_FILE;
use common::state::{ExecRecord, ProcId, ShimStatus, MAX_EXEC_RECORDS};
use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::sys::stat::{self, Mode};
use nix::unistd;
use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Drops the oldest ended exec records past [`MAX_EXEC_RECORDS`]; live
/// ones stay, whatever their number, and the order is kept.
pub(crate) fn trim_exec_records(execs: &mut Vec<ExecRecord>) {
    let ended = execs.iter().filter(|r| r.exit.is_some()).count();
    let mut extra = ended.saturating_sub(MAX_EXEC_RECORDS);
    execs.retain(|r| {
        let old = extra > 0 && r.exit.is_some();
        extra -= old as usize;
        !old
    });
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Start time of `pid` (field 22 of /proc/PID/stat, clock ticks since boot).
pub fn start_time(pid: i32) -> io::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    common::state::parse_proc_stat(&stat)
        .map(|s| s.start_time)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("/proc/{pid}/stat: unparsable"),
            )
        })
}

/// Whether `pid` is stopped (state `T`: SIGSTOP, SIGTSTP, ...).
pub fn is_stopped(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| common::state::parse_proc_stat(&s))
        .is_some_and(|s| s.state == 'T')
}

pub fn proc_id(pid: i32) -> io::Result<ProcId> {
    Ok(ProcId {
        pid,
        start_time: start_time(pid)?,
    })
}

/// The container's state directory, held open from the monitor's start.
/// Every write goes through the fd (`openat`, `renameat`), so it lands in
/// this directory and never in another one later created at the same path
/// (`delete x; run x`): before each write the path is compared with the fd
/// (device and inode), and once it names another directory, or none, the
/// directory is [`Gone`](StateDirError::Gone) for good.
pub struct StateDir {
    path: PathBuf,
    /// `path` as a C string, made once: checking it allocates nothing.
    cpath: CString,
    fd: OwnedFd,
    id: (u64, u64),
}

/// Why `status.json` was not written.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("state directory {0} is gone or was replaced (the container was deleted)")]
    Gone(PathBuf),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl StateDir {
    pub fn open(path: &Path) -> io::Result<StateDir> {
        let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "state dir holds a NUL byte")
        })?;
        let ctx = |e: Errno| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("state directory {}: {}", path.display(), e.desc()),
            )
        };
        let fd = fcntl::open(
            cpath.as_c_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(ctx)?;
        let st = stat::fstat(&fd).map_err(ctx)?;
        Ok(StateDir {
            path: path.to_path_buf(),
            cpath,
            fd,
            id: (st.st_dev, st.st_ino),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path still names the directory held open.
    pub fn current(&self) -> bool {
        stat::stat(self.cpath.as_c_str()).is_ok_and(|st| (st.st_dev, st.st_ino) == self.id)
    }

    /// Writes `status` to `status.json` via a temp file, fsync and rename,
    /// all relative to the directory's fd. On failure the temp file is
    /// removed (on a full disk it would hold the last free blocks) and
    /// `status.json` keeps its previous content.
    pub fn write(&self, status: &ShimStatus) -> Result<(), StateDirError> {
        if !self.current() {
            return Err(StateDirError::Gone(self.path.clone()));
        }
        let written = self.write_tmp(status).and_then(|()| {
            fcntl::renameat(&self.fd, TMP_FILE, &self.fd, STATUS_FILE).map_err(io::Error::from)
        });
        if written.is_err() {
            let _ = unistd::unlinkat(&self.fd, TMP_FILE, unistd::UnlinkatFlags::NoRemoveDir);
        }
        written?;
        if let Ok(d) = fcntl::openat(
            &self.fd,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            let _ = unistd::fsync(&d);
        }
        Ok(())
    }

    fn write_tmp(&self, status: &ShimStatus) -> io::Result<()> {
        let json = serde_json::to_vec(status).map_err(io::Error::other)?;
        let fd = fcntl::openat(
            &self.fd,
            TMP_FILE,
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )?;
        let mut f = fs::File::from(fd);
        f.write_all(&json)?;
        f.sync_all()
    }

    /// Removes `name` from the directory, if it is still the container's.
    pub fn remove(&self, name: &str) {
        if self.current() {
            let _ = unistd::unlinkat(&self.fd, name, unistd::UnlinkatFlags::NoRemoveDir);
        }
    }
}

const TMP_FILE: &str = ".status.json.tmp";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_records_keep_the_live_and_the_last_ended() {
        use common::protocol::ExitStatus;
        use common::state::ExitRecord;
        let rec = |session: u32, ended: bool| ExecRecord {
            session,
            pid: session as i32,
            started_ms: 0,
            tty: false,
            exit: ended.then(|| ExitRecord::new(ExitStatus::Code(0), false, 1)),
        };
        // Session 1 lives on; 2.. ended.
        let mut v: Vec<_> = (1..=MAX_EXEC_RECORDS as u32 + 3)
            .map(|s| rec(s, s != 1))
            .collect();
        trim_exec_records(&mut v);
        assert_eq!(v.len(), MAX_EXEC_RECORDS + 1);
        assert_eq!(v[0].session, 1, "a live record is never dropped");
        assert_eq!(v[1].session, 4, "the oldest ended ones go first");
        assert_eq!(v.last().unwrap().session, MAX_EXEC_RECORDS as u32 + 3);
        let before = v.clone();
        trim_exec_records(&mut v);
        assert_eq!(v, before);
    }

    fn status(id: &str) -> ShimStatus {
        let me = proc_id(std::process::id() as i32).unwrap();
        ShimStatus {
            id: id.into(),
            shim: me,
            init: Some(me),
            state: common::protocol::ShimState::Stopped.into(),
            created_ms: 1,
            started_ms: None,
            exit: None,
            execs: Vec::new(),
        }
    }

    /// `delete x; run x`: the old monitor's directory was removed and a new
    /// one made at the same path. The old writer must not touch it.
    #[test]
    fn a_stale_writer_does_not_touch_a_new_directory_at_the_same_path() {
        let root = std::env::temp_dir().join(format!("zctr-statedir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let dir = root.join("x");
        fs::create_dir_all(&dir).unwrap();
        let old = StateDir::open(&dir).unwrap();
        old.write(&status("old")).unwrap();
        assert!(fs::read_to_string(dir.join(STATUS_FILE))
            .unwrap()
            .contains("\"old\""));
        fs::create_dir(dir.join(common::state::SOCKET_FILE)).ok();
        // Deleted, and a new container created under the same name.
        fs::remove_dir_all(&dir).unwrap();
        fs::create_dir(&dir).unwrap();
        let new = StateDir::open(&dir).unwrap();
        new.write(&status("new")).unwrap();
        fs::write(dir.join(common::state::SOCKET_FILE), "").unwrap();
        assert!(!old.current());
        assert!(matches!(
            old.write(&status("old")),
            Err(StateDirError::Gone(_))
        ));
        old.remove(common::state::SOCKET_FILE);
        let text = fs::read_to_string(dir.join(STATUS_FILE)).unwrap();
        assert!(
            text.contains("\"new\"") && !text.contains("\"old\""),
            "{text}"
        );
        assert!(dir.join(common::state::SOCKET_FILE).exists());
        assert!(!dir.join(TMP_FILE).exists());
        // Renamed away: gone too (the path names nothing).
        fs::rename(&dir, root.join("y")).unwrap();
        assert!(!new.current());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn start_time_of_a_live_process() {
        assert!(start_time(std::process::id() as i32).unwrap() > 0);
    }
}
