//! zctr-shim-monitor: the monitor loop alone, which `zctr-shim` becomes
//! (exec, same process) once a container is created. See
//! `zctr_shim_core::handoff`.
#![deny(unsafe_code)]

fn main() {
    let code = zctr_shim_monitor::main(std::env::args().skip(1).collect());
    std::process::exit(code);
}
