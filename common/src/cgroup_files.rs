//! The text of cgroup kernel files zctr reads (pure: the callers read the
//! files).

/// cgroup2: the memory controller's event counters (`oom_kill N`, ...).
pub const MEMORY_EVENTS: &str = "memory.events";
/// cgroup v1: the memory controller's OOM state (`oom_kill N` since 4.13).
pub const MEMORY_OOM_CONTROL: &str = "memory.oom_control";

/// Reads `key N` from a flat-keyed cgroup file such as `memory.events` or
/// `cgroup.events`; `None` when the key is missing or its value is not a
/// number.
pub fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next() == Some(key)).then(|| it.next()?.parse().ok())?
    })
}

/// The file that counts a cgroup's OOM kills: [`MEMORY_EVENTS`] on cgroup2,
/// [`MEMORY_OOM_CONTROL`] on v1.
pub fn oom_counter_file(unified: bool) -> &'static str {
    if unified {
        MEMORY_EVENTS
    } else {
        MEMORY_OOM_CONTROL
    }
}

/// The OOM-kill count in the text of [`oom_counter_file`] (both name it
/// `oom_kill`); `None` when it is not there (a kernel before 4.13 on v1).
pub fn oom_kills(content: &str) -> Option<u64> {
    keyed_value(content, "oom_kill")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_values_parse() {
        let events = "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(1));
        assert_eq!(keyed_value(events, "oom"), Some(2));
        assert_eq!(keyed_value(events, "nope"), None);
        assert_eq!(keyed_value("populated 1\nfrozen 0\n", "frozen"), Some(0));
        assert_eq!(keyed_value("frozen x\n", "frozen"), None);
    }

    #[test]
    fn oom_kills_on_v2_and_v1() {
        assert_eq!(oom_counter_file(true), "memory.events");
        assert_eq!(oom_counter_file(false), "memory.oom_control");
        // cgroup2 memory.events: oom_group_kill is another key.
        let v2 = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kills(v2), Some(2));
        // v1 memory.oom_control: oom_kill_disable is another key.
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n";
        assert_eq!(oom_kills(v1), Some(4));
        // An old v1 kernel without the counter.
        assert_eq!(oom_kills("oom_kill_disable 0\nunder_oom 0\n"), None);
        assert_eq!(oom_kills(""), None);
    }
}
