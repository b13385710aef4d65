//! Restart policies: whether the manager starts a container again after it
//! stopped, and after how long (exponential back-off, capped, reset once the
//! container has run for a while).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// `no` (default), `on-failure[:N]` (a non-zero exit, at most N restarts),
/// `always`, `unless-stopped`. A container stopped by the user (`stop`,
/// `kill`) or deleted is never restarted by its policy; `always` and
/// `unless-stopped` differ only in that a user's `start` counts for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure {
        max: Option<u32>,
    },
    Always,
    UnlessStopped,
}

/// The first back-off; each restart in a row doubles it.
pub const BACKOFF_START: Duration = Duration::from_millis(100);
/// The longest back-off.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A container that ran this long before it stopped starts a new row.
pub const RESET_AFTER: Duration = Duration::from_secs(10);

impl RestartPolicy {
    pub fn is_no(&self) -> bool {
        *self == RestartPolicy::No
    }

    /// Whether a container that stopped with `exit_code` (None: unknown, e.g.
    /// its shim died) after `restarts` restarts is started again.
    pub fn wants_restart(self, exit_code: Option<i32>, restarts: u32, by_user: bool) -> bool {
        if by_user {
            return false;
        }
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure { max } => {
                exit_code != Some(0) && max.is_none_or(|m| restarts < m)
            }
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        }
    }
}

/// The wait before restart number `step` of a row (0: the first).
pub fn backoff(step: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(1u32.checked_shl(step.min(31)).unwrap_or(u32::MAX))
        .min(BACKOFF_MAX)
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::OnFailure { max: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure { max: Some(n) } => write!(f, "on-failure:{n}"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

impl FromStr for RestartPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("{s:?} is not a restart policy (no, on-failure[:N], always, unless-stopped)")
        };
        Ok(match s.split_once(':') {
            None => match s {
                "no" => RestartPolicy::No,
                "on-failure" => RestartPolicy::OnFailure { max: None },
                "always" => RestartPolicy::Always,
                "unless-stopped" => RestartPolicy::UnlessStopped,
                _ => return Err(bad()),
            },
            Some(("on-failure", n)) => RestartPolicy::OnFailure {
                max: Some(n.parse().ok().filter(|&n: &u32| n > 0).ok_or_else(bad)?),
            },
            Some(_) => return Err(bad()),
        })
    }
}

impl TryFrom<String> for RestartPolicy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<RestartPolicy> for String {
    fn from(p: RestartPolicy) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_and_write_as_people_write_them() {
        for s in [
            "no",
            "on-failure",
            "on-failure:3",
            "always",
            "unless-stopped",
        ] {
            assert_eq!(s.parse::<RestartPolicy>().unwrap().to_string(), s);
        }
        for bad in [
            "",
            "yes",
            "on-failure:",
            "on-failure:0",
            "on-failure:x",
            "always:2",
        ] {
            assert!(bad.parse::<RestartPolicy>().is_err(), "{bad}");
        }
        let p: RestartPolicy = serde_json::from_str("\"on-failure:2\"").unwrap();
        assert_eq!(p, RestartPolicy::OnFailure { max: Some(2) });
        assert!(serde_json::from_str::<RestartPolicy>("\"sometimes\"").is_err());
    }

    #[test]
    fn who_restarts() {
        let of3 = RestartPolicy::OnFailure { max: Some(3) };
        assert!(of3.wants_restart(Some(1), 0, false));
        assert!(of3.wants_restart(None, 2, false));
        assert!(!of3.wants_restart(Some(1), 3, false));
        assert!(!of3.wants_restart(Some(0), 0, false));
        assert!(!of3.wants_restart(Some(1), 0, true));
        assert!(RestartPolicy::Always.wants_restart(Some(0), 1000, false));
        assert!(!RestartPolicy::Always.wants_restart(Some(137), 0, true));
        assert!(!RestartPolicy::No.wants_restart(Some(1), 0, false));
    }

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(10), BACKOFF_MAX);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
