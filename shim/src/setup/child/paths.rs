//! Paths inside the container's root, resolved without allocating and
//! without ever leaving the root (openat2 RESOLVE_IN_ROOT), missing parts
//! created on the way; and `/proc/self/fd/N` names for what is open.

use crate::setup::sys;
use nix::errno::Errno;
use std::ffi::CStr;
use std::os::fd::RawFd;

pub(super) const PATH_MAX: usize = 4096;

/// `/proc/self/fd/N` for `fd`, formatted into `buf`.
pub(super) fn fd_path(fd: RawFd, buf: &mut [u8; 32]) -> &CStr {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 12];
    let mut n = fd as u32;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[PREFIX.len() + i] = digits[len - 1 - i];
    }
    buf[PREFIX.len() + len] = 0;
    CStr::from_bytes_with_nul(&buf[..PREFIX.len() + len + 1]).expect("one NUL at the end")
}

/// `bytes` as a C string in `buf`.
pub(super) fn in_buf<'b>(bytes: &[u8], buf: &'b mut [u8; PATH_MAX]) -> Result<&'b CStr, Errno> {
    if bytes.len() >= PATH_MAX || bytes.contains(&0) {
        return Err(Errno::ENAMETOOLONG);
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    CStr::from_bytes_with_nul(&buf[..=bytes.len()]).map_err(|_| Errno::EINVAL)
}

pub(super) const RESOLVE: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// Opens `rel` (relative, e.g. "dev/pts") as an O_PATH fd, resolving every
/// component — symlinks included — as if `root` were `/`, so nothing outside
/// the rootfs can ever be reached.
pub(super) fn open_in_root(root: RawFd, rel: &[u8]) -> Result<RawFd, Errno> {
    let mut buf = [0u8; PATH_MAX];
    if rel.is_empty() {
        return sys::openat2(root, c".", libc::O_PATH, 0, RESOLVE);
    }
    sys::openat2(root, in_buf(rel, &mut buf)?, libc::O_PATH, 0, RESOLVE)
}

/// What to create when a destination does not exist yet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Dir,
    File,
}

/// Like [`open_in_root`], creating missing components (directories, and a
/// final empty file for [`Create::File`]) one at a time, each relative to a
/// parent that was itself resolved inside the root.
pub fn resolve_create(root: RawFd, rel: &[u8], create: Create) -> Result<RawFd, Errno> {
    resolve_create_depth(root, rel, create, 0)
}

/// A dangling symlink on the way is followed by rewriting the path through its
/// target (kept inside the root) and starting over; `depth` bounds link loops.
fn resolve_create_depth(
    root: RawFd,
    rel: &[u8],
    create: Create,
    depth: u32,
) -> Result<RawFd, Errno> {
    if depth > 16 {
        return Err(Errno::ELOOP);
    }
    match open_in_root(root, rel) {
        Err(Errno::ENOENT) => {}
        other => return other,
    }
    let mut start = 0;
    loop {
        let end = rel[start..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(rel.len(), |p| start + p);
        let last = end == rel.len();
        match open_in_root(root, &rel[..end]) {
            Ok(fd) if last => return Ok(fd),
            // SAFETY: just opened here, and only closed: the walk goes on by name.
            Ok(fd) => unsafe { sys::close(fd) },
            Err(Errno::ENOENT) => {
                let parent = if start == 0 {
                    sys::openat2(root, c".", libc::O_PATH, 0, RESOLVE)?
                } else {
                    open_in_root(root, &rel[..start - 1])?
                };
                let mut buf = [0u8; PATH_MAX];
                let name = in_buf(&rel[start..end], &mut buf)?;
                let made = if last && create == Create::File {
                    sys::openat(
                        parent,
                        name,
                        libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW,
                        0o644,
                    )
                    // SAFETY: the fd openat just returned, only closed.
                    .map(|fd| unsafe { sys::close(fd) })
                } else {
                    match sys::mkdirat(parent, name, 0o755) {
                        Err(Errno::EEXIST) => Ok(()),
                        r => r,
                    }
                };
                if made.is_ok() && open_in_root(root, &rel[..end]) == Err(Errno::ENOENT) {
                    // `name` exists but does not resolve: a dangling symlink.
                    let mut link = [0u8; PATH_MAX];
                    let r = sys::readlinkat(parent, name, &mut link);
                    // SAFETY: `parent` was opened by this process above and is not used after this.
                    unsafe { sys::close(parent) };
                    let n = r?;
                    let mut next = [0u8; PATH_MAX];
                    let len = splice_link(&rel[..start], &link[..n], &rel[end..], &mut next)?;
                    return resolve_create_depth(root, &next[..len], create, depth + 1);
                }
                // SAFETY: `parent` was opened by this process above and is not used after this.
                unsafe { sys::close(parent) };
                made?;
                let fd = open_in_root(root, &rel[..end])?;
                if last {
                    return Ok(fd);
                }
                // SAFETY: `fd` was opened by this process above and is not used after this.
                unsafe { sys::close(fd) };
            }
            Err(e) => return Err(e),
        }
        start = end + 1;
    }
}

/// The path that a symlink at `dir/<link>` leads to, followed by `rest`, written
/// into `out` relative to the root: an absolute target starts from the root, a
/// relative one from `dir` (a prefix ending in '/', or empty).
fn splice_link(
    dir: &[u8],
    target: &[u8],
    rest: &[u8],
    out: &mut [u8; PATH_MAX],
) -> Result<usize, Errno> {
    let parts: [&[u8]; 3] = if target.first() == Some(&b'/') {
        [b"", &target[1..], rest]
    } else {
        [dir, target, rest]
    };
    let mut len = 0;
    for p in parts {
        if len + p.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        out[len..len + p.len()].copy_from_slice(p);
        len += p.len();
    }
    // Leading slashes of an absolute target like "//x" carry no meaning.
    let skip = out[..len].iter().take_while(|&&b| b == b'/').count();
    out.copy_within(skip..len, 0);
    Ok(len - skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::symlink;

    #[test]
    fn fd_paths_are_formatted_without_allocating() {
        let mut buf = [0u8; 32];
        assert_eq!(fd_path(0, &mut buf).to_str().unwrap(), "/proc/self/fd/0");
        assert_eq!(
            fd_path(1234, &mut buf).to_str().unwrap(),
            "/proc/self/fd/1234"
        );
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("zctr-child-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn symlinks_never_lead_out_of_the_root() {
        let base = scratch("escape");
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        // An absolute symlink and a ../ symlink that both point at the host.
        symlink(&outside, root.join("abs")).unwrap();
        symlink("../../outside", root.join("rel")).unwrap();
        let rootfd = std::fs::File::open(&root).unwrap();
        for rel in ["abs/x/y", "rel/x/y"] {
            let fd = resolve_create(rootfd.as_raw_fd(), rel.as_bytes(), Create::Dir).unwrap();
            // SAFETY: `fd` came from resolve_create above and is not used after this.
            unsafe { sys::close(fd) };
        }
        for rel in ["abs/file", "rel/file"] {
            let fd = resolve_create(rootfd.as_raw_fd(), rel.as_bytes(), Create::File).unwrap();
            // SAFETY: `fd` came from resolve_create above and is not used after this.
            unsafe { sys::close(fd) };
        }
        // Nothing was created outside; everything landed inside the root.
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("x/y")
            .is_dir());
        assert!(root
            .join(outside.strip_prefix("/").unwrap())
            .join("file")
            .is_file());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn existing_paths_resolve_and_missing_parents_are_made() {
        let base = scratch("create");
        let rootfd = std::fs::File::open(&base).unwrap();
        let fd = resolve_create(rootfd.as_raw_fd(), b"a/b/c", Create::Dir).unwrap();
        assert!(sys::is_dir(fd).unwrap());
        // SAFETY: `fd` came from resolve_create above and is not used after this.
        unsafe { sys::close(fd) };
        let fd = resolve_create(rootfd.as_raw_fd(), b"a/b/c", Create::Dir).unwrap();
        // SAFETY: `fd` came from resolve_create above and is not used after this.
        unsafe { sys::close(fd) };
        let long = CString::new(vec![b'x'; PATH_MAX]).unwrap();
        assert_eq!(
            resolve_create(rootfd.as_raw_fd(), long.to_bytes(), Create::Dir),
            Err(Errno::ENAMETOOLONG)
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
