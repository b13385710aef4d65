//! Container ids.
//!
//! A [`ContainerId`] becomes a path component (state directory, cgroup name) and
//! the default hostname, so it is validated once, at the edge, and every later
//! user can rely on it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Longest accepted id, in bytes (= characters, ids are ASCII).
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid [`ContainerId`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("container id: must not be empty")]
    Empty,
    #[error("container id: {len} characters is longer than the maximum of {MAX_ID_LEN}")]
    TooLong { len: usize },
    #[error("container id: \".\" and \"..\" are not allowed (they name directories)")]
    DotName,
    #[error("container id: must not contain '/' (it is used as a path component)")]
    Slash,
    #[error("container id: must not contain a NUL byte")]
    Nul,
    #[error(
        "container id: must start with a letter or digit, found {found:?} \
         (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*)"
    )]
    BadStart { found: char },
    #[error(
        "container id: character {found:?} at position {position} is not allowed \
         (allowed: [A-Za-z0-9][A-Za-z0-9_.-]*)"
    )]
    BadChar { found: char, position: usize },
}

/// A validated container id.
///
/// Rules: 1 to 64 characters, charset `[A-Za-z0-9][A-Za-z0-9_.-]*`, i.e. ASCII
/// letters, digits, `_`, `.` and `-`, starting with a letter or digit. This
/// excludes the empty string, `.`, `..`, `/`, NUL and anything non-ASCII, so an id
/// is always a single, harmless path component and a usable hostname.
///
/// Deserializing validates too, so a `ContainerId` field in a file or request is
/// never invalid.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerId(String);

impl ContainerId {
    /// Validates `s` and wraps it.
    pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
        let s = s.into();
        validate(&s)?;
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    // Specific reasons first, so the message says what is wrong.
    if s == "." || s == ".." {
        return Err(IdError::DotName);
    }
    if s.contains('/') {
        return Err(IdError::Slash);
    }
    if s.contains('\0') {
        return Err(IdError::Nul);
    }
    let len = s.chars().count();
    if len > MAX_ID_LEN {
        return Err(IdError::TooLong { len });
    }
    for (position, c) in s.chars().enumerate() {
        let ok = c.is_ascii_alphanumeric() || (position > 0 && matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(if position == 0 {
                IdError::BadStart { found: c }
            } else {
                IdError::BadChar { found: c, position }
            });
        }
    }
    Ok(())
}

impl FromStr for ContainerId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl TryFrom<String> for ContainerId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl TryFrom<&str> for ContainerId {
    type Error = IdError;
    fn try_from(s: &str) -> Result<Self, IdError> {
        Self::new(s)
    }
}

impl AsRef<str> for ContainerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ContainerId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ContainerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids() {
        for s in ["a", "0", "web-1", "db_2.backup", "A.b-C_d", &"x".repeat(64)] {
            let id: ContainerId = s.parse().unwrap();
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
        }
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(ContainerId::new(""), Err(IdError::Empty));
    }

    #[test]
    fn rejects_too_long() {
        assert_eq!(
            ContainerId::new("x".repeat(65)),
            Err(IdError::TooLong { len: 65 })
        );
    }

    #[test]
    fn rejects_dot_names() {
        assert_eq!(ContainerId::new("."), Err(IdError::DotName));
        assert_eq!(ContainerId::new(".."), Err(IdError::DotName));
    }

    #[test]
    fn rejects_slash() {
        assert_eq!(ContainerId::new("a/b"), Err(IdError::Slash));
        assert_eq!(ContainerId::new("../etc"), Err(IdError::Slash));
        assert_eq!(ContainerId::new("/"), Err(IdError::Slash));
    }

    #[test]
    fn rejects_nul() {
        assert_eq!(ContainerId::new("a\0b"), Err(IdError::Nul));
    }

    #[test]
    fn rejects_bad_start() {
        assert_eq!(
            ContainerId::new("-a"),
            Err(IdError::BadStart { found: '-' })
        );
        assert_eq!(
            ContainerId::new(".hidden"),
            Err(IdError::BadStart { found: '.' })
        );
        assert_eq!(
            ContainerId::new("_a"),
            Err(IdError::BadStart { found: '_' })
        );
    }

    #[test]
    fn rejects_other_chars() {
        assert_eq!(
            ContainerId::new("a b"),
            Err(IdError::BadChar {
                found: ' ',
                position: 1
            })
        );
        assert_eq!(
            ContainerId::new("ab:c"),
            Err(IdError::BadChar {
                found: ':',
                position: 2
            })
        );
        assert_eq!(ContainerId::new("é"), Err(IdError::BadStart { found: 'é' }));
    }

    #[test]
    fn error_messages_say_why() {
        let msg = ContainerId::new("a/b").unwrap_err().to_string();
        assert!(msg.contains("container id") && msg.contains('/'), "{msg}");
    }

    #[test]
    fn try_from_string() {
        assert!(ContainerId::try_from(String::from("ok")).is_ok());
        assert!(ContainerId::try_from(String::from("no/")).is_err());
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let id = ContainerId::new("web-1").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"web-1\"");
        assert_eq!(serde_json::from_str::<ContainerId>(&json).unwrap(), id);
        let err = serde_json::from_str::<ContainerId>("\"../x\"").unwrap_err();
        assert!(err.to_string().contains("'/'"), "{err}");
    }
}
