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
    let fd = sys::openat2_owned(
        std::os::fd::AsRawFd::as_raw_fd(&dirfd),
        &name_c,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(errno)?;
    let file = std::fs::File::from(fd);
    let meta = file
        .metadata()
        .map_err(|e| fail(&path, e.raw_os_error().unwrap_or(0), e.to_string()))?;
    use std::os::unix::fs::MetadataExt;
    if !meta.is_file() {
        return Err(fail(
            &path,
            libc::EINVAL,
            format!("{}, not a regular file", kind(meta.mode())),
        ));
    }
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
}
