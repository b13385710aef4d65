//! `linux.timeOffsets`: the offsets of a new time namespace, which the child
//! creates with unshare (a process cannot be cloned into a time namespace
//! whose offsets are still to be written) and enters at exec.

use super::{cstr, err, PlanError};
use oci_spec::runtime::Linux;
use std::ffi::CString;

/// The text for /proc/self/timens_offsets ("monotonic S N\nboottime S N\n"),
/// when there are offsets.
pub fn plan(linux: &Linux, new_timens: bool) -> Result<Option<CString>, PlanError> {
    let Some(offsets) = linux.time_offsets().as_ref().filter(|o| !o.is_empty()) else {
        return Ok(None);
    };
    if !new_timens {
        return Err(err(
            "linux.timeOffsets",
            "needs a new time namespace (linux.namespaces has no \"time\" without a path)",
        ));
    }
    let mut keys: Vec<_> = offsets.keys().collect();
    keys.sort();
    let mut text = String::new();
    for k in keys {
        if k != "monotonic" && k != "boottime" {
            return Err(err(
                format!("linux.timeOffsets.{k}"),
                "only \"monotonic\" and \"boottime\" clocks have offsets",
            ));
        }
        let o = &offsets[k];
        let ns = o.nanosecs().unwrap_or(0);
        if ns >= 1_000_000_000 {
            return Err(err(
                format!("linux.timeOffsets.{k}.nanosecs"),
                format!("{ns} is not below 1000000000"),
            ));
        }
        text.push_str(&format!("{k} {} {ns}\n", o.secs().unwrap_or(0)));
    }
    Ok(Some(cstr("linux.timeOffsets", &text)?))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    fn with_offsets(offsets: &str, timens: &str) -> Result<Plan, PlanError> {
        let json = base(&format!(r#""timeOffsets":{offsets},"#), r#""args":["/x"]"#)
            .replace(r#"{"type":"pid"}"#, &format!(r#"{{"type":"pid"}}{timens}"#));
        build(&spec(&json), Path::new("/"), &host(), None)
    }

    #[test]
    fn offsets_need_a_new_time_namespace() {
        let p = with_offsets(
            r#"{"boottime":{"secs":86400},"monotonic":{"secs":-5,"nanosecs":7}}"#,
            r#",{"type":"time"}"#,
        )
        .unwrap();
        assert_eq!(
            p.time_offsets.as_deref(),
            Some(c"boottime 86400 0\nmonotonic -5 7\n")
        );
        assert!(p.unshare_timens);
        assert_eq!(
            p.clone_flags & 0x80,
            0,
            "the time namespace is made by unshare"
        );
        let e = with_offsets(r#"{"boottime":{"secs":1}}"#, "").unwrap_err();
        assert_eq!(e.field, "linux.timeOffsets");
        let e = with_offsets(r#"{"realtime":{"secs":1}}"#, r#",{"type":"time"}"#).unwrap_err();
        assert_eq!(e.field, "linux.timeOffsets.realtime");
    }
}
