//! `user` of an exec request: `uid[:gid]` as numbers, or names looked up in
//! the container's own `/etc/passwd` and `/etc/group` (read inside its root
//! by [`crate::procfs::container_file`], never following a link out).

use crate::procfs;
use crate::safe_open::SafeOpenError;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user {0:?}: expected uid[:gid] or name[:group]")]
    Format(String),
    #[error("user {user:?}: no such user in the container's /etc/passwd")]
    NoUser { user: String },
    #[error("group {group:?}: no such group in the container's /etc/group")]
    NoGroup { group: String },
    #[error("user {user:?}: reading the container's {file}: {source}")]
    File {
        user: String,
        file: &'static str,
        source: SafeOpenError,
    },
}

/// Where the user database comes from: the text of the container's files.
pub trait UserDb {
    fn passwd(&self) -> Result<String, SafeOpenError>;
    fn group(&self) -> Result<String, SafeOpenError>;
}

/// The files as process `pid` (the container's init) sees them.
pub struct ContainerDb(pub i32);

impl UserDb for ContainerDb {
    fn passwd(&self) -> Result<String, SafeOpenError> {
        procfs::container_file(self.0, "etc/passwd")
    }
    fn group(&self) -> Result<String, SafeOpenError> {
        procfs::container_file(self.0, "etc/group")
    }
}

fn number(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['\0', '\n', ':', '/']) && s.len() <= 256
}

/// Field `n` of the line of `text` whose first field is `name`.
fn lookup<'a>(text: &'a str, name: &str, n: usize) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name))
            .then(|| f.get(n).copied())
            .flatten()
    })
}

/// Resolves `spec` (`uid`, `uid:gid`, `name`, `name:group`, mixed) to ids
/// inside the container. A user given alone gets its primary group from
/// `/etc/passwd` (a uid not listed there gets the gid equal to it).
pub fn resolve(spec: &str, db: &dyn UserDb) -> Result<(u32, u32), UserError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let bad = || UserError::Format(spec.to_string());
    if !valid_name(user) || group.is_some_and(|g| !valid_name(g)) {
        return Err(bad());
    }
    let file_err = |file, source| UserError::File {
        user: spec.to_string(),
        file,
        source,
    };
    let mut passwd = None;
    let mut passwd_text = || -> Result<String, UserError> {
        if passwd.is_none() {
            passwd = Some(db.passwd().map_err(|e| file_err("/etc/passwd", e))?);
        }
        Ok(passwd.clone().unwrap_or_default())
    };
    let (uid, primary) = match number(user) {
        Some(uid) => {
            let primary = match group {
                // A numeric user alone: its passwd group if listed.
                None => passwd_text()
                    .ok()
                    .and_then(|t| {
                        t.lines().find_map(|l| {
                            let f: Vec<&str> = l.split(':').collect();
                            (number(f.get(2)?)? == uid).then(|| number(f.get(3)?))?
                        })
                    })
                    .unwrap_or(uid),
                Some(_) => uid,
            };
            (uid, primary)
        }
        None => {
            let text = passwd_text()?;
            let no_user = || UserError::NoUser {
                user: user.to_string(),
            };
            let uid = lookup(&text, user, 2)
                .and_then(number)
                .ok_or_else(no_user)?;
            let gid = lookup(&text, user, 3)
                .and_then(number)
                .ok_or_else(no_user)?;
            (uid, gid)
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match number(g) {
            Some(gid) => gid,
            None => {
                let text = db.group().map_err(|e| file_err("/etc/group", e))?;
                lookup(&text, g, 2)
                    .and_then(number)
                    .ok_or_else(|| UserError::NoGroup {
                        group: g.to_string(),
                    })?
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct Fake(Option<&'static str>, Option<&'static str>);

    fn missing() -> SafeOpenError {
        SafeOpenError::Open {
            path: PathBuf::from("etc/passwd"),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        }
    }

    impl UserDb for Fake {
        fn passwd(&self) -> Result<String, SafeOpenError> {
            self.0.map(str::to_string).ok_or_else(missing)
        }
        fn group(&self) -> Result<String, SafeOpenError> {
            self.1.map(str::to_string).ok_or_else(missing)
        }
    }

    const DB: Fake = Fake(
        Some("root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n"),
        Some("root:x:0:\nstaff:x:50:www\n"),
    );

    #[test]
    fn numbers_and_names_resolve() {
        assert_eq!(resolve("0", &DB).unwrap(), (0, 0));
        assert_eq!(resolve("1000", &DB).unwrap(), (1000, 1000));
        assert_eq!(resolve("33", &DB).unwrap(), (33, 34));
        assert_eq!(resolve("1000:7", &DB).unwrap(), (1000, 7));
        assert_eq!(resolve("www", &DB).unwrap(), (33, 34));
        assert_eq!(resolve("www:staff", &DB).unwrap(), (33, 50));
        assert_eq!(resolve("5:staff", &DB).unwrap(), (5, 50));
        // No passwd at all: numbers still work.
        assert_eq!(resolve("7", &Fake(None, None)).unwrap(), (7, 7));
    }

    #[test]
    fn unknown_or_malformed_users_are_refused() {
        assert!(matches!(
            resolve("nobody", &DB),
            Err(UserError::NoUser { .. })
        ));
        assert!(matches!(
            resolve("www:wheel", &DB),
            Err(UserError::NoGroup { .. })
        ));
        for bad in ["", ":", "a:", ":b", "a/b", "a\nb", "a:b:c"] {
            assert!(resolve(bad, &DB).is_err(), "{bad:?}");
        }
        assert!(matches!(
            resolve("www", &Fake(None, None)),
            Err(UserError::File { .. })
        ));
    }
}
