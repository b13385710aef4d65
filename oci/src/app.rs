//! One command line to one exit code: 0 on success, 1 on any failure (the
//! message on stderr and in --log), `run`: the container's exit code.

use crate::cli::{self, Command};
use crate::error::Result;
use crate::{create, log, manage};

pub fn main(args: Vec<String>) -> i32 {
    let (g, cmd) = match cli::parse(&args) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("zctr-oci: {e}");
            eprintln!("(zctr-oci --help for usage)");
            return 1;
        }
    };
    log::init(&g);
    match dispatch(&g, cmd) {
        Ok(code) => code,
        Err(e) => {
            log::error(&e.to_string());
            1
        }
    }
}

fn dispatch(g: &cli::Global, cmd: Command) -> Result<i32> {
    match cmd {
        Command::Help => print!("{}", cli::USAGE),
        Command::Version => {
            println!("zctr-oci version {}", env!("CARGO_PKG_VERSION"));
            println!("spec: {}", crate::state::OCI_VERSION);
        }
        Command::Create(a) => {
            create::create(g, &a, false)?;
        }
        Command::Run { create: a, detach } => {
            let c = create::create(g, &a, !detach)?;
            if detach {
                manage::start(g, &a.id)?;
            } else {
                return manage::run_foreground(c);
            }
        }
        Command::Start(id) => manage::start(g, &id)?,
        Command::State(id) => manage::state(g, &id)?,
        Command::Kill { id, signal, all } => manage::kill(g, &id, signal, all)?,
        Command::Delete { id, force } => manage::delete(g, &id, force)?,
        Command::List { json, quiet } => manage::list(g, json, quiet)?,
        Command::Ps { id, json, ps_args } => manage::ps(g, &id, json, &ps_args)?,
        Command::Pause(id) => manage::pause(g, &id)?,
        Command::Resume(id) => manage::resume(g, &id)?,
        Command::Update(u) => crate::update::update(g, &u)?,
        Command::Exec(a) => return crate::exec::exec(g, &a),
        Command::Features => crate::features::print()?,
        Command::Spec { bundle, rootless } => crate::spec::write(&bundle, rootless)?,
    }
    Ok(0)
}
