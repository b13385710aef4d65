//! `process.rlimits`: resource numbers and limits, soft never above hard.

use super::{err, PlanError};
use oci_spec::runtime::PosixRlimit;

fn rlimit_resource(name: &str) -> Option<libc::c_int> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    } as libc::c_int)
}

/// (resource, soft, hard) per entry.
pub fn plan<'r>(
    rlimits: impl Iterator<Item = &'r PosixRlimit>,
) -> Result<Vec<(libc::c_int, u64, u64)>, PlanError> {
    let mut out = Vec::new();
    for r in rlimits {
        let name = r.typ().to_string();
        let res = rlimit_resource(&name)
            .ok_or_else(|| err("process.rlimits", format!("unknown rlimit {name}")))?;
        if r.soft() > r.hard() {
            return Err(err(
                "process.rlimits",
                format!("{name}: soft limit above hard limit"),
            ));
        }
        out.push((res, r.soft(), r.hard()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rlimits(json: &str) -> Result<Vec<(libc::c_int, u64, u64)>, PlanError> {
        let list: Vec<PosixRlimit> = serde_json::from_str(json).unwrap();
        plan(list.iter())
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(
            rlimits(r#"[{"type":"RLIMIT_CORE","soft":0,"hard":0}]"#).unwrap(),
            [(libc::RLIMIT_CORE as libc::c_int, 0, 0)]
        );
        let e = rlimits(r#"[{"type":"RLIMIT_NOFILE","soft":10,"hard":5}]"#).unwrap_err();
        assert_eq!(e.reason, "RLIMIT_NOFILE: soft limit above hard limit");
    }
}
