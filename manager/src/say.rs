//! The daemon's diagnostics on its stderr. `eprintln!` panics when stderr
//! cannot be written (a full disk under a log file, a closed pipe), and the
//! release build aborts on panic: the daemon would die of a write error,
//! taking every API client with it. `say!` writes the line and ignores errors.

/// `say!("fmt", args...)`: one line on stderr; a line that cannot be written is lost.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
