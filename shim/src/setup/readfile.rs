//! Reading a file whose path a client chose (the bundle's `config.json`, a
//! state dir's `status.json`): opened below its directory with
//! RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS (a symlink cannot lead out of it),
//! non-blocking (a FIFO cannot hang the shim), regular files only (checked on
//! the open file), and never more than a cap read into memory (`/dev/zero` or
//! a huge file cannot exhaust it). Every error names the file.

use crate::setup::sys;
use nix::errno::Errno;
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub errno: i32,
    pub reason: String,
}

fn fail(path: &Path, errno: i32, reason: impl Into<String>) -> ReadError {
    ReadError {
        path: path.to_path_buf(),
        errno,
        reason: reason.into(),
    }
}

fn kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        libc::S_IFDIR => "a directory",
        libc::S_IFLNK => "a symlink",
        _ => "not a regular file",
    }
}

/// Reads `dir/name` (`name` one relative path, resolved inside `dir`), at
/// most `cap` bytes.
pub fn read_in(dir: &Path, name: &str, cap: u64) -> Result<Vec<u8>, ReadError> {
    let path = dir.join(name);
    let c = |p: &[u8]| CString::new(p).map_err(|_| fail(&path, libc::EINVAL, "holds a NUL byte"));
    let dir_c = c(dir.as_os_str().as_bytes())?;
    let name_c = c(name.as_bytes())?;
    let errno = |e: Errno| fail(&path, e as i32, e.desc());
    let dirfd = sys::openat_owned(libc::AT_FDCWD, &dir_c, libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(|e| {
            fail(
                &path,
                e as i32,
                format!("directory {}: {}", dir.display(), e.desc()),
            )
        })?;
    // O_PATH first: opening a FIFO or a device for reading has side effects
    // (a blocked writer released, a tape rewound); only a regular file is
    // opened for reading, through the O_PATH fd (the same inode).
    let pathfd = sys::openat2_owned(
        std::os::fd::AsRawFd::as_raw_fd(&dirfd),
        &name_c,
        libc::O_PATH,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(errno)?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&pathfd);
    let st = sys::fstat(raw).map_err(errno)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(fail(
            &path,
            libc::EINVAL,
            format!("{}, not a regular file", kind(st.st_mode)),
        ));
    }
    let proc_path = CString::new(format!("/proc/self/fd/{raw}")).expect("no NUL");
    let fd = sys::openat_owned(
        libc::AT_FDCWD,
        &proc_path,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )
    .map_err(|e| fail(&path, e as i32, format!("reopen: {}", e.desc())))?;
    drop(pathfd);
    let file = std::fs::File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| fail(&path, e.raw_os_error().unwrap_or(0), e.to_string()))?;
    if meta.len() > cap {
        return Err(fail(
            &path,
            libc::EFBIG,
            format!("{} bytes, more than the {cap} allowed", meta.len()),
        ));
    }
    let mut out = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut out)
        .map_err(|e| fail(&path, e.raw_os_error().unwrap_or(0), e.to_string()))?;
    if out.len() as u64 > cap {
        return Err(fail(
            &path,
            libc::EFBIG,
            format!("grew past the {cap} bytes allowed while read"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("zctr-readfile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn hostile_files_fail_fast_naming_the_file() {
        let d = scratch("hostile");
        std::fs::write(d.join("ok"), b"{}").unwrap();
        assert_eq!(read_in(&d, "ok", 10).unwrap(), b"{}");
        std::os::unix::fs::symlink("/dev/zero", d.join("zero")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/hostname", d.join("up")).unwrap();
        nix::unistd::mkfifo(
            &d.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::File::create(d.join("big"))
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        for (name, needle) in [
            ("zero", "No such file"),
            ("up", "No such file"),
            ("fifo", "a FIFO, not a regular file"),
            ("big", "more than the 10 allowed"),
            ("missing", "No such file"),
        ] {
            let e = read_in(&d, name, 10).unwrap_err().to_string();
            assert!(e.starts_with(&d.join(name).display().to_string()), "{e}");
            assert!(e.contains(needle), "{name}: {e}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Opening a FIFO for reading releases a writer blocked in open(2): the
    /// check must not open it. A device node is refused the same way.
    #[test]
    fn a_fifo_or_device_is_refused_without_being_opened() {
        let d = scratch("noopen");
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let f = std::fs::OpenOptions::new().write(true).open(&fifo);
                tx.send(()).unwrap();
                f
            })
        };
        // Let the writer block in open().
        std::thread::sleep(std::time::Duration::from_millis(100));
        let e = read_in(&d, "fifo", 10).unwrap_err().to_string();
        assert!(e.contains("a FIFO, not a regular file"), "{e}");
        let released = rx
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_ok();
        // Release the writer (if still blocked) before asserting.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        writer.join().unwrap().unwrap();
        drop(reader);
        assert!(!released, "read_in opened the FIFO for reading");
        // A character device (the same as /dev/zero) below the directory.
        if zctr_tests::skip::need_root() {
            nix::sys::stat::mknod(
                &d.join("zero"),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(1, 5),
            )
            .unwrap();
            let e = read_in(&d, "zero", 10).unwrap_err().to_string();
            assert!(e.contains("a character device, not a regular file"), "{e}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
