//! Command-line parsing, runc's way: global flags, then the command, its
//! flags (`--name value`, `--name=value`, `-n value`; booleans also as
//! `--name=true|false`) and its arguments. Hand-written (no clap: the binary
//! stays small).

use std::path::PathBuf;

pub const USAGE: &str = "\
zctr-oci: a runc-compatible OCI runtime (zctr's setup code, no daemon).

USAGE: zctr-oci [GLOBAL OPTIONS] COMMAND [OPTIONS] ARGS

GLOBAL OPTIONS:
  --root DIR              state directories (default /run/zctr-oci)
  --log FILE              also write log lines to FILE
  --log-format text|json  format of the --log lines (default text)
  --debug                 debug lines too
  --systemd-cgroup        refused: zctr-oci manages cgroupfs paths only
  --help, -h | --version, -v

COMMANDS:
  create [--bundle|-b DIR] [--pid-file F] [--console-socket S] [--preserve-fds N]
         [--no-pivot] [--no-new-keyring] ID
  start ID
  run    [create's flags] [--detach|-d] ID
  state ID
  kill [--all|-a] ID [SIGNAL]          (name or number, default TERM)
  delete [--force|-f] ID
  list [--format|-f table|json] [--quiet|-q]
  ps [--format|-f table|json] ID [PS ARGS]
  pause ID | resume ID
  update [--resources|-r FILE|-] [--memory N] [--memory-swap N] [--memory-reservation N]
         [--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--cpuset-cpus L]
         [--cpuset-mems L] [--pids-limit N] [--blkio-weight N] ID
  exec [--process|-p FILE] [--tty|-t] [--console-socket S] [--detach|-d]
       [--pid-file F] [--env|-e K=V]... [--cwd DIR] [--user|-u UID[:GID]]
       [--cap CAP]... [--no-new-privs] [--additional-gids GID]... [--preserve-fds N]
       ID [COMMAND ARGS...]
  features
  spec [--bundle|-b DIR] [--rootless]
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    pub root: PathBuf,
    pub log: Option<PathBuf>,
    pub log_format: LogFormat,
    pub debug: bool,
    pub systemd_cgroup: bool,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            root: PathBuf::from("/run/zctr-oci"),
            log: None,
            log_format: LogFormat::Text,
            debug: false,
            systemd_cgroup: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecArgs {
    pub id: String,
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub additional_gids: Vec<String>,
    pub preserve_fds: u32,
}

/// `update`'s flags (values as given; parsed by `update`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdateArgs {
    pub id: String,
    pub resources: Option<String>,
    /// (flag name without dashes, value)
    pub values: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create(CreateArgs),
    Run {
        create: CreateArgs,
        detach: bool,
    },
    Start(String),
    State(String),
    Kill {
        id: String,
        signal: i32,
        all: bool,
    },
    Delete {
        id: String,
        force: bool,
    },
    List {
        json: bool,
        quiet: bool,
    },
    Ps {
        id: String,
        json: bool,
        ps_args: Vec<String>,
    },
    Pause(String),
    Resume(String),
    Update(UpdateArgs),
    Exec(ExecArgs),
    Features,
    Spec {
        bundle: PathBuf,
        rootless: bool,
    },
    Help,
    Version,
}

/// A flag a command knows: its names and whether it takes a value.
struct Flag {
    names: &'static [&'static str],
    value: bool,
}

const fn f(names: &'static [&'static str], value: bool) -> Flag {
    Flag { names, value }
}

const CREATE_FLAGS: &[Flag] = &[
    f(&["bundle", "b"], true),
    f(&["pid-file"], true),
    f(&["console-socket"], true),
    f(&["preserve-fds"], true),
    f(&["no-pivot"], false),
    f(&["no-new-keyring"], false),
];

const RUN_FLAGS: &[Flag] = &[
    f(&["bundle", "b"], true),
    f(&["pid-file"], true),
    f(&["console-socket"], true),
    f(&["preserve-fds"], true),
    f(&["no-pivot"], false),
    f(&["no-new-keyring"], false),
    f(&["detach", "d"], false),
    f(&["keep"], false),
];

const UPDATE_VALUE_FLAGS: &[&str] = &[
    "memory",
    "memory-swap",
    "memory-reservation",
    "kernel-memory",
    "kernel-memory-tcp",
    "cpu-shares",
    "cpu-quota",
    "cpu-period",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpuset-cpus",
    "cpuset-mems",
    "pids-limit",
    "blkio-weight",
    "l3-cache-schema",
    "mem-bw-schema",
];

/// The parsed flags: (first name, value or "true"/"false"), in order.
type Parsed = Vec<(&'static str, String)>;

fn lookup<'a>(flags: &'a [Flag], name: &str) -> Option<&'a Flag> {
    flags.iter().find(|f| f.names.contains(&name))
}

/// Splits `args` into flags and positionals. With `stop_at_positional`,
/// everything after the first positional is positional (exec's command).
fn split(
    args: &[String],
    flags: &[Flag],
    stop_at_positional: bool,
) -> Result<(Parsed, Vec<String>), String> {
    let mut parsed = Vec::new();
    let mut pos = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            pos.extend(args[i..].iter().cloned());
            break;
        }
        let body = match a.strip_prefix("--").or_else(|| a.strip_prefix('-')) {
            Some(b) if !b.is_empty() && a != "-" => b,
            _ => {
                pos.push(a.clone());
                if stop_at_positional {
                    pos.extend(args[i..].iter().cloned());
                    break;
                }
                continue;
            }
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let flag =
            lookup(flags, name).ok_or_else(|| format!("flag provided but not defined: -{name}"))?;
        let value = if flag.value {
            match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| format!("flag needs an argument: -{name}"))?;
                    i += 1;
                    v.clone()
                }
            }
        } else {
            match inline.as_deref() {
                None | Some("true") | Some("1") => "true".into(),
                Some("false") | Some("0") => "false".into(),
                Some(v) => return Err(format!("invalid boolean value {v:?} for -{name}")),
            }
        };
        parsed.push((flag.names[0], value));
    }
    Ok((parsed, pos))
}

fn get<'a>(p: &'a Parsed, name: &str) -> Option<&'a str> {
    p.iter()
        .rev()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn all(p: &Parsed, name: &str) -> Vec<String> {
    p.iter()
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.clone())
        .collect()
}

fn on(p: &Parsed, name: &str) -> bool {
    get(p, name) == Some("true")
}

fn count(p: &Parsed, name: &str) -> Result<u32, String> {
    match get(p, name) {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| format!("invalid value {v:?} for --{name}: not a count")),
    }
}

/// Exactly one positional: the container id.
fn one_id(cmd: &str, pos: Vec<String>) -> Result<String, String> {
    match <[String; 1]>::try_from(pos) {
        Ok([id]) if !id.is_empty() => Ok(id),
        _ => Err(format!(
            "\"{cmd}\" requires exactly 1 argument (the container id)"
        )),
    }
}

fn create_args(cmd: &str, p: &Parsed, pos: Vec<String>) -> Result<CreateArgs, String> {
    Ok(CreateArgs {
        id: one_id(cmd, pos)?,
        bundle: PathBuf::from(get(p, "bundle").unwrap_or(".")),
        pid_file: get(p, "pid-file").map(PathBuf::from),
        console_socket: get(p, "console-socket").map(PathBuf::from),
        preserve_fds: count(p, "preserve-fds")?,
        no_pivot: on(p, "no-pivot"),
        no_new_keyring: on(p, "no-new-keyring"),
    })
}

fn table_or_json(p: &Parsed) -> Result<bool, String> {
    match get(p, "format").unwrap_or("table") {
        "table" => Ok(false),
        "json" => Ok(true),
        other => Err(format!("invalid format option {other:?}: table or json")),
    }
}

/// Parses the whole command line (without the program name).
pub fn parse(args: &[String]) -> Result<(Global, Command), String> {
    let mut g = Global::default();
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        let a = args[i].trim_start_matches('-');
        i += 1;
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (a, None),
        };
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = args
                .get(i)
                .cloned()
                .ok_or_else(|| format!("flag needs an argument: --{name}"))?;
            i += 1;
            Ok(v)
        };
        let truth = |v: &Option<String>| !matches!(v.as_deref(), Some("false") | Some("0"));
        match name {
            "root" => g.root = PathBuf::from(value()?),
            "log" => g.log = Some(PathBuf::from(value()?)).filter(|p| !p.as_os_str().is_empty()),
            "log-format" => {
                g.log_format = match value()?.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => return Err(format!("unknown log-format {other:?}: text or json")),
                }
            }
            "debug" => g.debug = truth(&inline),
            "systemd-cgroup" => g.systemd_cgroup = truth(&inline),
            // Accepted for compatibility, without effect here.
            "criu" => {
                value()?;
            }
            "rootless" => {
                if !matches!(value()?.as_str(), "false" | "auto") {
                    return Err("--rootless: rootless mode is not supported".into());
                }
            }
            "help" | "h" => return Ok((g, Command::Help)),
            "version" | "v" => return Ok((g, Command::Version)),
            _ => return Err(format!("flag provided but not defined: -{name}")),
        }
    }
    let Some(cmd) = args.get(i) else {
        return Ok((g, Command::Help));
    };
    let rest = &args[i + 1..];
    let c = match cmd.as_str() {
        "create" => {
            let (p, pos) = split(rest, CREATE_FLAGS, false)?;
            Command::Create(create_args(cmd, &p, pos)?)
        }
        "run" => {
            let (p, pos) = split(rest, RUN_FLAGS, false)?;
            Command::Run {
                create: create_args(cmd, &p, pos)?,
                detach: on(&p, "detach"),
            }
        }
        "start" => Command::Start(one_id(cmd, split(rest, &[], false)?.1)?),
        "state" => Command::State(one_id(cmd, split(rest, &[], false)?.1)?),
        "pause" => Command::Pause(one_id(cmd, split(rest, &[], false)?.1)?),
        "resume" => Command::Resume(one_id(cmd, split(rest, &[], false)?.1)?),
        "kill" => {
            let (p, mut pos) = split(rest, &[f(&["all", "a"], false)], false)?;
            let signal = match pos.len() {
                1 => libc::SIGTERM,
                2 => {
                    let s = pos.pop().unwrap_or_default();
                    common::signal::parse(&s).ok_or_else(|| format!("unknown signal {s:?}"))?
                }
                _ => return Err("\"kill\" requires 1 or 2 arguments: ID [SIGNAL]".into()),
            };
            Command::Kill {
                id: one_id(cmd, pos)?,
                signal,
                all: on(&p, "all"),
            }
        }
        "delete" => {
            let (p, pos) = split(rest, &[f(&["force", "f"], false)], false)?;
            Command::Delete {
                id: one_id(cmd, pos)?,
                force: on(&p, "force"),
            }
        }
        "list" => {
            let (p, pos) = split(
                rest,
                &[f(&["format", "f"], true), f(&["quiet", "q"], false)],
                false,
            )?;
            if !pos.is_empty() {
                return Err("\"list\" takes no arguments".into());
            }
            Command::List {
                json: table_or_json(&p)?,
                quiet: on(&p, "quiet"),
            }
        }
        "ps" => {
            let (p, mut pos) = split(rest, &[f(&["format", "f"], true)], true)?;
            if pos.is_empty() {
                return Err("\"ps\" requires the container id".into());
            }
            let id = pos.remove(0);
            Command::Ps {
                id,
                json: table_or_json(&p)?,
                ps_args: pos,
            }
        }
        "update" => {
            let mut flags: Vec<Flag> = vec![f(&["resources", "r"], true)];
            for name in UPDATE_VALUE_FLAGS {
                flags.push(f(std::slice::from_ref(name), true));
            }
            let (p, pos) = split(rest, &flags, false)?;
            Command::Update(UpdateArgs {
                id: one_id(cmd, pos)?,
                resources: get(&p, "resources").map(str::to_string),
                values: p
                    .iter()
                    .filter(|(n, _)| *n != "resources")
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect(),
            })
        }
        "exec" => {
            let (p, mut pos) = split(
                rest,
                &[
                    f(&["process", "p"], true),
                    f(&["tty", "t"], false),
                    f(&["console-socket"], true),
                    f(&["detach", "d"], false),
                    f(&["pid-file"], true),
                    f(&["env", "e"], true),
                    f(&["cwd"], true),
                    f(&["user", "u"], true),
                    f(&["cap", "c"], true),
                    f(&["no-new-privs"], false),
                    f(&["additional-gids", "g"], true),
                    f(&["preserve-fds"], true),
                    f(&["process-label"], true),
                    f(&["apparmor"], true),
                    f(&["ignore-paused"], false),
                    f(&["cgroup"], true),
                ],
                true,
            )?;
            for unsupported in ["process-label", "apparmor", "cgroup"] {
                if get(&p, unsupported).is_some() {
                    return Err(format!("exec --{unsupported} is not supported by zctr-oci"));
                }
            }
            if pos.is_empty() {
                return Err("\"exec\" requires the container id".into());
            }
            let id = pos.remove(0);
            if pos.is_empty() && get(&p, "process").is_none() {
                return Err("exec: neither --process nor a command was given".into());
            }
            Command::Exec(ExecArgs {
                id,
                process: get(&p, "process").map(PathBuf::from),
                args: pos,
                tty: on(&p, "tty"),
                console_socket: get(&p, "console-socket").map(PathBuf::from),
                detach: on(&p, "detach"),
                pid_file: get(&p, "pid-file").map(PathBuf::from),
                env: all(&p, "env"),
                cwd: get(&p, "cwd").map(str::to_string),
                user: get(&p, "user").map(str::to_string),
                caps: all(&p, "cap"),
                no_new_privs: on(&p, "no-new-privs"),
                additional_gids: all(&p, "additional-gids"),
                preserve_fds: count(&p, "preserve-fds")?,
            })
        }
        "features" => {
            split(rest, &[], false)?;
            Command::Features
        }
        "spec" => {
            let (p, pos) = split(
                rest,
                &[f(&["bundle", "b"], true), f(&["rootless"], false)],
                false,
            )?;
            if !pos.is_empty() {
                return Err("\"spec\" takes no arguments".into());
            }
            Command::Spec {
                bundle: PathBuf::from(get(&p, "bundle").unwrap_or(".")),
                rootless: on(&p, "rootless"),
            }
        }
        "help" => Command::Help,
        other => return Err(format!("No help topic for '{other}'")),
    };
    Ok((g, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<(Global, Command), String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn globals_then_create_like_containerd_calls_it() {
        let (g, c) = p(
            "--root /r --log /l.json --log-format json create --bundle /b \
                        --pid-file /p --console-socket=/s --preserve-fds 2 id1",
        )
        .unwrap();
        assert_eq!(g.root, PathBuf::from("/r"));
        assert_eq!(g.log, Some(PathBuf::from("/l.json")));
        assert_eq!(g.log_format, LogFormat::Json);
        let Command::Create(a) = c else { panic!() };
        assert_eq!(a.id, "id1");
        assert_eq!(a.bundle, PathBuf::from("/b"));
        assert_eq!(a.pid_file, Some(PathBuf::from("/p")));
        assert_eq!(a.console_socket, Some(PathBuf::from("/s")));
        assert_eq!(a.preserve_fds, 2);
    }

    #[test]
    fn short_forms_signals_and_booleans() {
        let (_, c) = p("run -b /b -d x").unwrap();
        assert!(matches!(c, Command::Run { detach: true, .. }));
        let (_, c) = p("kill --all x KILL").unwrap();
        assert_eq!(
            c,
            Command::Kill {
                id: "x".into(),
                signal: 9,
                all: true
            }
        );
        let (_, c) = p("kill x 15").unwrap();
        assert!(matches!(
            c,
            Command::Kill {
                signal: 15,
                all: false,
                ..
            }
        ));
        let (_, c) = p("kill x SIGUSR1").unwrap();
        assert!(matches!(c, Command::Kill { signal: 10, .. }));
        assert!(p("kill x NOPE").is_err());
        let (_, c) = p("delete --force=false x").unwrap();
        assert!(matches!(c, Command::Delete { force: false, .. }));
        let (_, c) = p("list -f json -q").unwrap();
        assert_eq!(
            c,
            Command::List {
                json: true,
                quiet: true
            }
        );
    }

    #[test]
    fn exec_keeps_the_command_flags_for_the_command() {
        let (_, c) = p("exec -t -e A=1 --env B=2 -u 1:2 x sh -c ls").unwrap();
        let Command::Exec(e) = c else { panic!() };
        assert_eq!(e.id, "x");
        assert_eq!(e.args, vec!["sh", "-c", "ls"]);
        assert_eq!(e.env, vec!["A=1", "B=2"]);
        assert_eq!(e.user.as_deref(), Some("1:2"));
        assert!(e.tty);
    }

    #[test]
    fn usage_errors_name_the_problem() {
        assert!(p("create")
            .unwrap_err()
            .contains("requires exactly 1 argument"));
        assert!(p("create --nope x").unwrap_err().contains("not defined"));
        assert!(p("create --bundle")
            .unwrap_err()
            .contains("needs an argument"));
        assert!(p("bogus").unwrap_err().contains("bogus"));
        assert!(p("--log-format xml state x").is_err());
    }

    #[test]
    fn update_collects_its_values() {
        let (_, c) = p("update --memory 1000 --pids-limit=5 -r - x").unwrap();
        let Command::Update(u) = c else { panic!() };
        assert_eq!(u.resources.as_deref(), Some("-"));
        assert_eq!(
            u.values,
            vec![
                ("memory".to_string(), "1000".to_string()),
                ("pids-limit".to_string(), "5".to_string())
            ]
        );
    }
}
