//! The daemon's own descriptor limit: raised at start (soft to hard) so that
//! API connections and containers do not run it out, and remembered so that
//! the shims it starts get the limit the daemon was started with (a
//! program in a container may use `select`, which breaks above 1024).

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::sync::OnceLock;

/// `(soft, hard)` of `RLIMIT_NOFILE` as the daemon found it.
static ORIGINAL: OnceLock<(u64, u64)> = OnceLock::new();

/// Raises the soft `RLIMIT_NOFILE` to the hard one; returns the soft limit
/// now in force.
pub fn raise() -> Result<u64, nix::Error> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let _ = ORIGINAL.set((soft, hard));
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}

/// The limit the daemon was started with, once [`raise`] ran.
pub fn original() -> Option<(u64, u64)> {
    ORIGINAL.get().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_sets_soft_to_hard_and_remembers_the_original() {
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(raise().unwrap(), hard);
        assert_eq!(getrlimit(Resource::RLIMIT_NOFILE).unwrap(), (hard, hard));
        assert!(original().unwrap().1 == hard);
    }
}
