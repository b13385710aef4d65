//! Signal names and numbers, as `zctr kill`, the API's `kill` and
//! `zctr-shim kill` accept them (the way runc's `kill` does): a number
//! (`9`), or a name in any case with or without the `SIG` prefix (`KILL`,
//! `sigterm`, `SIGUSR1`), or a real-time signal as `RTMIN`, `RTMIN+n`,
//! `RTMAX-n`, `RTMAX`.
//!
//! The numbers are Linux's generic ones (x86, arm, aarch64, riscv, ppc,
//! s390; the unit test checks them against libc). Real-time signals count
//! from 34, the first one the C libraries leave to programs (`kill -l`).

/// Highest signal number (`_NSIG - 1`).
pub const MAX: i32 = 64;
/// The first real-time signal a program may use (glibc's `SIGRTMIN`).
pub const RTMIN: i32 = 34;
/// The last real-time signal.
pub const RTMAX: i32 = MAX;

/// The standard signals by name (without `SIG`), aliases included.
const NAMES: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// The signal number `s` names, or `None` if it names none (0 included:
/// it is no signal).
pub fn parse(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=MAX).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Some(n);
    }
    realtime(name)
}

/// `RTMIN`, `RTMIN+n`, `RTMAX-n`, `RTMAX`, within `RTMIN..=RTMAX`.
fn realtime(name: &str) -> Option<i32> {
    let offset = |rest: &str, sign: char| -> Option<i32> {
        match rest.strip_prefix(sign) {
            None if rest.is_empty() => Some(0),
            // Digits only: no second sign, no spaces.
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.parse().ok(),
            _ => None,
        }
    };
    let n = if let Some(rest) = name.strip_prefix("RTMIN") {
        RTMIN.checked_add(offset(rest, '+')?)?
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        RTMAX.checked_sub(offset(rest, '-')?)?
    } else {
        return None;
    };
    (RTMIN..=RTMAX).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse("9"), Some(9));
        assert_eq!(parse("1"), Some(1));
        assert_eq!(parse("64"), Some(64));
        assert_eq!(parse("40"), Some(40));
        for bad in ["0", "-9", "65", "999", "", " 9", "9x"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_in_any_case_with_or_without_sig() {
        assert_eq!(parse("KILL"), Some(9));
        assert_eq!(parse("kill"), Some(9));
        assert_eq!(parse("SIGKILL"), Some(9));
        assert_eq!(parse("sigterm"), Some(15));
        assert_eq!(parse("SigUsr1"), Some(10));
        assert_eq!(parse("WINCH"), Some(28));
        assert_eq!(parse("SIGIOT"), Some(6));
        for bad in ["NOPE", "SIG", "SIGSIGKILL", "KILL ", "TERM9"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn realtime_signals() {
        assert_eq!(parse("RTMIN"), Some(34));
        assert_eq!(parse("SIGRTMIN+1"), Some(35));
        assert_eq!(parse("rtmin+30"), Some(64));
        assert_eq!(parse("RTMAX"), Some(64));
        assert_eq!(parse("SIGRTMAX-2"), Some(62));
        assert_eq!(parse("RTMAX-30"), Some(34));
        for bad in [
            "RTMIN+31", "RTMAX-31", "RTMIN-1", "RTMAX+1", "RTMIN+", "RTMIN++1", "RTMIN+-1",
            "RTMIN1", "RTMIN+ 1",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    /// The table against the C library of the target.
    #[test]
    fn numbers_match_libc() {
        let libc_names = [
            ("HUP", libc::SIGHUP),
            ("INT", libc::SIGINT),
            ("QUIT", libc::SIGQUIT),
            ("ILL", libc::SIGILL),
            ("TRAP", libc::SIGTRAP),
            ("ABRT", libc::SIGABRT),
            ("IOT", libc::SIGIOT),
            ("BUS", libc::SIGBUS),
            ("FPE", libc::SIGFPE),
            ("KILL", libc::SIGKILL),
            ("USR1", libc::SIGUSR1),
            ("SEGV", libc::SIGSEGV),
            ("USR2", libc::SIGUSR2),
            ("PIPE", libc::SIGPIPE),
            ("ALRM", libc::SIGALRM),
            ("TERM", libc::SIGTERM),
            ("STKFLT", libc::SIGSTKFLT),
            ("CHLD", libc::SIGCHLD),
            ("CLD", libc::SIGCHLD),
            ("CONT", libc::SIGCONT),
            ("STOP", libc::SIGSTOP),
            ("TSTP", libc::SIGTSTP),
            ("TTIN", libc::SIGTTIN),
            ("TTOU", libc::SIGTTOU),
            ("URG", libc::SIGURG),
            ("XCPU", libc::SIGXCPU),
            ("XFSZ", libc::SIGXFSZ),
            ("VTALRM", libc::SIGVTALRM),
            ("PROF", libc::SIGPROF),
            ("WINCH", libc::SIGWINCH),
            ("IO", libc::SIGIO),
            ("POLL", libc::SIGPOLL),
            ("PWR", libc::SIGPWR),
            ("SYS", libc::SIGSYS),
        ];
        assert_eq!(NAMES.len(), libc_names.len());
        for (name, n) in libc_names {
            assert_eq!(parse(name), Some(n), "{name}");
        }
        assert_eq!(RTMAX, libc::SIGRTMAX());
    }
}
