//! The image meta file that travels with a rootfs: what the image builder
//! knows about the program (see `docs/meta.md`).
//!
//! ```json
//! {
//!   "version": 1,
//!   "args": ["/usr/sbin/nginx", "-g", "daemon off;"],
//!   "env": {"NGINX_PORT": "80"},
//!   "exposed_ports": ["80/tcp", "53/udp"],
//!   "mounts": ["/data"],
//!   "workdir": "/",
//!   "user": "1000:1000"
//! }
//! ```

use crate::config::{validate_args, validate_env};
use crate::rules::{self, Violation};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The only meta format version.
pub const META_VERSION: u32 = 1;

/// A meta file that cannot be read, parsed or accepted. The file path is part of
/// the message when the meta came from a file.
#[derive(Debug, Error)]
pub enum MetaError {
    #[error("image meta {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Syntax, type, missing or unknown field (serde_json names the field).
    #[error("image meta{}: {source}", at(path))]
    Json {
        path: Option<PathBuf>,
        source: serde_json::Error,
    },
    #[error("image meta{}: {field}: {reason}", at(path))]
    Invalid {
        path: Option<PathBuf>,
        field: String,
        reason: Violation,
    },
}

fn at(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" {}", p.display()),
        None => String::new(),
    }
}

impl MetaError {
    fn invalid(field: impl Into<String>, reason: Violation) -> Self {
        Self::Invalid {
            path: None,
            field: field.into(),
            reason,
        }
    }

    fn with_path(self, p: &Path) -> Self {
        match self {
            Self::Json { source, .. } => Self::Json {
                path: Some(p.to_path_buf()),
                source,
            },
            Self::Invalid { field, reason, .. } => Self::Invalid {
                path: Some(p.to_path_buf()),
                field,
                reason,
            },
            e @ Self::Read { .. } => e,
        }
    }
}

/// The image meta file. Every field except `version` may be left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageMeta {
    /// Format version; must be [`META_VERSION`].
    pub version: u32,
    /// Program and arguments; empty = none (the config must then give args).
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment defaults; the config overrides them per key.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Ports the program listens on, `"PORT/tcp"` or `"PORT/udp"`.
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    /// Absolute paths the image expects a volume at (empty tmpfs when none given).
    #[serde(default)]
    pub mounts: Vec<String>,
    /// Working directory (absolute); `/` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Numeric `uid[:gid]` (gid = uid when left out); `0:0` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Default for ImageMeta {
    /// A meta that says nothing: version 1, no args (the config must give them).
    fn default() -> Self {
        Self {
            version: META_VERSION,
            args: Vec::new(),
            env: BTreeMap::new(),
            exposed_ports: Vec::new(),
            mounts: Vec::new(),
            workdir: None,
            user: None,
        }
    }
}

/// Transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    Tcp,
    Udp,
}

/// One parsed `exposed_ports` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExposedPort {
    pub port: u16,
    pub protocol: PortProtocol,
}

impl fmt::Display for ExposedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.protocol {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
        };
        write!(f, "{}/{p}", self.port)
    }
}

const PORT_FORMAT: &str =
    "PORT/PROTOCOL with PORT 1..=65535 and PROTOCOL tcp or udp, e.g. \"80/tcp\"";

fn parse_port(s: &str) -> Result<ExposedPort, Violation> {
    let bad = || Violation::Format {
        got: s.into(),
        expected: PORT_FORMAT,
    };
    let (port, proto) = s.split_once('/').ok_or_else(bad)?;
    let protocol = match proto {
        "tcp" => PortProtocol::Tcp,
        "udp" => PortProtocol::Udp,
        _ => return Err(bad()),
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(ExposedPort {
            port: p as u16,
            protocol,
        }),
        _ => Err(Violation::OutOfRange {
            value: port.into(),
            range: "1..=65535",
        }),
    }
}

impl ImageMeta {
    /// Parses and validates meta JSON.
    pub fn from_json(s: &str) -> Result<Self, MetaError> {
        let m: Self =
            serde_json::from_str(s).map_err(|source| MetaError::Json { path: None, source })?;
        m.validate()?;
        Ok(m)
    }

    /// Parses and validates the bytes of the meta file `path` (read by the
    /// caller, e.g. with its own size cap); errors include `path`.
    pub fn from_file_bytes(bytes: &[u8], path: &Path) -> Result<Self, MetaError> {
        let parsed: Result<Self, MetaError> = serde_json::from_slice(bytes)
            .map_err(|source| MetaError::Json { path: None, source })
            .and_then(|m: Self| m.validate().map(|()| m));
        parsed.map_err(|e| e.with_path(path))
    }

    /// Reads, parses and validates a meta file; errors include `path`.
    pub fn from_file(path: &Path) -> Result<Self, MetaError> {
        let text = std::fs::read_to_string(path).map_err(|source| MetaError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| e.with_path(path))
    }

    /// The exposed ports, parsed.
    pub fn ports(&self) -> Result<Vec<ExposedPort>, MetaError> {
        let mut seen = BTreeSet::new();
        self.exposed_ports
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let field = || format!("exposed_ports[{i}]");
                let p = parse_port(s).map_err(|r| MetaError::invalid(field(), r))?;
                if !seen.insert(p) {
                    return Err(MetaError::invalid(
                        field(),
                        Violation::Duplicate {
                            what: "port",
                            value: s.clone(),
                        },
                    ));
                }
                Ok(p)
            })
            .collect()
    }

    /// The `user` field parsed as `(uid, gid)`.
    pub fn user_ids(&self) -> Result<Option<(u32, u32)>, MetaError> {
        self.user
            .as_deref()
            .map(|u| rules::parse_user(u).map_err(|r| MetaError::invalid("user", r)))
            .transpose()
    }

    /// Checks every field; the first bad one is returned.
    pub fn validate(&self) -> Result<(), MetaError> {
        if self.version != META_VERSION {
            return Err(MetaError::invalid(
                "version",
                Violation::UnsupportedVersion {
                    found: self.version,
                    supported: META_VERSION,
                },
            ));
        }
        if !self.args.is_empty() {
            validate_args("args", &self.args).map_err(|(f, r)| MetaError::invalid(f, r))?;
        }
        validate_env("env", &self.env).map_err(|(f, r)| MetaError::invalid(f, r))?;
        self.ports()?;
        let mut seen = BTreeSet::new();
        for (i, m) in self.mounts.iter().enumerate() {
            let field = format!("mounts[{i}]");
            rules::check_user_mount_destination(m).map_err(|r| MetaError::invalid(&field, r))?;
            if !seen.insert(m) {
                return Err(MetaError::invalid(
                    field,
                    Violation::Duplicate {
                        what: "mount",
                        value: m.clone(),
                    },
                ));
            }
        }
        if let Some(w) = &self.workdir {
            rules::check_container_path(w).map_err(|r| MetaError::invalid("workdir", r))?;
        }
        self.user_ids()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FULL: &str = r#"{
        "version": 1,
        "args": ["/usr/sbin/nginx", "-g", "daemon off;"],
        "env": {"K": "V"},
        "exposed_ports": ["80/tcp", "53/udp"],
        "mounts": ["/data"],
        "workdir": "/",
        "user": "1000:1000"
    }"#;

    fn invalid(v: serde_json::Value, field: &str) -> Violation {
        match ImageMeta::from_json(&v.to_string()) {
            Err(MetaError::Invalid {
                field: f, reason, ..
            }) => {
                assert_eq!(f, field, "{reason}");
                reason
            }
            other => panic!("expected invalid {field}, got {other:?}"),
        }
    }

    #[test]
    fn parses_full_example() {
        let m = ImageMeta::from_json(FULL).unwrap();
        assert_eq!(m.args[0], "/usr/sbin/nginx");
        assert_eq!(m.env["K"], "V");
        assert_eq!(
            m.ports().unwrap(),
            vec![
                ExposedPort {
                    port: 80,
                    protocol: PortProtocol::Tcp
                },
                ExposedPort {
                    port: 53,
                    protocol: PortProtocol::Udp
                }
            ]
        );
        assert_eq!(m.user_ids().unwrap(), Some((1000, 1000)));
        assert_eq!(m.ports().unwrap()[1].to_string(), "53/udp");
    }

    #[test]
    fn minimal_meta_is_version_only() {
        assert_eq!(
            ImageMeta::from_json(r#"{"version": 1}"#).unwrap(),
            ImageMeta::default()
        );
        let err = ImageMeta::from_json("{}").unwrap_err().to_string();
        assert!(err.contains("missing field `version`"), "{err}");
    }

    #[test]
    fn default_has_no_args() {
        let m = ImageMeta::default();
        assert!(m.args.is_empty());
        m.validate().unwrap();
    }

    #[test]
    fn unknown_field_is_named() {
        let err = ImageMeta::from_json(r#"{"version": 1, "entrypoint": ["/x"]}"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("unknown field `entrypoint`"), "{msg}");
    }

    #[test]
    fn file_errors_name_the_path() {
        let dir = std::env::temp_dir().join(format!("zctr-meta-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("unknown.json");
        std::fs::write(&bad, r#"{"version": 1, "ports": []}"#).unwrap();
        let msg = ImageMeta::from_file(&bad).unwrap_err().to_string();
        assert!(msg.contains(&*bad.to_string_lossy()), "{msg}");
        assert!(msg.contains("unknown field `ports`"), "{msg}");

        let invalid = dir.join("invalid.json");
        std::fs::write(&invalid, r#"{"version": 2}"#).unwrap();
        let msg = ImageMeta::from_file(&invalid).unwrap_err().to_string();
        assert!(msg.contains(&*invalid.to_string_lossy()), "{msg}");
        assert!(msg.contains("version: version 2 is not supported"), "{msg}");

        let good = dir.join("good.json");
        std::fs::write(&good, FULL).unwrap();
        assert_eq!(ImageMeta::from_file(&good).unwrap().args.len(), 3);

        let missing = dir.join("missing.json");
        let err = ImageMeta::from_file(&missing).unwrap_err();
        assert!(matches!(err, MetaError::Read { .. }));
        assert!(err.to_string().contains(&*missing.to_string_lossy()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn version_must_be_1() {
        assert_eq!(
            invalid(json!({"version": 2}), "version"),
            Violation::UnsupportedVersion {
                found: 2,
                supported: 1
            }
        );
        assert_eq!(
            invalid(json!({"version": 0}), "version"),
            Violation::UnsupportedVersion {
                found: 0,
                supported: 1
            }
        );
    }

    #[test]
    fn args_rules() {
        ImageMeta::from_json(r#"{"version": 1, "args": []}"#).unwrap();
        assert_eq!(
            invalid(json!({"version": 1, "args": [""]}), "args[0]"),
            Violation::Empty
        );
        assert_eq!(
            invalid(json!({"version": 1, "args": ["/x", "a\u{0}"]}), "args[1]"),
            Violation::Nul
        );
    }

    #[test]
    fn port_rules() {
        for bad in [
            "80", "80/sctp", "/tcp", "x/tcp", "80/TCP", "+80/tcp", "80/tcp/x",
        ] {
            assert!(
                matches!(
                    invalid(
                        json!({"version": 1, "exposed_ports": [bad]}),
                        "exposed_ports[0]"
                    ),
                    Violation::Format { .. }
                ),
                "{bad}"
            );
        }
        for bad in ["0/tcp", "65536/udp", "99999999999/tcp"] {
            assert!(
                matches!(
                    invalid(
                        json!({"version": 1, "exposed_ports": [bad]}),
                        "exposed_ports[0]"
                    ),
                    Violation::OutOfRange { .. }
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            invalid(
                json!({"version": 1, "exposed_ports": ["80/tcp", "80/udp", "80/tcp"]}),
                "exposed_ports[2]"
            ),
            Violation::Duplicate { .. }
        ));
        ImageMeta::from_json(r#"{"version": 1, "exposed_ports": ["1/tcp", "65535/udp"]}"#).unwrap();
    }

    #[test]
    fn mount_rules() {
        assert!(matches!(
            invalid(json!({"version": 1, "mounts": ["data"]}), "mounts[0]"),
            Violation::NotAbsolute { .. }
        ));
        assert!(matches!(
            invalid(
                json!({"version": 1, "mounts": ["/a", "/a/../b"]}),
                "mounts[1]"
            ),
            Violation::DotDot { .. }
        ));
        assert_eq!(
            invalid(json!({"version": 1, "mounts": ["/"]}), "mounts[0]"),
            Violation::IsRoot
        );
        assert!(matches!(
            invalid(json!({"version": 1, "mounts": ["/sys"]}), "mounts[0]"),
            Violation::NotAllowed { .. }
        ));
        assert!(matches!(
            invalid(json!({"version": 1, "mounts": ["/a", "/a"]}), "mounts[1]"),
            Violation::Duplicate { .. }
        ));
    }

    #[test]
    fn env_rules() {
        assert_eq!(
            invalid(json!({"version": 1, "env": {"A=B": "x"}}), "env[\"A=B\"]"),
            Violation::ContainsEquals
        );
        assert_eq!(
            invalid(json!({"version": 1, "env": {"": "x"}}), "env[\"\"]"),
            Violation::Empty
        );
        assert_eq!(
            invalid(json!({"version": 1, "env": {"A": "\u{0}"}}), "env[\"A\"]"),
            Violation::Nul
        );
    }

    #[test]
    fn workdir_and_user_rules() {
        assert!(matches!(
            invalid(json!({"version": 1, "workdir": "srv"}), "workdir"),
            Violation::NotAbsolute { .. }
        ));
        assert!(matches!(
            invalid(json!({"version": 1, "user": "www-data"}), "user"),
            Violation::Format { .. }
        ));
        let m = ImageMeta::from_json(r#"{"version": 1, "user": "33"}"#).unwrap();
        assert_eq!(m.user_ids().unwrap(), Some((33, 33)));
    }
}
