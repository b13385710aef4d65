//! zctr-shim: see `zctr-shim --help` and docs/shim.md.
#![deny(unsafe_code)]

fn main() {
    let code = zctr_shim::app::main(std::env::args().skip(1).collect());
    std::process::exit(code);
}
