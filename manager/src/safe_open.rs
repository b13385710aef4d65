//! Reading a file whose path a container or a client controls (a rootfs's
//! `/etc/passwd`, an image meta file) without letting that path hurt the
//! daemon. Every read here:
//!
//! 1. resolves the path to an `O_PATH` descriptor, which never opens the
//!    object itself (no FIFO wait, no device `open` side effect); below a
//!    container's root with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
//!    | RESOLVE_NO_XDEV)`, so `..` and absolute symlinks stay inside that
//!    root and no other mount (a container's FUSE or NFS mount) is entered;
//! 2. refuses anything but a regular file (`fstat` of that descriptor);
//! 3. re-opens that same inode through `/proc/self/fd/N` with
//!    `O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC`: the object read is
//!    the one checked, whatever is renamed meanwhile;
//! 4. refuses a file larger than the caller's cap (checked on `fstat` and
//!    again while reading, for a file that grows).
//!
//! The work is blocking: callers run it on the blocking pool, never on the
//! async runtime.

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest `/etc/passwd` read from a container for `ps` (1 MiB: some ten
/// thousand users).
pub const PASSWD_MAX: u64 = 1 << 20;
/// Largest image meta file (64 KiB: far above any real meta).
pub const META_MAX: u64 = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum SafeOpenError {
    #[error("{}: cannot open: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("{}: not a regular file (a {kind})", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{}: larger than the limit of {max} bytes", path.display())]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
}

/// Reads the host file `path` (symlinks followed) if it is a regular file of
/// at most `max` bytes.
pub fn read_host_file(path: &Path, max: u64) -> Result<Vec<u8>, SafeOpenError> {
    let fd = open_path(path, OFlag::empty())?;
    read_checked(fd, path, max)
}

/// Opens the directory `path` as a root for [`read_in_root`] (`O_PATH`; a
/// `/proc/PID/root` link is followed to that process's root).
pub fn open_root(path: &Path) -> Result<OwnedFd, SafeOpenError> {
    open_path(path, OFlag::O_DIRECTORY)
}

/// `open(path, O_PATH | O_CLOEXEC | extra)`. Not through `std::fs`: on musl
/// `O_ACCMODE` includes `O_PATH`, and std masks it out of custom flags.
fn open_path(path: &Path, extra: OFlag) -> Result<OwnedFd, SafeOpenError> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_CLOEXEC | extra,
        Mode::empty(),
    )
    .map_err(|e| SafeOpenError::Open {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// Reads `rel` resolved inside `root` as if `root` were `/`, if it is a
/// regular file of at most `max` bytes on the root's own mount.
pub fn read_in_root(root: BorrowedFd<'_>, rel: &Path, max: u64) -> Result<Vec<u8>, SafeOpenError> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .mode(Mode::empty())
        .resolve(
            ResolveFlag::RESOLVE_IN_ROOT
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        );
    let fd = openat2(root, rel, how).map_err(|e| SafeOpenError::Open {
        path: rel.to_path_buf(),
        source: e.into(),
    })?;
    read_checked(fd, rel, max)
}

/// Steps 2 to 4 on an `O_PATH` descriptor.
fn read_checked(fd: OwnedFd, path: &Path, max: u64) -> Result<Vec<u8>, SafeOpenError> {
    let not_regular = |ft: std::fs::FileType| SafeOpenError::NotRegular {
        path: path.to_path_buf(),
        kind: kind(ft),
    };
    let read_err = |source| SafeOpenError::Read {
        path: path.to_path_buf(),
        source,
    };
    let pathfd = File::from(fd);
    let meta = pathfd.metadata().map_err(read_err)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let file = reopen(pathfd.as_fd()).map_err(|source| SafeOpenError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.file_type().is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let too_large = || SafeOpenError::TooLarge {
        path: path.to_path_buf(),
        max,
    };
    if meta.len() > max {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut buf).map_err(read_err)?;
    if buf.len() as u64 > max {
        return Err(too_large());
    }
    Ok(buf)
}

/// Opens for reading the very inode an `O_PATH` descriptor refers to.
fn reopen(fd: BorrowedFd<'_>) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    fn mkfifo(p: &Path) {
        nix::unistd::mkfifo(p, Mode::from_bits_truncate(0o600)).unwrap();
    }

    #[test]
    fn host_files_are_regular_and_capped() {
        let t = TempDir::new("safe-host");
        let ok = t.path().join("ok");
        std::fs::write(&ok, b"hello").unwrap();
        assert_eq!(read_host_file(&ok, 5).unwrap(), b"hello");
        let e = read_host_file(&ok, 4).unwrap_err();
        assert!(matches!(e, SafeOpenError::TooLarge { max: 4, .. }), "{e}");
        assert!(e.to_string().contains(&*ok.to_string_lossy()), "{e}");

        let fifo = t.path().join("fifo");
        mkfifo(&fifo);
        let link = t.path().join("link");
        symlink(&fifo, &link).unwrap();
        let start = Instant::now();
        for p in [&fifo, &link] {
            let e = read_host_file(p, 10).unwrap_err();
            assert!(
                matches!(e, SafeOpenError::NotRegular { kind: "FIFO", .. }),
                "{e}"
            );
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        let e = read_host_file(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        let e = read_host_file(t.path(), 10).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let e = read_host_file(&t.path().join("missing"), 10).unwrap_err();
        assert!(matches!(e, SafeOpenError::Open { .. }), "{e}");
    }

    #[test]
    fn in_root_paths_stay_in_the_root() {
        let t = TempDir::new("safe-root");
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(t.path().join("outside"), b"host secret").unwrap();
        std::fs::write(root.join("inside"), b"container file").unwrap();
        let dir = open_root(&root).unwrap();
        let passwd = root.join("etc/passwd");
        for target in [
            "../../outside",
            "/outside",
            "../../../../../inside",
            "/inside",
        ] {
            let _ = std::fs::remove_file(&passwd);
            symlink(target, &passwd).unwrap();
            match read_in_root(dir.as_fd(), Path::new("etc/passwd"), 100) {
                Ok(b) => assert_eq!(b, b"container file", "{target}"),
                Err(e) => assert!(matches!(e, SafeOpenError::Open { .. }), "{target}: {e}"),
            }
        }
        let _ = std::fs::remove_file(&passwd);
        mkfifo(&passwd);
        let e = read_in_root(dir.as_fd(), Path::new("etc/passwd"), 100).unwrap_err();
        assert!(matches!(e, SafeOpenError::NotRegular { .. }), "{e}");
        std::fs::remove_file(&passwd).unwrap();
        symlink("/proc/self/root/etc/hostname", &passwd).unwrap();
        assert!(read_in_root(dir.as_fd(), Path::new("etc/passwd"), 100).is_err());
    }
}
