//! `zctr`: `zctr daemon` serves the container API on a Unix socket; every
//! other subcommand is a thin client of it. This file only parses arguments.
#![deny(unsafe_code)]

mod api;
mod bundle;
mod cli;
mod client;
mod container;
mod create_args;
mod daemon;
mod error;
mod events;
mod lifecycle;
mod logging;
mod logtail;
mod model;
mod nofile;
mod procfs;
mod registry;
mod rmtree;
mod safe_open;
mod say;
mod session;
mod shim_conn;
mod spawn;
mod stats;
mod store;
#[cfg(test)]
mod testutil;
mod units;
mod version;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// A positive number of seconds (decimals allowed, at most a day).
fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 86400.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a number of seconds in (0, 86400]")),
    }
}

#[derive(Debug, Parser)]
#[command(name = "zctr", version, about = "zctr container manager")]
struct Cli {
    /// The daemon's API socket.
    #[arg(
        long,
        global = true,
        env = "ZCTR_SOCKET",
        default_value = "/run/zctr/zctr.sock"
    )]
    socket: PathBuf,
    #[command(subcommand)]
    command: Top,
}

#[derive(Debug, Subcommand)]
enum Top {
    /// Serve the API (containers survive the daemon's restarts).
    Daemon {
        /// State root: one directory per container.
        #[arg(long, default_value = "/run/zctr")]
        root: PathBuf,
        /// Cgroup parent (relative to every hierarchy's root) of all containers.
        #[arg(long, default_value = "zctr")]
        cgroup_parent: String,
        /// The shim binary (default: zctr-shim beside this executable).
        #[arg(long)]
        shim: Option<PathBuf>,
        /// Seconds a connection has to send a complete request head, counted
        /// from its accept or from the end of its previous response (so
        /// also the idle keep-alive timeout).
        #[arg(long, env = "ZCTR_HEADER_TIMEOUT", default_value = "10", value_parser = seconds)]
        header_timeout: Duration,
        /// Seconds a request body has to arrive in full.
        #[arg(long, env = "ZCTR_BODY_TIMEOUT", default_value = "30", value_parser = seconds)]
        body_timeout: Duration,
        /// Most API connections open at once (lowered to fit RLIMIT_NOFILE).
        #[arg(long, env = "ZCTR_MAX_CONNECTIONS", default_value = "512",
              value_parser = clap::value_parser!(u32).range(1..))]
        max_connections: u32,
        /// How diagnostics are written to stderr: human text or one JSON
        /// object per line.
        #[arg(long, env = "ZCTR_LOG_FORMAT", value_enum, default_value = "text")]
        log_format: logging::Format,
        /// Which diagnostics are written: a level (error, warn, info, debug,
        /// trace, off) or `target=level` directives, e.g. `info,zctr::api=debug`.
        #[arg(long, env = "ZCTR_LOG", default_value = "info")]
        log_level: logging::Filter,
        /// Write diagnostics to this file (appended) instead of stderr;
        /// SIGHUP opens it again (for logrotate).
        #[arg(long, env = "ZCTR_LOG_FILE")]
        log_file: Option<PathBuf>,
    },
    #[command(flatten)]
    Client(Box<cli::Command>),
}

/// Errors end the process as one line on stderr (`zctr: what failed: why`),
/// whatever RUST_BACKTRACE says: a command-line user wants the reason, not a
/// stack.
fn main() {
    if let Err(e) = run() {
        eprintln!("zctr: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.command {
        Top::Daemon {
            root,
            cgroup_parent,
            shim,
            header_timeout,
            body_timeout,
            max_connections,
            log_format,
            log_level,
            log_file,
        } => {
            logging::init(log_format, log_level, log_file.as_deref())
                .map_err(anyhow::Error::msg)?;
            let shim = match shim {
                Some(s) => s,
                None => std::env::current_exe()?
                    .parent()
                    .map(|d| d.join("zctr-shim"))
                    .unwrap_or_else(|| PathBuf::from("zctr-shim")),
            };
            rt.block_on(daemon::run(daemon::Options {
                root,
                socket: args.socket,
                cgroup_parent,
                shim,
                limits: api::Limits {
                    header_timeout,
                    body_timeout,
                    max_connections: max_connections as usize,
                },
            }))?;
            Ok(())
        }
        Top::Client(cmd) => {
            let code = match rt.block_on(cli::run(&args.socket, *cmd)) {
                Ok(code) => code,
                Err(e) if e.downcast_ref::<cli::StdoutClosed>().is_some() => {
                    cli::STDOUT_CLOSED_STATUS
                }
                Err(e) => return Err(e),
            };
            drop(rt);
            std::process::exit(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> Result<cli::RunArgs, clap::Error> {
        let argv = ["zctr", "run"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Top::Client(cmd) => match *cmd {
                cli::Command::Run(r) => Ok(r),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_detach_is_the_default_spelled_out_and_excludes_waiting() {
        let r = run_args(&["-d", "-t", "-i", "--rootfs", "/r", "c"]).unwrap();
        assert!(r.detach && r.create.tty && r.create.interactive);
        assert!(!r.attach && !r.wait && !r.rm);
        for bad in [["-d", "--rm"], ["-d", "--wait"], ["-d", "-a"]] {
            let mut args = bad.to_vec();
            args.extend(["--rootfs", "/r", "c"]);
            assert!(run_args(&args).is_err(), "{bad:?}");
        }
    }
}
