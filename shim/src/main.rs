//! zctr-shim: see `zctr-shim --help` and docs/architecture.md.
#![deny(unsafe_code)]

mod app;
mod cgroup;
mod channel;
mod child;
mod cli;
mod client;
mod idmap;
mod launch;
mod logfile;
mod monitor;
mod mountopts;
mod plan;
mod status;
mod sys;

fn main() {
    let code = app::main(std::env::args().skip(1).collect());
    std::process::exit(code);
}
