//! What /proc says about a process: its state and start time (field 22 of
//! `/proc/PID/stat`, in clock ticks since boot), so that a reused pid is
//! never taken for the container's init.

use std::fs;

/// (state letter, start time) of `pid`, `None` when there is no such process.
pub fn stat(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a `/proc/PID/stat` line; the command name (field 2) may hold
/// spaces and parentheses, so fields are counted from its last `)`.
pub fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // rest starts at field 3 (state); field 22 is 19 further.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Whether `pid` is still the process started at `start_time` and has not
/// exited (a zombie or dead process counts as gone).
pub fn alive(pid: i32, start_time: u64) -> bool {
    match stat(pid) {
        Some((state, start)) => start == start_time && !matches!(state, 'Z' | 'X' | 'x'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_odd_names() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(line), Some(('S', 98765)));
        let me = std::process::id() as i32;
        let (state, start) = stat(me).unwrap();
        assert!(matches!(state, 'R' | 'S'));
        assert!(alive(me, start));
        assert!(!alive(me, start + 1));
    }
}
