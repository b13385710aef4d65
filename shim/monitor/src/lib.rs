//! zctr-shim-monitor: the shim after setup. It depends on `zctr-shim-core`
//! (the hand-off types, the channel, the cgroup, the log file) and never on
//! the setup crate `zctr-shim`: the process that stays for a container's
//! whole life cannot reach, and so does not map, the setup code.
//!
//! Modules allowed to use `unsafe` (each says why in its header):
//! - [`idle`]: releasing the idle loop's pages (madvise, ppoll).
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

mod client;
#[allow(unsafe_code)]
pub mod idle;
pub mod monitor;
mod poll;
mod session;
mod spawn;
pub mod status;

use monitor::Monitor;
use nix::sys::signalfd::SignalFd;
use std::os::fd::AsRawFd;
use zctr_shim_core::handoff::{self, Prepared, MONITOR_BIN};
use zctr_shim_core::{say, sys, SetupError};

/// Takes `p` over in this process: reports "created", starts the container
/// when asked, and runs the monitor loop until the container is gone.
/// Returns the exit code for the shim (the container's for `run`).
pub fn serve(p: Prepared, signals: SignalFd) -> Result<i32, SetupError> {
    let Prepared {
        id,
        created,
        out,
        mut ready,
        start,
        debug,
    } = p;
    if debug {
        say!(
            "zctr-shim: container {id} created, init pid {}",
            created.pid
        );
    }
    let mut m = match Monitor::new(id, created, signals, out) {
        Ok(m) => m,
        Err(e) => {
            // The control connection went down with `out`.
            let e = SetupError::io("monitor", &e);
            e.report("zctr-shim", ready.as_ref().map(|r| r.as_raw_fd()), None);
            return Err(e);
        }
    };
    if let Some(w) = ready.take() {
        // Written and closed: the waiting parent sees "ok" then EOF and exits 0.
        let _ = sys::write_all(w.as_raw_fd(), b"ok");
    }
    if start {
        if let Err((errno, msg)) = m.start() {
            return Err(SetupError::new("start", errno, msg));
        }
    }
    let status = m.run();
    if start && debug {
        say!("zctr-shim: container exited: {status:?}");
    }
    Ok(status.code())
}

/// Entry point of `zctr-shim-monitor --id ID --handoff HEX`.
pub fn main(args: Vec<String>) -> i32 {
    let hex = match args.as_slice() {
        [id_flag, _, handoff_flag, hex] if id_flag == "--id" && handoff_flag == "--handoff" => hex,
        _ => {
            say!(
                "{MONITOR_BIN}: started by zctr-shim after setup, not by hand \
                 (usage: {MONITOR_BIN} --id ID --handoff HEX)"
            );
            return 2;
        }
    };
    let (prepared, signals) = match handoff::receive(hex) {
        Ok(taken) => taken,
        Err(code) => return code,
    };
    match serve(prepared, signals) {
        Ok(code) => code,
        Err(e) => {
            say!("zctr-shim: {e}");
            1
        }
    }
}
