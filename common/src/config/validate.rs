//! [`ContainerConfig::validate`]: every value checked, errors naming the field path.

use super::*;

impl ContainerConfig {
    /// Checks every value; the first bad one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at = |field: &str| {
            let field = field.to_string();
            move |r| ConfigError::invalid(field, r)
        };
        rules::check_host_path(&self.rootfs).map_err(at("rootfs"))?;
        if let Some(meta) = &self.meta {
            rules::check_host_path(meta).map_err(at("meta"))?;
        }
        self.validate_mounts()?;
        validate_env("env", &self.env).map_err(|(f, r)| ConfigError::invalid(f, r))?;
        if let Some(args) = &self.args {
            validate_args("args", args).map_err(|(f, r)| ConfigError::invalid(f, r))?;
        }
        if let Some(h) = &self.hostname {
            check_hostname(h).map_err(at("hostname"))?;
        }
        if let NetworkMode::Join { path } = &self.network {
            rules::check_host_path(path).map_err(at("network.path"))?;
        }
        self.validate_limits()?;
        self.capabilities.resolve()?;
        self.validate_id_map()?;
        if let Some(cwd) = &self.cwd {
            rules::check_container_path(cwd).map_err(at("cwd"))?;
        }
        self.user_ids()?;
        match self.console_size {
            Some(_) if !self.tty => {
                return Err(ConfigError::invalid(
                    "console_size",
                    Violation::Missing {
                        reason: "tty: a console size is for a terminal",
                    },
                ))
            }
            Some([rows, cols]) if rows == 0 || cols == 0 => {
                return Err(ConfigError::invalid(
                    "console_size",
                    Violation::OutOfRange {
                        value: format!("[{rows}, {cols}]"),
                        range: "[1..65535, 1..65535]",
                    },
                ))
            }
            _ => {}
        }
        if let SeccompOption::Custom(p) = &self.seccomp {
            crate::seccomp::compile(p)?;
        }
        Ok(())
    }

    fn validate_mounts(&self) -> Result<(), ConfigError> {
        let mut seen = BTreeSet::new();
        let mut check_dest = |field: String, dest: &str| -> Result<(), ConfigError> {
            let r = rules::check_user_mount_destination(dest).and_then(|()| {
                if !seen.insert(dest.to_string()) {
                    return Err(Violation::Duplicate {
                        what: "mount destination",
                        value: dest.to_string(),
                    });
                }
                Ok(())
            });
            r.map_err(|r| ConfigError::invalid(field, r))
        };
        for (i, v) in self.volumes.iter().enumerate() {
            check_dest(format!("volumes[{i}].destination"), &v.destination)?;
            rules::check_host_path(&v.source)
                .map_err(|r| ConfigError::invalid(format!("volumes[{i}].source"), r))?;
            if v.idmap && self.profile != Profile::Unprivileged {
                return Err(ConfigError::invalid(
                    format!("volumes[{i}].idmap"),
                    Violation::NotAllowed {
                        reason:
                            "an idmapped volume needs the unprivileged profile's user namespace",
                    },
                ));
            }
            let adds_sys_admin = self
                .capabilities
                .add
                .iter()
                .any(|c| capability::parse(c) == Some(Capability::SysAdmin));
            if v.idmap && adds_sys_admin {
                return Err(ConfigError::invalid(
                    format!("volumes[{i}].idmap"),
                    Violation::NotAllowed {
                        reason: "an idmapped volume would not keep the host's mount flags \
                                 against CAP_SYS_ADMIN in the container",
                    },
                ));
            }
        }
        for (i, m) in self.mounts.iter().enumerate() {
            check_dest(format!("mounts[{i}].destination"), &m.destination)?;
            let source_field = format!("mounts[{i}].source");
            match (m.kind, &m.source) {
                (MountKind::Bind, Some(src)) => rules::check_host_path(src)
                    .map_err(|r| ConfigError::invalid(source_field, r))?,
                (MountKind::Bind, None) => {
                    return Err(ConfigError::invalid(
                        source_field,
                        Violation::Missing {
                            reason: "a bind mount needs a host source path",
                        },
                    ))
                }
                (MountKind::Tmpfs, Some(_)) => {
                    return Err(ConfigError::invalid(
                        source_field,
                        Violation::NotAllowed {
                            reason: "a tmpfs mount has no source",
                        },
                    ))
                }
                (MountKind::Tmpfs, None) => {}
            }
            for (j, o) in m.options.iter().enumerate() {
                rules::check_mount_option(o)
                    .map_err(|r| ConfigError::invalid(format!("mounts[{i}].options[{j}]"), r))?;
            }
        }
        Ok(())
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        if let Some(c) = l.cpus {
            // `!(a <= c)` also rejects NaN.
            if !(MIN_CPUS..=MAX_CPUS).contains(&c) {
                return Err(ConfigError::invalid(
                    "limits.cpus",
                    Violation::OutOfRange {
                        value: c.to_string(),
                        range: "0.01..=1024",
                    },
                ));
            }
        }
        if let Some(m) = l.memory_bytes {
            if !(MIN_MEMORY..=MAX_MEMORY).contains(&m) {
                return Err(ConfigError::invalid(
                    "limits.memory_bytes",
                    Violation::OutOfRange {
                        value: m.to_string(),
                        range: "4194304 (4 MiB) ..= 17592186044416 (16 TiB)",
                    },
                ));
            }
        }
        if let Some(p) = l.pids {
            if !(1..=MAX_PIDS).contains(&p) {
                return Err(ConfigError::invalid(
                    "limits.pids",
                    Violation::OutOfRange {
                        value: p.to_string(),
                        range: "1..=4194304",
                    },
                ));
            }
        }
        Ok(())
    }

    fn validate_id_map(&self) -> Result<(), ConfigError> {
        let Some(m) = self.id_map else {
            return Ok(());
        };
        if self.profile == Profile::Privileged {
            return Err(ConfigError::invalid(
                "id_map",
                Violation::NotAllowed {
                    reason: "the privileged profile has no user namespace",
                },
            ));
        }
        if m.size == 0 {
            return Err(ConfigError::invalid(
                "id_map.size",
                Violation::OutOfRange {
                    value: "0".into(),
                    range: "1..",
                },
            ));
        }
        // Host id u32::MAX is the invalid id (-1), so the last mapped id must be below it.
        for (field, host) in [
            ("id_map.host_uid", m.host_uid),
            ("id_map.host_gid", m.host_gid),
        ] {
            if host == 0 {
                return Err(ConfigError::invalid(
                    field,
                    Violation::NotAllowed {
                        reason: "host id 0 (root) in the unprivileged profile's mapping",
                    },
                ));
            }
            if u64::from(host) + u64::from(m.size) > u64::from(u32::MAX) {
                return Err(ConfigError::invalid(
                    field,
                    Violation::OutOfRange {
                        value: format!("{host} + size {}", m.size),
                        range: "..=4294967295 (host id + size)",
                    },
                ));
            }
        }
        Ok(())
    }
}

/// Env rules shared with the image meta: key non-empty without `=`/NUL, value
/// without NUL. Returns the field path and reason of the first bad entry.
pub(crate) fn validate_env(
    prefix: &str,
    env: &BTreeMap<String, String>,
) -> Result<(), (String, Violation)> {
    for (k, v) in env {
        rules::check_env_key(k)
            .and_then(|()| rules::check_env_value(v))
            .map_err(|r| (rules::env_field(prefix, k), r))?;
    }
    Ok(())
}

/// Args rules shared with the image meta: at least one entry, a non-empty
/// program, no NUL anywhere.
pub(crate) fn validate_args(prefix: &str, args: &[String]) -> Result<(), (String, Violation)> {
    if args.is_empty() {
        return Err((
            prefix.to_string(),
            Violation::Missing {
                reason: "at least the program to run (omit the field to use the default)",
            },
        ));
    }
    if args[0].is_empty() {
        return Err((format!("{prefix}[0]"), Violation::Empty));
    }
    for (i, a) in args.iter().enumerate() {
        if a.contains('\0') {
            return Err((format!("{prefix}[{i}]"), Violation::Nul));
        }
    }
    Ok(())
}

/// RFC 1123 hostname: dot-separated labels of 1..=63 letters, digits and `-`,
/// not starting or ending with `-`; at most 64 characters in all.
fn check_hostname(h: &str) -> Result<(), Violation> {
    const FORMAT: &str = "an RFC 1123 hostname (labels of letters, digits and '-', \
                          1 to 63 characters, not starting or ending with '-', separated by '.')";
    if h.is_empty() {
        return Err(Violation::Empty);
    }
    if h.len() > MAX_HOSTNAME {
        return Err(Violation::TooLong {
            len: h.len(),
            max: MAX_HOSTNAME,
        });
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !h.split('.').all(label_ok) {
        return Err(Violation::Format {
            got: h.into(),
            expected: FORMAT,
        });
    }
    Ok(())
}
