//! Command-line parsing for `zctr-shim` (hand-written: the shim stays small).

use crate::log;
use std::path::PathBuf;

pub const USAGE: &str = "\
zctr-shim: the per-container shim of zctr.

USAGE:
  zctr-shim create --bundle DIR --id ID --state-dir DIR [--control-fd N] [--log-max BYTES]
                   [--rootfs-overlay DIR [--rootfs-overlay-size BYTES]]
                   [--cgroup-managed] [--stdin] [--debug]
      Create the container described by DIR/config.json up to just before exec,
      then stay as its subreaper in the background. Status frames go to the
      control fd (a stream socket) and to STATE-DIR/shim.sock; the container's
      stdout and stderr go to STATE-DIR/container.log (rotated past --log-max,
      default 1 MiB), the shim's own messages to STATE-DIR/shim.log.
      --rootfs-overlay DIR: the container's root is an overlay on root.path;
      every write goes to a tmpfs of the container's own (mounted nowhere on
      the host, gone with the container's last process; DIR, made mode 0700,
      holds only its empty mount points), root.path is only read and, in a
      user namespace, idmapped. Without it, writes go to root.path itself,
      which is then never idmapped.
      --cgroup-managed: the caller (zctr's manager) created the cgroup and
      applied linux.resources; without it the shim applies them itself.
      --rootfs-overlay-size BYTES: the size of that tmpfs (at least 1 MiB;
      default: the kernel's, half the RAM). Its pages count against the
      container's memory limit.
      --stdin: the init's stdin is a pipe the monitor keeps open for Input and
      CloseInput on session 0 (docs/protocol.md, Sessions); without it,
      /dev/null. With process.terminal the init gets a pty of the container's
      own devpts as its controlling terminal (sized by process.consoleSize),
      relayed as session 0 and logged as stdout; --stdin then lets Input
      reach that terminal.
  zctr-shim run --bundle DIR [--id ID] [--state-dir DIR] [--rootfs-overlay DIR] [--debug]
      Debug one container by hand: create and start it in the foreground with
      stdio attached, print every setup step with --debug, and exit with the
      container's exit code (128+N when killed by signal N).
  zctr-shim start --state-dir DIR      Let a created container exec its process.
  zctr-shim kill --state-dir DIR [SIGNAL]
                                       Send SIGNAL (name or number, default TERM) to its init.
  zctr-shim state --state-dir DIR      Print the container's status.json.
  zctr-shim exec --state-dir DIR [--bundle DIR] [--process FILE] [--cwd D]
                 [--env K=V]... [--tty] [--preserve-fds N] [--report-fd N] [-- CMD ARG...]
      Run CMD in the running container (its init from STATE-DIR/status.json,
      its config from BUNDLE/config.json, default STATE-DIR/bundle): the
      config's process with CMD as args, or --process FILE (a runtime-spec
      process object); --cwd and --env on top; --tty gives it a pty as its
      controlling terminal; --preserve-fds N keeps fds 3..3+N open in it.
      Waits and exits with its code (128+N on signal N; 127/126 when CMD
      cannot be found/executed). --report-fd N (how the monitor runs Exec):
      no wait; `ok PID` or `err ERRNO MESSAGE` goes to fd N, and with --tty
      fd 0 is the pty slave to make the controlling terminal.
  zctr-shim --help | --version

LOGGING (every command):
  --log-level LEVEL   error, warn, info (default), debug, trace or off; the
                      environment variable ZCTR_SHIM_LOG when not given.
  --log-format FMT    text (default: `zctr-shim: LEVEL message key=value...`)
                      or json (one object per line); else ZCTR_SHIM_LOG_FORMAT.
  --debug             At least debug: every setup step, in the container's
                      child too.
  These apply to the setup executable (create, run and the client commands);
  zctr-shim-monitor keeps plain `zctr-shim: ID: message` lines.

Once the container is created, the shim execs zctr-shim-monitor from its own
directory (same process, a smaller executable) to monitor it; without that
file it monitors in-process.
";

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Create(CreateArgs),
    Run(CreateArgs),
    Start { state_dir: PathBuf },
    Kill { state_dir: PathBuf, signal: i32 },
    State { state_dir: PathBuf },
    Exec(crate::setup::exec::command::ExecArgs),
    Help,
    Version,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct CreateArgs {
    pub bundle: PathBuf,
    pub id: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub control_fd: Option<i32>,
    pub log_max: u64,
    /// The rootfs overlay's directory (made 0700; mount points only).
    pub rootfs_overlay: Option<PathBuf>,
    /// The size in bytes of the tmpfs holding the overlay's upper dir.
    pub rootfs_overlay_size: Option<u64>,
    /// The caller (the manager) made the cgroup and applied
    /// `linux.resources`; the shim only joins it.
    pub cgroup_managed: bool,
    /// The init's stdin is a pipe the monitor writes session 0's input to.
    pub stdin: bool,
    pub debug: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}\n\nRun 'zctr-shim --help' for usage.")]
pub struct UsageError(String);

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, UsageError> {
    parse_with_log(args).map(|(c, _)| c)
}

/// [`parse`], plus the logging flags (`--log-level`, `--log-format`,
/// `--debug`) that every command takes.
pub fn parse_with_log<I: IntoIterator<Item = String>>(
    args: I,
) -> Result<(Command, log::Options), UsageError> {
    let mut log = log::Options::default();
    let cmd = parse_inner(args, &mut log)?;
    Ok((cmd, log))
}

fn parse_inner<I: IntoIterator<Item = String>>(
    args: I,
    log: &mut log::Options,
) -> Result<Command, UsageError> {
    let mut it = args.into_iter();
    let Some(cmd) = it.next() else {
        return Err(usage("missing command"));
    };
    let mut c = CreateArgs {
        log_max: 1024 * 1024,
        ..Default::default()
    };
    let mut bundle = None;
    let mut positional = Vec::new();
    let value = |it: &mut dyn Iterator<Item = String>, flag: &str| {
        it.next()
            .ok_or_else(|| usage(format!("{flag} needs a value")))
    };
    match cmd.as_str() {
        "-h" | "--help" | "help" => return Ok(Command::Help),
        "-V" | "--version" => return Ok(Command::Version),
        "create" | "run" | "start" | "kill" | "state" => {}
        "exec" => {
            return crate::setup::exec::command::parse(&mut it, log)
                .map(Command::Exec)
                .map_err(usage)
        }
        other => return Err(usage(format!("unknown command {other:?}"))),
    }
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bundle" | "-b" => bundle = Some(PathBuf::from(value(&mut it, "--bundle")?)),
            "--id" => c.id = Some(value(&mut it, "--id")?),
            "--state-dir" => c.state_dir = Some(PathBuf::from(value(&mut it, "--state-dir")?)),
            "--control-fd" => {
                let v = value(&mut it, "--control-fd")?;
                c.control_fd = Some(v.parse().ok().filter(|&n: &i32| n > 2).ok_or_else(|| {
                    usage(format!("--control-fd: {v:?} is not an fd number above 2"))
                })?);
            }
            "--log-max" => {
                let v = value(&mut it, "--log-max")?;
                c.log_max = v.parse().ok().filter(|&n: &u64| n >= 4096).ok_or_else(|| {
                    usage(format!(
                        "--log-max: {v:?} is not a size of at least 4096 bytes"
                    ))
                })?;
            }
            "--rootfs-overlay" => {
                c.rootfs_overlay = Some(PathBuf::from(value(&mut it, "--rootfs-overlay")?))
            }
            "--rootfs-overlay-size" => {
                let v = value(&mut it, "--rootfs-overlay-size")?;
                let min = crate::setup::overlay::MIN_SIZE;
                c.rootfs_overlay_size =
                    Some(v.parse().ok().filter(|&n: &u64| n >= min).ok_or_else(|| {
                        usage(format!(
                            "--rootfs-overlay-size: {v:?} is not a size of at least {min} bytes"
                        ))
                    })?);
            }
            "--cgroup-managed" => c.cgroup_managed = true,
            "--stdin" => c.stdin = true,
            "--debug" => {
                c.debug = true;
                log.debug = true;
            }
            "--log-level" => {
                let v = value(&mut it, "--log-level")?;
                log.level =
                    Some(log::parse_level(&v).map_err(|e| usage(format!("--log-level: {e}")))?);
            }
            "--log-format" => {
                let v = value(&mut it, "--log-format")?;
                log.format =
                    Some(log::parse_format(&v).map_err(|e| usage(format!("--log-format: {e}")))?);
            }
            "-h" | "--help" => return Ok(Command::Help),
            a if a.starts_with('-') && a.len() > 1 && a.parse::<i32>().is_err() => {
                return Err(usage(format!("unknown option {a:?}")))
            }
            _ => positional.push(arg),
        }
    }
    let need_state = |c: &CreateArgs| {
        c.state_dir
            .clone()
            .ok_or_else(|| usage(format!("{cmd} needs --state-dir")))
    };
    match cmd.as_str() {
        "create" | "run" => {
            if let Some(p) = positional.first() {
                return Err(usage(format!("unexpected argument {p:?}")));
            }
            c.bundle = bundle.ok_or_else(|| usage(format!("{cmd} needs --bundle")))?;
            if c.rootfs_overlay_size.is_some() && c.rootfs_overlay.is_none() {
                return Err(usage("--rootfs-overlay-size needs --rootfs-overlay"));
            }
            if cmd == "create" {
                if c.id.is_none() {
                    return Err(usage("create needs --id"));
                }
                need_state(&c)?;
                Ok(Command::Create(c))
            } else if c.stdin {
                Err(usage(
                    "--stdin is for create (run gives the container the caller's stdin)",
                ))
            } else {
                Ok(Command::Run(c))
            }
        }
        "kill" => {
            let signal = match positional.as_slice() {
                [] => libc::SIGTERM,
                [s] => common::signal::parse(s)
                    .ok_or_else(|| usage(format!("unknown signal {s:?}")))?,
                _ => return Err(usage("kill takes at most one signal")),
            };
            Ok(Command::Kill {
                state_dir: need_state(&c)?,
                signal,
            })
        }
        "start" => Ok(Command::Start {
            state_dir: need_state(&c)?,
        }),
        _ => Ok(Command::State {
            state_dir: need_state(&c)?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, UsageError> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_every_mode() {
        let Command::Create(c) = p(
            "create --bundle /b --id x --state-dir /s --control-fd 3 --debug --rootfs-overlay /s/o --stdin",
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(c.bundle, PathBuf::from("/b"));
        assert_eq!(c.rootfs_overlay, Some(PathBuf::from("/s/o")));
        assert_eq!(c.rootfs_overlay_size, None);
        let Command::Run(r) =
            p("run --bundle /b --rootfs-overlay /o --rootfs-overlay-size 1048576").unwrap()
        else {
            panic!()
        };
        assert_eq!(r.rootfs_overlay_size, Some(1 << 20));
        assert_eq!(c.control_fd, Some(3));
        assert!(c.debug);
        assert!(c.stdin);
        assert!(p("run --bundle /b --stdin").is_err());
        assert!(matches!(p("run --bundle /b").unwrap(), Command::Run(_)));
        assert_eq!(
            p("kill --state-dir /s KILL").unwrap(),
            Command::Kill {
                state_dir: "/s".into(),
                signal: 9
            }
        );
        assert_eq!(
            p("kill --state-dir /s").unwrap(),
            Command::Kill {
                state_dir: "/s".into(),
                signal: 15
            }
        );
        assert_eq!(p("--help").unwrap(), Command::Help);
    }

    #[test]
    fn logging_flags_go_with_every_command() {
        let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let (c, l) =
            parse_with_log(words("run --bundle /b --log-level warn --log-format json")).unwrap();
        assert!(matches!(c, Command::Run(_)));
        assert_eq!(l.level, Some(Some(tracing::Level::WARN)));
        assert_eq!(l.format, Some(log::Format::Json));
        assert!(!l.debug);
        let (_, l) = parse_with_log(words("state --state-dir /s --debug")).unwrap();
        assert!(l.debug && l.level.is_none() && l.format.is_none());
    }

    #[test]
    fn usage_errors_say_what_is_wrong() {
        for (args, needle) in [
            ("create --bundle /b", "--id"),
            ("create --bundle /b --id x", "--state-dir"),
            ("run", "--bundle"),
            ("kill --state-dir /s NOPE", "unknown signal"),
            ("run --bundle /b --frob", "--frob"),
            (
                "run --bundle /b --rootfs-overlay",
                "--rootfs-overlay needs a value",
            ),
            (
                "create --bundle /b --id x --state-dir /s --control-fd 1",
                "control-fd",
            ),
            ("bogus", "unknown command"),
            (
                "run --bundle /b --log-level loud",
                "--log-level: \"loud\" is not",
            ),
            ("state --state-dir /s --log-format xml", "(text, json)"),
            ("state --state-dir /s --log-format", "needs a value"),
            (
                "run --bundle /b --rootfs-overlay /o --rootfs-overlay-size 4096",
                "at least 1048576 bytes",
            ),
            (
                "run --bundle /b --rootfs-overlay /o --rootfs-overlay-size 1M",
                "not a size",
            ),
            (
                "run --bundle /b --rootfs-overlay-size 1048576",
                "needs --rootfs-overlay",
            ),
        ] {
            let e = p(args).unwrap_err();
            assert!(e.to_string().contains(needle), "{args}: {e}");
        }
    }
}
