//! `zctr`: `zctr daemon` serves the container API on a Unix socket; every
//! other subcommand is a thin client of it. This file only parses arguments.
#![deny(unsafe_code)]

mod api;
mod bundle;
mod cgroups;
mod cli;
mod container;
mod daemon;
mod error;
mod lifecycle;
mod logtail;
mod model;
mod procfs;
mod registry;
mod say;
mod shim_conn;
mod spawn;
mod store;
#[cfg(test)]
mod testutil;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    },
    #[command(flatten)]
    Client(Box<cli::Command>),
}

fn main() -> anyhow::Result<()> {
    let args = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.command {
        Top::Daemon {
            root,
            cgroup_parent,
            shim,
        } => {
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
            }))?;
            Ok(())
        }
        Top::Client(cmd) => {
            let code = rt.block_on(cli::run(&args.socket, *cmd))?;
            drop(rt);
            std::process::exit(code);
        }
    }
}
