//! zctr-probe: a static binary run as a test container's process. See `--help`.
#![deny(unsafe_code)]

mod actions;
mod caps;
mod cli;
mod errno;
mod parse;
mod report;
#[allow(unsafe_code)]
mod sys;
#[allow(unsafe_code)]
mod syscalls;

use cli::Command;
use std::process::ExitCode;

fn run(cmd: Command) -> std::io::Result<()> {
    match cmd {
        Command::Help => actions::out(cli::USAGE.trim_end()),
        Command::Report(checks) => {
            let report = report::collect(&checks);
            let line = serde_json::to_string(&report).map_err(std::io::Error::other)?;
            actions::out(&line)
        }
        Command::Exit(_) => Ok(()),
        Command::Sleep { secs, on_term } => actions::sleep_cmd(secs, on_term),
        Command::Orphans {
            children,
            secs,
            hold,
            reap,
        } => actions::orphans(children, secs, hold, reap),
        Command::Alloc { mib, touch, hold } => actions::alloc(mib, touch, hold),
        Command::Counter(path) => actions::counter(&path),
        Command::Forkbomb { count, hold } => actions::forkbomb(count, hold),
        Command::Print(text) => actions::print(&text),
        Command::Syscalls(names) => syscalls::run(&names),
        Command::DeepTree { dir, depth } => actions::deep_tree(&dir, depth),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match cli::parse(&args) {
        Ok(cmd) => cmd,
        Err(msg) => {
            eprintln!("zctr-probe: {msg}\nTry 'zctr-probe --help'.");
            return ExitCode::from(2);
        }
    };
    let code = match cmd {
        Command::Exit(code) => code,
        _ => 0,
    };
    match run(cmd) {
        Ok(()) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("zctr-probe: {e}");
            ExitCode::from(1)
        }
    }
}
