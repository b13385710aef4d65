//! Command-line parsing (pure, unit-tested).

use std::time::Duration;

pub const USAGE: &str = "\
zctr-probe: runs inside a test container and reports what it sees.

USAGE:
  zctr-probe [report] [--open PATH]... [--write PATH]... [--read PATH]...
      Print one JSON object (one line) describing the process's view.
      --open PATH   try to open PATH for reading
      --write PATH  try to create/append to PATH (writes \"zctr-probe\\n\")
      --read PATH   read up to 4 KiB of PATH
  zctr-probe exit CODE
  zctr-probe sleep SECS [--on-term CODE]
      SECS may be fractional or \"inf\". --on-term: exit CODE on SIGTERM/SIGINT
      (needed when the probe is a PID namespace's init).
  zctr-probe orphans N SECS [--hold SECS] [--no-reap]
      Fork N children that each fork a grandchild sleeping SECS, then exit, so the
      grandchildren are reparented. Prints {\"event\":\"spawned\",...}; then holds for
      --hold SECS (default SECS+1) reaping any child (unless --no-reap) and prints
      {\"event\":\"done\",\"reaped\":[...]}.
  zctr-probe alloc MIB [--touch] [--hold SECS]
      Allocate MIB MiB (touching every page with --touch), printing
      \"allocated N MiB\" per MiB, then \"done N MiB\", then sleep (default forever).
  zctr-probe counter PATH
      Every 100 ms write an incremented number to PATH (atomically), forever.
  zctr-probe forkbomb N [--hold SECS]
      Try to fork N children (which wait); stop at the first failure, print
      {\"requested\",\"succeeded\",\"errno\",\"error\"}, hold SECS (default 0),
      kill and reap them, exit 0.
  zctr-probe print TEXT
  zctr-probe deeptree DIR DEPTH      make DIR and DEPTH nested directories in it
                                     (relative mkdir + chdir: no path length limit)
      Print TEXT to stdout and to stderr, exit 0.
  zctr-probe syscalls [NAME]...
      Try each named call (default: all the probe knows, e.g. io_uring_setup,
      socket_packet, unshare_user, clone3, getpriority_pgrp) in a forked child and
      print {\"syscalls\":{NAME:{\"ok\":true}|{\"errno\":\"EPERM\",\"errno_num\":1}|{\"signal\":31}}}.
  zctr-probe --help

Exit codes: 0 ok, 1 runtime failure, 2 usage error.
";

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    Report(Checks),
    Exit(i32),
    Sleep {
        secs: Option<Duration>,
        on_term: Option<i32>,
    },
    Orphans {
        children: u32,
        secs: Duration,
        hold: Duration,
        reap: bool,
    },
    Alloc {
        mib: u64,
        touch: bool,
        hold: Option<Duration>,
    },
    Counter(String),
    Forkbomb {
        count: u32,
        hold: Duration,
    },
    Print(String),
    Syscalls(Vec<String>),
    /// Make DIR, then DEPTH directories each inside the last.
    DeepTree {
        dir: String,
        depth: u32,
    },
}

/// Checks requested with `report`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checks {
    pub open: Vec<String>,
    pub write: Vec<String>,
    pub read: Vec<String>,
}

/// Parse argv (without the program name). `Err` is a usage message.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter().map(String::as_str);
    let Some(first) = it.next() else {
        return Ok(Command::Report(Checks::default()));
    };
    let rest: Vec<&str> = it.collect();
    match first {
        "--help" | "-h" | "help" => Ok(Command::Help),
        "report" => report(&rest),
        f if f.starts_with("--") => report(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        "exit" => {
            let [code] = exact::<1>("exit", &rest)?;
            let code: i32 = number("CODE", code)?;
            if !(0..=255).contains(&code) {
                return Err(format!("exit code must be 0..=255, got {code}"));
            }
            Ok(Command::Exit(code))
        }
        "sleep" => {
            let (pos, opts) = split_opts(&rest, &["--on-term"], &[])?;
            let [secs] = exact::<1>("sleep", &pos)?;
            let on_term = opts
                .value("--on-term")
                .map(|v| number("CODE", v))
                .transpose()?;
            Ok(Command::Sleep {
                secs: duration_or_inf(secs)?,
                on_term,
            })
        }
        "orphans" => {
            let (pos, opts) = split_opts(&rest, &["--hold"], &["--no-reap"])?;
            let [n, secs] = exact::<2>("orphans", &pos)?;
            let secs = duration(secs)?;
            let hold = match opts.value("--hold") {
                Some(h) => duration(h)?,
                None => secs + Duration::from_secs(1),
            };
            Ok(Command::Orphans {
                children: number("N", n)?,
                secs,
                hold,
                reap: !opts.flag("--no-reap"),
            })
        }
        "alloc" => {
            let (pos, opts) = split_opts(&rest, &["--hold"], &["--touch"])?;
            let [mib] = exact::<1>("alloc", &pos)?;
            Ok(Command::Alloc {
                mib: number("MIB", mib)?,
                touch: opts.flag("--touch"),
                hold: opts.value("--hold").map(duration).transpose()?,
            })
        }
        "counter" => {
            let [path] = exact::<1>("counter", &rest)?;
            Ok(Command::Counter(path.to_string()))
        }
        "forkbomb" => {
            let (pos, opts) = split_opts(&rest, &["--hold"], &[])?;
            let [n] = exact::<1>("forkbomb", &pos)?;
            Ok(Command::Forkbomb {
                count: number("N", n)?,
                hold: opts
                    .value("--hold")
                    .map(duration)
                    .transpose()?
                    .unwrap_or_default(),
            })
        }
        "print" => {
            let [text] = exact::<1>("print", &rest)?;
            Ok(Command::Print(text.to_string()))
        }
        "deeptree" => {
            let [dir, depth] = exact::<2>("deeptree", &rest)?;
            Ok(Command::DeepTree {
                dir: dir.to_string(),
                depth: number("DEPTH", depth)?,
            })
        }
        "syscalls" => Ok(Command::Syscalls(
            rest.iter().map(|s| s.to_string()).collect(),
        )),
        other => Err(format!("unknown subcommand {other:?}")),
    }
}

fn report(args: &[&str]) -> Result<Command, String> {
    let mut checks = Checks::default();
    let mut it = args.iter();
    while let Some(&opt) = it.next() {
        let list = match opt {
            "--open" => &mut checks.open,
            "--write" => &mut checks.write,
            "--read" => &mut checks.read,
            other => return Err(format!("report: unknown option {other:?}")),
        };
        let value = it
            .next()
            .ok_or_else(|| format!("report: {opt} needs a PATH"))?;
        list.push((*value).to_string());
    }
    Ok(Command::Report(checks))
}

struct Opts<'a> {
    values: Vec<(&'a str, &'a str)>,
    flags: Vec<&'a str>,
}

impl Opts<'_> {
    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
    fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }
}

/// Split positional arguments from known `--opt VALUE` and `--flag` options.
fn split_opts<'a>(
    args: &[&'a str],
    with_value: &[&str],
    flags: &[&str],
) -> Result<(Vec<&'a str>, Opts<'a>), String> {
    let mut pos = Vec::new();
    let mut opts = Opts {
        values: Vec::new(),
        flags: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        if with_value.contains(&a) {
            let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
            opts.values.push((a, v));
        } else if flags.contains(&a) {
            opts.flags.push(a);
        } else if a.starts_with("--") {
            return Err(format!("unknown option {a:?}"));
        } else {
            pos.push(a);
        }
    }
    Ok((pos, opts))
}

fn exact<'a, const N: usize>(cmd: &str, args: &[&'a str]) -> Result<[&'a str; N], String> {
    <[&str; N]>::try_from(args)
        .map_err(|_| format!("{cmd}: expected {N} argument(s), got {}", args.len()))
}

fn number<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{what}: not a valid number: {s:?}"))
}

fn duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = number("SECS", s)?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("SECS: invalid duration {s:?}"))
}

fn duration_or_inf(s: &str) -> Result<Option<Duration>, String> {
    if s == "inf" || s == "infinity" {
        Ok(None)
    } else {
        duration(s).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn report_is_default() {
        assert_eq!(p(&[]), Ok(Command::Report(Checks::default())));
        let c = p(&[
            "--open", "/a", "--read", "/b", "--write", "/c", "--open", "/d",
        ])
        .unwrap();
        let Command::Report(c) = c else { panic!() };
        assert_eq!(c.open, vec!["/a", "/d"]);
        assert_eq!(c.read, vec!["/b"]);
        assert_eq!(c.write, vec!["/c"]);
        assert!(p(&["report", "--open"]).is_err());
        assert!(p(&["report", "--bogus", "x"]).is_err());
    }

    #[test]
    fn subcommands() {
        assert_eq!(p(&["exit", "3"]), Ok(Command::Exit(3)));
        assert!(p(&["exit", "256"]).is_err());
        assert!(p(&["exit"]).is_err());
        assert_eq!(
            p(&["sleep", "0.5"]),
            Ok(Command::Sleep {
                secs: Some(Duration::from_millis(500)),
                on_term: None
            })
        );
        assert_eq!(
            p(&["sleep", "inf", "--on-term", "0"]),
            Ok(Command::Sleep {
                secs: None,
                on_term: Some(0)
            })
        );
        assert_eq!(
            p(&["orphans", "3", "2"]),
            Ok(Command::Orphans {
                children: 3,
                secs: Duration::from_secs(2),
                hold: Duration::from_secs(3),
                reap: true
            })
        );
        assert_eq!(
            p(&["orphans", "1", "1", "--hold", "0", "--no-reap"]),
            Ok(Command::Orphans {
                children: 1,
                secs: Duration::from_secs(1),
                hold: Duration::ZERO,
                reap: false
            })
        );
        assert_eq!(
            p(&["alloc", "64", "--touch"]),
            Ok(Command::Alloc {
                mib: 64,
                touch: true,
                hold: None
            })
        );
        assert_eq!(
            p(&["counter", "/tmp/c"]),
            Ok(Command::Counter("/tmp/c".into()))
        );
        assert_eq!(
            p(&["forkbomb", "100"]),
            Ok(Command::Forkbomb {
                count: 100,
                hold: Duration::ZERO
            })
        );
        assert_eq!(
            p(&["print", "hi there"]),
            Ok(Command::Print("hi there".into()))
        );
        assert_eq!(p(&["--help"]), Ok(Command::Help));
        assert!(p(&["sleep", "-1"]).is_err());
        assert!(p(&["alloc", "x"]).is_err());
        assert!(p(&["nope"]).is_err());
    }
}
