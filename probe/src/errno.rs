//! errno numbers to their symbolic names, and the JSON shape of a failed call.

use serde::Serialize;
use std::io;

/// Symbolic name of an errno value ("ENOENT"), or `None` if unknown.
pub fn name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::EPIPE => "EPIPE",
        libc::ERANGE => "ERANGE",
        libc::EDEADLK => "EDEADLK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ELOOP => "ELOOP",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EDQUOT => "EDQUOT",
        libc::ENOKEY => "ENOKEY",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        _ => return None,
    })
}

/// A failed call as reported in JSON: `{"errno": 2, "error": "ENOENT"}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Errno {
    /// The raw errno number (-1 if the error carried none).
    pub errno: i32,
    /// Symbolic name ("ENOENT"); `E<number>` when unknown, or the error text without errno.
    pub error: String,
}

impl From<&io::Error> for Errno {
    fn from(e: &io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => Errno {
                errno: n,
                error: name(n).map_or_else(|| format!("E{n}"), str::to_string),
            },
            None => Errno {
                errno: -1,
                error: e.to_string(),
            },
        }
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.error, self.errno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_conversion() {
        assert_eq!(name(libc::ENOENT), Some("ENOENT"));
        assert_eq!(name(100_000), None);
        let e = Errno::from(&io::Error::from_raw_os_error(libc::EROFS));
        assert_eq!(e.errno, 30);
        assert_eq!(e.error, "EROFS");
        assert_eq!(e.to_string(), "EROFS (30)");
        let odd = Errno::from(&io::Error::from_raw_os_error(4000));
        assert_eq!(odd.error, "E4000");
    }
}
