//! `linux.resources.unified`: cgroup2 files by name, written as given after
//! every other field. Only plain file names of the cgroup's own directory,
//! of a controller this host has on cgroup2; refused on a v1-only host.

use super::{field, Ctx, Restore, Side, Target, Write};
use crate::Layout;
use std::collections::HashMap;

/// The `cgroup.*` files a container's configuration may set.
const CGROUP_FILES: [&str; 2] = ["cgroup.max.depth", "cgroup.max.descendants"];

/// Why `key` is not a file name this code writes, if it is not.
pub fn check_key(key: &str) -> Result<&str, String> {
    if key.is_empty() || key == "." || key == ".." || key.contains(['/', '\0', '\n']) {
        return Err("not a plain file name of the cgroup directory".into());
    }
    let Some((controller, rest)) = key.split_once('.') else {
        return Err("not a cgroup file name (<controller>.<name>)".into());
    };
    if controller.is_empty() || rest.is_empty() {
        return Err("not a cgroup file name (<controller>.<name>)".into());
    }
    if controller == "cgroup" && !CGROUP_FILES.contains(&key) {
        return Err(format!(
            "only {} of the cgroup.* files may be set",
            CGROUP_FILES.join(" and ")
        ));
    }
    Ok(controller)
}

pub(super) fn plan(files: &HashMap<String, String>, cx: &mut Ctx) {
    let mut keys: Vec<&String> = files.keys().collect();
    keys.sort();
    for key in keys {
        let part = format!("unified.{key}");
        if cx.host.layout == Layout::V1 {
            cx.refuse(&part, "cgroup2 files cannot be set on a v1-only host");
            continue;
        }
        let controller = match check_key(key) {
            Ok(c) => c,
            Err(e) => {
                cx.refuse(&part, e);
                continue;
            }
        };
        let value = &files[key];
        if value.contains('\0') {
            cx.refuse(&part, "the value holds a NUL byte");
            continue;
        }
        if controller != "cgroup" {
            match cx.host.side(controller) {
                Some(Side::V2) => {}
                Some(Side::V1) => {
                    cx.refuse(
                        &part,
                        format!(
                            "the {controller} controller is on a v1 hierarchy on this host \
                             (set it through the other linux.resources fields)"
                        ),
                    );
                    continue;
                }
                None => {
                    let reason = cx.host.missing(controller);
                    cx.refuse(&part, reason);
                    continue;
                }
            }
        }
        cx.need_v2(controller);
        cx.push(Write {
            field: field(&part),
            target: Target::V2,
            choices: vec![(key.clone(), value.clone())],
            restore: Restore::Whole,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_hosts::{hybrid, v1, v2};
    use super::super::{plan, Host, Plan};
    use oci_spec::runtime::LinuxResourcesBuilder;

    fn run(kv: &[(&str, &str)], host: &Host) -> Result<Plan, String> {
        let r = LinuxResourcesBuilder::default()
            .unified(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<std::collections::HashMap<_, _>>(),
            )
            .build()
            .unwrap();
        plan(&r, host).map_err(|e| e.to_string())
    }

    #[test]
    fn unified_files_are_written_on_cgroup2_only() {
        let p = run(
            &[("memory.high", "1000000"), ("cgroup.max.depth", "2")],
            &v2(),
        )
        .unwrap();
        let got: Vec<_> = p.writes.iter().map(|w| w.choices[0].clone()).collect();
        assert_eq!(
            got,
            [
                ("cgroup.max.depth".to_string(), "2".to_string()),
                ("memory.high".to_string(), "1000000".to_string())
            ]
        );
        assert_eq!(p.v2_controllers, ["memory"]);
        assert_eq!(p.writes[1].field, "linux.resources.unified.memory.high");
        // hugetlb is on the cgroup2 mount of this hybrid host.
        assert!(run(&[("hugetlb.2MB.max", "max")], &hybrid()).is_ok());
        let cases = [
            (("memory.high", "1"), v1(), "linux.resources.unified.memory.high: cgroup2 files cannot be set on a v1-only host"),
            (("../memory.max", "1"), v2(), "linux.resources.unified.../memory.max: not a plain file name of the cgroup directory"),
            (("a/memory.max", "1"), v2(), "not a plain file name"),
            ((".", "1"), v2(), "not a plain file name"),
            (("memory", "1"), v2(), "not a cgroup file name"),
            (("cgroup.procs", "1"), v2(), "only cgroup.max.depth and cgroup.max.descendants"),
            (("cgroup.kill", "1"), v2(), "only cgroup.max.depth"),
            (("memory.high", "1"), hybrid(), "linux.resources.unified.memory.high: the memory controller is on a v1 hierarchy on this host"),
            (("misc.max", "1"), v2(), "linux.resources.unified.misc.max: needs the misc controller"),
            (("memory.high", "1\0"), v2(), "NUL"),
        ];
        for ((k, v), host, want) in cases {
            let e = run(&[(k, v)], &host).unwrap_err();
            assert!(e.contains(want), "{e}\n  wanted: {want}");
        }
    }
}
