//! `say!`, the daemon's old one-line diagnostic, now a `tracing` warning
//! (see [`crate::logging`]: never panics on an unwritable stderr). Kept for
//! the call sites in registry.rs and container.rs until they are rewritten as
//! tracing events with fields; new code uses `tracing` directly.

/// `say!("zctr: fmt", args...)`: a `warn` event; the old `zctr: ` prefix of
/// the text is dropped (every event already names its target).
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        let text = format!($($arg)*);
        tracing::warn!("{}", text.strip_prefix("zctr: ").unwrap_or(&text));
    }};
}
