//! The flags of `zctr create` and `zctr run`, and the typed container
//! config they build (`common::config::ContainerConfig`, the one the API
//! reads): the `--config` file first, then every flag over it.

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use common::config::{ContainerConfig, NetworkMode, Volume};
use common::seccomp::SeccompOption;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Container id: letters, digits, '_', '.', '-' (at most 64).
    pub id: String,
    /// Root filesystem directory.
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
    /// Image meta file (args, env, exposed ports, ...).
    #[arg(long)]
    pub meta: Option<PathBuf>,
    /// A JSON container config to start from (flags override its fields).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Volume SOURCE:DEST[:OPTS], OPTS a comma list of ro and idmap (repeatable).
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Privilege profile: unprivileged or privileged.
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// Network: private, host, or the path of a network namespace to join.
    #[arg(long)]
    pub network: Option<String>,
    /// CPU limit in CPUs (e.g. 0.5).
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Memory limit: bytes, or with a suffix k, m, g or t (512m, 1g).
    #[arg(long, value_parser = crate::units::parse_size)]
    pub memory: Option<u64>,
    /// Limit on the number of processes.
    #[arg(long)]
    pub pids: Option<i64>,
    /// Security option (repeatable): seccomp=default, seccomp=unconfined, or
    /// seccomp=PATH of an OCI linux.seccomp JSON profile (read here, by the
    /// client, and sent inline).
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Restart policy: no, on-failure[:N], always, unless-stopped (with
    /// exponential back-off; never after `stop`, `kill` or `delete`).
    #[arg(long)]
    pub restart: Option<String>,
    /// Run a tiny init as the container's PID 1: it forwards signals to the
    /// process, reaps orphaned zombies and exits with the process's code
    /// (128+N on signal N).
    #[arg(long)]
    pub init: bool,
    /// Print the whole container as JSON.
    #[arg(long)]
    pub json: bool,
    /// Give its process a terminal (a pty of its own devpts), sized like
    /// this client's terminal; `zctr attach` shows it.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep its stdin open for `zctr attach` (else /dev/null); with `run
    /// -a` this client's stdin goes to it.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Command and arguments (after `--`); default: the meta's args.
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// A config the CLI cannot build (a `--config` file that is not one, an
/// unknown `--profile`, no rootfs) is refused with the code the daemon gives
/// a config it cannot read (docs/api.md), whichever side finds it.
fn bad_request(msg: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("{msg} (bad_request)")
}

/// The container config of `create`/`run`: the `--config` file (if any),
/// then every flag over it.
pub fn config_from(a: &CreateArgs) -> Result<ContainerConfig> {
    let rootfs = a.rootfs.as_deref().map(absolute).transpose()?;
    let mut cfg = match (&a.config, rootfs) {
        (Some(p), rootfs) => config_file(p, rootfs)?,
        (None, Some(rootfs)) => ContainerConfig::new(rootfs),
        (None, None) => {
            return Err(bad_request(
                "--rootfs (or a --config with rootfs) is required",
            ))
        }
    };
    if let Some(m) = &a.meta {
        cfg.meta = Some(absolute(m)?);
    }
    for kv in &a.env {
        let (k, v) = kv.split_once('=').context("--env takes KEY=VALUE")?;
        cfg.env.insert(k.to_string(), v.to_string());
    }
    for v in &a.volume {
        cfg.volumes.push(volume_opt(v)?);
    }
    if let Some(p) = &a.profile {
        cfg.profile = serde_json::from_value(Value::String(p.clone()))
            .map_err(|e| bad_request(format!("--profile {p:?}: {e}")))?;
    }
    if let Some(h) = &a.hostname {
        cfg.hostname = Some(h.clone());
    }
    if let Some(n) = &a.network {
        cfg.network = match n.as_str() {
            "private" => NetworkMode::Private,
            "host" => NetworkMode::Host,
            path => NetworkMode::Join { path: path.into() },
        };
    }
    if let Some(c) = a.cpus {
        cfg.limits.cpus = Some(c);
    }
    if let Some(m) = a.memory {
        cfg.limits.memory_bytes = Some(m);
    }
    if let Some(r) = &a.restart {
        cfg.restart = r
            .parse()
            .map_err(|e| bad_request(format!("--restart: {e}")))?;
    }
    if let Some(p) = a.pids {
        cfg.limits.pids = Some(p);
    }
    if a.init {
        cfg.init = true;
    }
    if !a.args.is_empty() {
        cfg.args = Some(a.args.clone());
    }
    if a.tty {
        cfg.tty = true;
        if cfg.console_size.is_none() {
            cfg.console_size = crate::client::term::size().map(|(r, c)| [r, c]);
        }
    }
    if a.interactive {
        cfg.stdin = true;
    }
    for o in &a.security_opt {
        let (key, value) = o
            .split_once('=')
            .with_context(|| format!("--security-opt {o:?}: expected seccomp=VALUE"))?;
        match key {
            "seccomp" => cfg.seccomp = seccomp_opt(value)?,
            _ => bail!("--security-opt {o:?}: unsupported option {key:?} (supported: seccomp)"),
        };
    }
    Ok(cfg)
}

/// Largest `--config` file the client reads.
const MAX_CONFIG_FILE: u64 = 1 << 20;

/// A `--config` file; its `rootfs` may be left to `--rootfs` (which wins).
/// Read like every client-named file: a regular file of at most
/// [`MAX_CONFIG_FILE`] bytes, opened without side effects ([`crate::safe_open`]).
fn config_file(path: &Path, rootfs: Option<PathBuf>) -> Result<ContainerConfig> {
    let text = crate::safe_open::read_host_file(path, MAX_CONFIG_FILE)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut v: Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let obj = v
        .as_object_mut()
        .context("the --config file must hold a JSON object")?;
    if let Some(r) = rootfs {
        // The one field set before the text is typed: the only required one.
        obj.insert("rootfs".into(), json!(r));
    }
    serde_json::from_value(v).map_err(|e| bad_request(format!("{}: {e}", path.display())))
}

/// `--volume SOURCE:DEST[:OPTS]`.
fn volume_opt(v: &str) -> Result<Volume> {
    let usage = "--volume takes SOURCE:DEST[:OPTS], OPTS a comma list of ro and idmap";
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => bail!("{usage}"),
    };
    let (mut readonly, mut idmap) = (false, false);
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "idmap" => idmap = true,
            _ => bail!("{usage}: unknown option {o:?}"),
        }
    }
    Ok(Volume {
        source: absolute(Path::new(src))?,
        destination: dst.to_string(),
        readonly,
        idmap,
    })
}

/// Largest seccomp profile file the client reads.
const MAX_SECCOMP_FILE: u64 = 1 << 20;

/// `--security-opt seccomp=VALUE`: a name, or the path of a profile file the
/// client reads itself (the daemon never opens client-named paths for this),
/// through [`crate::safe_open`]: a regular file of at most
/// [`MAX_SECCOMP_FILE`] bytes, opened without side effects.
fn seccomp_opt(value: &str) -> Result<SeccompOption> {
    match value {
        "default" => return Ok(SeccompOption::Default),
        "unconfined" => return Ok(SeccompOption::Unconfined),
        _ => {}
    }
    let text = crate::safe_open::read_host_file(Path::new(value), MAX_SECCOMP_FILE)
        .with_context(|| format!("seccomp profile {value}"))?;
    let v: Value = serde_json::from_slice(&text)
        .with_context(|| format!("seccomp profile {value} is not JSON"))?;
    serde_json::from_value(v).map_err(|e| bad_request(format!("seccomp profile {value}: {e}")))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;
    use common::config::Profile;
    use std::collections::BTreeMap;

    fn args(id: &str) -> CreateArgs {
        CreateArgs {
            id: id.into(),
            rootfs: None,
            meta: None,
            config: None,
            env: vec![],
            volume: vec![],
            profile: None,
            hostname: None,
            network: None,
            cpus: None,
            memory: None,
            restart: None,
            pids: None,
            init: false,
            security_opt: vec![],
            json: false,
            tty: false,
            interactive: false,
            args: vec![],
        }
    }

    #[test]
    fn tty_and_interactive_set_the_config() {
        let mut a = args("c");
        a.rootfs = Some("/".into());
        let cfg = config_from(&a).unwrap();
        assert!(!cfg.tty && !cfg.stdin);
        a.tty = true;
        a.interactive = true;
        let cfg = sent(&config_from(&a).unwrap());
        assert!(cfg.tty && cfg.stdin);
    }

    /// What the daemon reads from the body is what the CLI built.
    fn sent(cfg: &ContainerConfig) -> ContainerConfig {
        let body = serde_json::to_vec(&json!({"id": "c", "config": cfg})).unwrap();
        let req = crate::api::parse_create(&body).unwrap();
        req.config
    }

    #[test]
    fn flags_build_the_typed_config() {
        let mut a = args("c");
        a.rootfs = Some("/r".into());
        a.meta = Some("/m.json".into());
        a.env = vec!["A=1".into(), "B=x=y".into()];
        a.volume = vec!["/src:/data".into(), "/s2:/d2:ro,idmap".into()];
        a.profile = Some("privileged".into());
        a.hostname = Some("h".into());
        a.network = Some("/run/netns/n".into());
        a.cpus = Some(0.5);
        a.memory = Some(64 << 20);
        a.pids = Some(10);
        a.args = vec!["/bin/sh".into(), "-c".into(), "true".into()];
        a.security_opt = vec!["seccomp=unconfined".into()];
        a.init = true;
        let cfg = config_from(&a).unwrap();
        assert!(cfg.init);
        assert_eq!(cfg.rootfs, Path::new("/r"));
        assert_eq!(cfg.meta.as_deref(), Some(Path::new("/m.json")));
        assert_eq!(
            cfg.env,
            BTreeMap::from([("A".into(), "1".into()), ("B".into(), "x=y".into())])
        );
        assert_eq!(
            cfg.volumes,
            [
                Volume {
                    source: "/src".into(),
                    destination: "/data".into(),
                    readonly: false,
                    idmap: false
                },
                Volume {
                    source: "/s2".into(),
                    destination: "/d2".into(),
                    readonly: true,
                    idmap: true
                }
            ]
        );
        assert_eq!(cfg.profile, Profile::Privileged);
        assert_eq!(cfg.hostname.as_deref(), Some("h"));
        assert_eq!(
            cfg.network,
            NetworkMode::Join {
                path: "/run/netns/n".into()
            }
        );
        assert_eq!(cfg.limits.cpus, Some(0.5));
        assert_eq!(cfg.limits.memory_bytes, Some(64 << 20));
        assert_eq!(cfg.limits.pids, Some(10));
        assert_eq!(cfg.args.as_ref().unwrap()[0], "/bin/sh");
        assert_eq!(cfg.seccomp, SeccompOption::Unconfined);
        assert_eq!(sent(&cfg), cfg);
        // The minimum: a rootfs, relative to the working directory.
        let mut a = args("c");
        a.rootfs = Some("rel".into());
        a.network = Some("host".into());
        let cfg = config_from(&a).unwrap();
        assert_eq!(cfg.rootfs, std::env::current_dir().unwrap().join("rel"));
        assert_eq!(cfg.network, NetworkMode::Host);
        assert_eq!(cfg.profile, Profile::Unprivileged);
        assert!(!cfg.init);
        assert_eq!(sent(&cfg), cfg);
    }

    #[test]
    fn flags_go_over_the_config_file() {
        let t = TempDir::new("cli-config");
        let file = t.path().join("c.json");
        let write = |v: Value| fs_write(&file, v);
        write(json!({
            "rootfs": "/from-file",
            "env": {"A": "file", "KEEP": "1"},
            "limits": {"cpus": 2.0, "pids": 5},
            "volumes": [{"source": "/v", "destination": "/v"}],
            "args": ["/file"],
            "capabilities": {"add": ["NET_ADMIN"]},
        }));
        let mut a = args("c");
        a.config = Some(file.clone());
        a.env = vec!["A=flag".into()];
        a.pids = Some(7);
        a.volume = vec!["/w:/w".into()];
        let cfg = config_from(&a).unwrap();
        assert_eq!(cfg.rootfs, Path::new("/from-file"));
        assert_eq!(cfg.env["A"], "flag");
        assert_eq!(cfg.env["KEEP"], "1");
        assert_eq!((cfg.limits.cpus, cfg.limits.pids), (Some(2.0), Some(7)));
        assert_eq!(cfg.volumes.len(), 2);
        assert_eq!(cfg.args, Some(vec!["/file".to_string()]));
        assert_eq!(cfg.capabilities.add.len(), 1);
        assert_eq!(sent(&cfg), cfg);
        // --rootfs wins, and fills in a file without one.
        a.rootfs = Some("/flag".into());
        assert_eq!(config_from(&a).unwrap().rootfs, Path::new("/flag"));
        write(json!({"hostname": "h"}));
        let cfg = config_from(&a).unwrap();
        assert_eq!(cfg.rootfs, Path::new("/flag"));
        assert_eq!(cfg.hostname.as_deref(), Some("h"));
    }

    fn fs_write(path: &Path, v: Value) {
        std::fs::write(path, v.to_string()).unwrap();
    }

    #[test]
    fn configs_the_daemon_would_refuse_are_bad_requests() {
        let t = TempDir::new("cli-bad");
        let mut a = args("c");
        let e = config_from(&a).unwrap_err().to_string();
        assert!(
            e.contains("--rootfs") && e.ends_with("(bad_request)"),
            "{e}"
        );
        a.rootfs = Some("/r".into());
        a.profile = Some("superuser".into());
        let e = config_from(&a).unwrap_err().to_string();
        assert!(
            e.contains("superuser") && e.ends_with("(bad_request)"),
            "{e}"
        );
        a.profile = None;
        let file = t.path().join("c.json");
        for bad in [
            json!({"rootfs": "/r", "nope": 1}),
            json!({"limits": {"cpus": "x"}}),
        ] {
            fs_write(&file, bad);
            a.config = Some(file.clone());
            let e = config_from(&a).unwrap_err().to_string();
            assert!(e.ends_with("(bad_request)"), "{e}");
        }
        // Flags the CLI itself reads keep their own messages.
        a.config = None;
        a.env = vec!["NOEQUALS".into()];
        assert!(config_from(&a).is_err());
        a.env = vec![];
        for v in ["/a", "/a:/b:rw", "/a:/b:ro:x"] {
            a.volume = vec![v.into()];
            assert!(config_from(&a).is_err(), "{v}");
        }
        a.volume = vec![];
        a.security_opt = vec!["apparmor=x".into()];
        assert!(config_from(&a).is_err());
    }

    #[test]
    fn seccomp_option_names_and_profile_files() {
        let t = TempDir::new("cli-seccomp");
        let mut a = args("c");
        a.rootfs = Some("/r".into());
        a.security_opt = vec!["seccomp=default".into()];
        assert_eq!(config_from(&a).unwrap().seccomp, SeccompOption::Default);
        let file = t.path().join("p.json");
        fs_write(
            &file,
            json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}
                ]
            }),
        );
        a.security_opt = vec![format!("seccomp={}", file.display())];
        let cfg = config_from(&a).unwrap();
        assert!(matches!(cfg.seccomp, SeccompOption::Custom(_)));
        assert_eq!(sent(&cfg), cfg);
        // A key an OCI profile does not have.
        fs_write(
            &file,
            json!({"defaultAction": "SCMP_ACT_ALLOW", "archMap": []}),
        );
        let e = config_from(&a).unwrap_err().to_string();
        assert!(e.contains("archMap") && e.ends_with("(bad_request)"), "{e}");
        a.security_opt = vec![format!("seccomp={}", t.path().display())];
        assert!(config_from(&a).is_err(), "a directory");
    }

    #[test]
    fn config_files_are_read_safely() {
        let t = TempDir::new("cli-config");
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = format!("{:#}", config_file(&fifo, None).unwrap_err());
        assert!(e.contains("FIFO"), "{e}");
        let big = t.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_CONFIG_FILE as usize + 1]).unwrap();
        let e = format!("{:#}", config_file(&big, None).unwrap_err());
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn seccomp_profile_files_are_read_safely() {
        let t = TempDir::new("cli-seccomp");
        let ok = t.path().join("ok.json");
        std::fs::write(&ok, br#"{"defaultAction":"SCMP_ACT_ALLOW"}"#).unwrap();
        assert!(matches!(
            seccomp_opt(ok.to_str().unwrap()).unwrap(),
            SeccompOption::Custom(_)
        ));
        assert_eq!(seccomp_opt("default").unwrap(), SeccompOption::Default);
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = format!("{:#}", seccomp_opt(fifo.to_str().unwrap()).unwrap_err());
        assert!(e.contains("FIFO"), "{e}");
        let big = t.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_SECCOMP_FILE as usize + 1]).unwrap();
        let e = format!("{:#}", seccomp_opt(big.to_str().unwrap()).unwrap_err());
        assert!(e.contains("larger than"), "{e}");
    }
}
