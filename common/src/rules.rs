//! Value rules shared by [`crate::config`] and [`crate::meta`]: paths, env
//! entries, user ids, mount options. Each check returns a [`Violation`] (the
//! reason); the caller's error adds the field path.

use std::path::{Component, Path};
use thiserror::Error;

/// Why a value was rejected. Carried by `ConfigError`, `MetaError` and
/// `SpecError` next to the field path it applies to.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Violation {
    #[error("must not be empty")]
    Empty,
    #[error("must not contain a NUL byte")]
    Nul,
    #[error("must not contain '='")]
    ContainsEquals,
    #[error("must be an absolute path, got {path:?}")]
    NotAbsolute { path: String },
    #[error("must not contain \"..\" components, got {path:?}")]
    DotDot { path: String },
    #[error("must be normalized, got {path:?}, write {normalized:?}")]
    NotNormalized { path: String, normalized: String },
    #[error("must not be the container root \"/\"")]
    IsRoot,
    #[error("{value} is out of range {range}")]
    OutOfRange { value: String, range: &'static str },
    #[error("{got:?} is not {expected}")]
    Format { got: String, expected: &'static str },
    #[error("{len} characters is longer than the maximum of {max}")]
    TooLong { len: usize, max: usize },
    #[error("unknown capability {name:?} (expected a CAP_* name, with or without the prefix)")]
    UnknownCapability { name: String },
    #[error("capability {name} is both added and dropped")]
    AddedAndDropped { name: String },
    #[error("duplicate {what} {value:?}")]
    Duplicate { what: &'static str, value: String },
    #[error("not allowed: {reason}")]
    NotAllowed { reason: &'static str },
    #[error("required: {reason}")]
    Missing { reason: &'static str },
    #[error("version {found} is not supported (supported: {supported})")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("id {id} is not mapped into the user namespace (mapped: 0..{size})")]
    NotMapped { id: u32, size: u32 },
}

/// Mount points of the profiles' base mounts. A volume, extra mount or meta
/// mount may not use them (nor anything under `/proc`).
pub const RESERVED_DESTINATIONS: [&str; 7] = [
    "/proc",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/sys",
    "/sys/fs/cgroup",
];

/// An absolute host path without NUL bytes or `..` components.
pub(crate) fn check_host_path(p: &Path) -> Result<(), Violation> {
    let s = p.to_string_lossy();
    if s.is_empty() {
        return Err(Violation::Empty);
    }
    if s.contains('\0') {
        return Err(Violation::Nul);
    }
    if !p.is_absolute() {
        return Err(Violation::NotAbsolute {
            path: s.into_owned(),
        });
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(Violation::DotDot {
            path: s.into_owned(),
        });
    }
    Ok(())
}

/// A path inside the container: absolute, no NUL, no `..`, and normalized (no
/// empty or `.` components, no trailing `/` except for the root itself).
pub(crate) fn check_container_path(s: &str) -> Result<(), Violation> {
    if s.is_empty() {
        return Err(Violation::Empty);
    }
    if s.contains('\0') {
        return Err(Violation::Nul);
    }
    if !s.starts_with('/') {
        return Err(Violation::NotAbsolute { path: s.into() });
    }
    if s.split('/').any(|c| c == "..") {
        return Err(Violation::DotDot { path: s.into() });
    }
    let normalized = normalize(s);
    if normalized != s {
        return Err(Violation::NotNormalized {
            path: s.into(),
            normalized,
        });
    }
    Ok(())
}

/// A mount destination: a container path that is not `/`.
pub(crate) fn check_mount_destination(s: &str) -> Result<(), Violation> {
    check_container_path(s)?;
    if s == "/" {
        return Err(Violation::IsRoot);
    }
    Ok(())
}

/// A destination of a user-provided mount (volume, extra mount, meta mount): a
/// mount destination that is not one of [`RESERVED_DESTINATIONS`] and not
/// under `/proc`.
pub(crate) fn check_user_mount_destination(s: &str) -> Result<(), Violation> {
    check_mount_destination(s)?;
    if s.starts_with("/proc/") {
        return Err(Violation::NotAllowed {
            reason: "mounts under /proc could defeat its masking",
        });
    }
    if RESERVED_DESTINATIONS.contains(&s) {
        return Err(Violation::NotAllowed {
            reason: "the profile mounts its own filesystem there",
        });
    }
    Ok(())
}

/// `s` (absolute, without `..`) with empty and `.` components removed.
fn normalize(s: &str) -> String {
    let parts: Vec<&str> = s
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// Environment variable name: non-empty, no `=`, no NUL.
pub(crate) fn check_env_key(k: &str) -> Result<(), Violation> {
    if k.is_empty() {
        return Err(Violation::Empty);
    }
    if k.contains('=') {
        return Err(Violation::ContainsEquals);
    }
    if k.contains('\0') {
        return Err(Violation::Nul);
    }
    Ok(())
}

/// Environment variable value: no NUL.
pub(crate) fn check_env_value(v: &str) -> Result<(), Violation> {
    if v.contains('\0') {
        return Err(Violation::Nul);
    }
    Ok(())
}

/// Field path of an env entry, e.g. `env["PATH"]`.
pub(crate) fn env_field(prefix: &str, key: &str) -> String {
    format!("{prefix}[{key:?}]")
}

const USER_FORMAT: &str = "a numeric uid[:gid] such as \"1000\" or \"1000:1000\"";

/// Parses a numeric `uid[:gid]`; a missing gid equals the uid.
pub(crate) fn parse_user(s: &str) -> Result<(u32, u32), Violation> {
    let bad = || Violation::Format {
        got: s.into(),
        expected: USER_FORMAT,
    };
    let num = |t: &str| -> Result<u32, Violation> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<u32>().map_err(|_| bad())
    };
    match s.split_once(':') {
        Some((u, g)) => Ok((num(u)?, num(g)?)),
        None => {
            let u = num(s)?;
            Ok((u, u))
        }
    }
}

/// One mount option: non-empty, no `,` (one option per entry), no NUL.
pub(crate) fn check_mount_option(o: &str) -> Result<(), Violation> {
    if o.is_empty() {
        return Err(Violation::Empty);
    }
    if o.contains('\0') {
        return Err(Violation::Nul);
    }
    if o.contains(',') {
        return Err(Violation::Format {
            got: o.into(),
            expected: "a single mount option (one per list entry, no ',')",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths() {
        assert!(check_host_path(Path::new("/srv/data")).is_ok());
        assert_eq!(check_host_path(Path::new("")), Err(Violation::Empty));
        assert!(matches!(
            check_host_path(Path::new("srv")),
            Err(Violation::NotAbsolute { .. })
        ));
        assert!(matches!(
            check_host_path(Path::new("/srv/../etc")),
            Err(Violation::DotDot { .. })
        ));
        assert_eq!(check_host_path(Path::new("/a\0b")), Err(Violation::Nul));
    }

    #[test]
    fn container_paths() {
        assert!(check_container_path("/").is_ok());
        assert!(check_container_path("/data/x").is_ok());
        assert!(matches!(
            check_container_path("data"),
            Err(Violation::NotAbsolute { .. })
        ));
        assert!(matches!(
            check_container_path("/a/../b"),
            Err(Violation::DotDot { .. })
        ));
        for (bad, good) in [("/a//b", "/a/b"), ("/a/./b", "/a/b"), ("/a/", "/a")] {
            assert_eq!(
                check_container_path(bad),
                Err(Violation::NotNormalized {
                    path: bad.into(),
                    normalized: good.into()
                })
            );
        }
        assert_eq!(check_mount_destination("/"), Err(Violation::IsRoot));
        assert!(check_user_mount_destination("/data").is_ok());
        assert!(check_user_mount_destination("/dev/fuse").is_ok());
        for bad in RESERVED_DESTINATIONS
            .iter()
            .chain(&["/proc/sys", "/proc/1/x"])
        {
            assert!(
                matches!(
                    check_user_mount_destination(bad),
                    Err(Violation::NotAllowed { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn env_rules() {
        assert!(check_env_key("A_B").is_ok());
        assert_eq!(check_env_key(""), Err(Violation::Empty));
        assert_eq!(check_env_key("A=B"), Err(Violation::ContainsEquals));
        assert_eq!(check_env_key("A\0"), Err(Violation::Nul));
        assert!(check_env_value("").is_ok());
        assert!(check_env_value("a=b c").is_ok());
        assert_eq!(check_env_value("a\0"), Err(Violation::Nul));
    }

    #[test]
    fn users() {
        assert_eq!(parse_user("0"), Ok((0, 0)));
        assert_eq!(parse_user("1000"), Ok((1000, 1000)));
        assert_eq!(parse_user("1000:50"), Ok((1000, 50)));
        for bad in [
            "",
            "root",
            "1000:",
            ":5",
            "1:2:3",
            "-1",
            "+1",
            "4294967296",
            " 1",
        ] {
            assert!(
                matches!(parse_user(bad), Err(Violation::Format { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn mount_options() {
        assert!(check_mount_option("size=64m").is_ok());
        assert_eq!(check_mount_option(""), Err(Violation::Empty));
        assert!(check_mount_option("ro,nosuid").is_err());
    }
}
