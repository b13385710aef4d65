//! Which build this is, and which build the shim the daemon spawns is: after
//! a partial upgrade (a new `zctr` beside an old `zctr-shim`, or the reverse)
//! `zctr version` shows both and warns.
//!
//! The build is `ZCTR_BUILD` at compile time (scripts/build-static.sh sets it
//! to `git describe --always`), `dev` otherwise.

use serde::Serialize;
use std::path::Path;
use std::time::Duration;

pub const BUILD: &str = match option_env!("ZCTR_BUILD") {
    Some(b) => b,
    None => "dev",
};

/// `zctr 0.1.0 (build 1a2b3c4)`: the line `zctr-shim --version` prints too,
/// with its own name.
pub fn line() -> String {
    format!("zctr {} (build {BUILD})", env!("CARGO_PKG_VERSION"))
}

/// The version part of a `NAME VERSION (build B)` line: what must match.
pub fn version_part(line: &str) -> &str {
    line.trim().split_once(' ').map_or(line.trim(), |(_, v)| v)
}

#[derive(Debug, Serialize)]
pub struct ShimVersion {
    pub path: String,
    /// `zctr-shim --version`'s line; None when it could not be run.
    pub version: Option<String>,
    pub error: Option<String>,
}

/// Runs `shim --version` (at most 5 s).
pub async fn shim(shim: &Path) -> ShimVersion {
    let run = tokio::process::Command::new(shim)
        .arg("--version")
        .kill_on_drop(true)
        .output();
    let (version, error) = match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(out)) if out.status.success() => (
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string()),
            None,
        ),
        Ok(Ok(out)) => (None, Some(format!("exited with {}", out.status))),
        Ok(Err(e)) => (None, Some(e.to_string())),
        Err(_) => (None, Some("no answer within 5 s".to_string())),
    };
    ShimVersion {
        path: shim.display().to_string(),
        version,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_part_drops_the_name() {
        assert_eq!(version_part("zctr 0.1.0 (build abc)"), "0.1.0 (build abc)");
        assert_eq!(
            version_part("zctr-shim 0.1.0 (build abc)\n"),
            "0.1.0 (build abc)"
        );
        assert_eq!(
            version_part(&line()),
            format!("{} (build {BUILD})", env!("CARGO_PKG_VERSION"))
        );
    }
}
