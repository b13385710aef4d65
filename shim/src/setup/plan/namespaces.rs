//! `linux.namespaces`, `linux.uidMappings`, `linux.gidMappings`: which
//! namespaces to create (clone flags), which to join and by whom, and the id
//! map texts.

use super::{err, PlanError};
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};
use std::path::PathBuf;

/// A namespace to join by path.
#[derive(Debug)]
pub struct JoinNs {
    pub path: PathBuf,
    pub nstype: libc::c_int,
}

/// CLONE_NEWTIME, which the libc crate may not name.
pub const CLONE_NEWTIME: u64 = 0x80;

const NS_TABLE: &[(LinuxNamespaceType, u64, &str)] = &[
    (LinuxNamespaceType::User, libc::CLONE_NEWUSER as u64, "user"),
    (LinuxNamespaceType::Pid, libc::CLONE_NEWPID as u64, "pid"),
    (LinuxNamespaceType::Mount, libc::CLONE_NEWNS as u64, "mount"),
    (LinuxNamespaceType::Uts, libc::CLONE_NEWUTS as u64, "uts"),
    (LinuxNamespaceType::Ipc, libc::CLONE_NEWIPC as u64, "ipc"),
    (
        LinuxNamespaceType::Network,
        libc::CLONE_NEWNET as u64,
        "network",
    ),
    (
        LinuxNamespaceType::Cgroup,
        libc::CLONE_NEWCGROUP as u64,
        "cgroup",
    ),
    (LinuxNamespaceType::Time, CLONE_NEWTIME, "time"),
];

/// The namespace section of a plan.
#[derive(Debug)]
pub struct Namespaces {
    /// CLONE_NEW* flags of namespaces to create (the cgroup one excepted).
    pub clone_flags: u64,
    pub unshare_cgroupns: bool,
    pub join_before: Vec<JoinNs>,
    pub join_in_child: Vec<JoinNs>,
    /// A new user namespace is created.
    pub userns: bool,
    pub uid_map: String,
    pub gid_map: String,
}

impl Namespaces {
    /// The container has a user namespace of its own, new or joined.
    pub fn own_userns(&self) -> bool {
        self.userns || self.joins(libc::CLONE_NEWUSER)
    }

    /// The child joins a namespace of type `nstype`.
    pub fn joins(&self, nstype: libc::c_int) -> bool {
        self.join_in_child.iter().any(|j| j.nstype == nstype)
    }
}

pub fn plan(linux: &Linux) -> Result<Namespaces, PlanError> {
    let mut clone_flags = 0u64;
    let mut join_before = Vec::new();
    let mut join_in_child = Vec::new();
    for ns in linux.namespaces().iter().flatten() {
        let (_, flag, name) = NS_TABLE
            .iter()
            .find(|(t, _, _)| *t == ns.typ())
            .ok_or_else(|| err("linux.namespaces", "unsupported namespace type"))?;
        match ns.path() {
            None => {
                if clone_flags & flag != 0 {
                    return Err(err("linux.namespaces", format!("{name} given twice")));
                }
                clone_flags |= flag;
            }
            Some(path) => {
                let j = JoinNs {
                    path: path.clone(),
                    nstype: *flag as libc::c_int,
                };
                if matches!(
                    ns.typ(),
                    LinuxNamespaceType::User | LinuxNamespaceType::Mount
                ) {
                    join_in_child.push(j);
                } else {
                    join_before.push(j);
                }
            }
        }
    }
    // The user namespace must be joined before the mount namespace.
    join_in_child.sort_by_key(|j| j.nstype != libc::CLONE_NEWUSER);
    let userns = clone_flags & libc::CLONE_NEWUSER as u64 != 0;
    let unshare_cgroupns = clone_flags & libc::CLONE_NEWCGROUP as u64 != 0;
    clone_flags &= !(libc::CLONE_NEWCGROUP as u64);
    let (uid_map, gid_map) = if userns {
        (
            id_map("linux.uidMappings", linux.uid_mappings().as_ref())?,
            id_map("linux.gidMappings", linux.gid_mappings().as_ref())?,
        )
    } else {
        (String::new(), String::new())
    };
    if clone_flags & libc::CLONE_NEWNS as u64 == 0
        && !join_in_child.iter().any(|j| j.nstype == libc::CLONE_NEWNS)
    {
        return Err(err(
            "linux.namespaces",
            "a mount namespace is required (zctr never changes the host's mounts)",
        ));
    }
    Ok(Namespaces {
        clone_flags,
        unshare_cgroupns,
        join_before,
        join_in_child,
        userns,
        uid_map,
        gid_map,
    })
}

fn id_map(field: &str, maps: Option<&Vec<LinuxIdMapping>>) -> Result<String, PlanError> {
    let maps = maps.ok_or_else(|| err(field, "a user namespace needs id mappings"))?;
    if maps.is_empty() {
        return Err(err(field, "a user namespace needs at least one mapping"));
    }
    let mut out = String::new();
    for m in maps {
        if m.size() == 0 {
            return Err(err(field, "a mapping of size 0"));
        }
        out.push_str(&format!(
            "{} {} {}\n",
            m.container_id(),
            m.host_id(),
            m.size()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::plan;
    use std::ffi::CString;

    #[test]
    fn user_namespace_needs_mappings_and_yields_map_text() {
        let json = base("", r#""args":["/x"]"#).replace(
            r#""namespaces":["#,
            r#""uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
               "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
               "namespaces":[{"type":"user"},"#,
        );
        let p = build(&spec(&json), Path::new("/"), &host(), Some(ovl())).unwrap();
        assert!(p.userns);
        assert_eq!(p.uid_map, "0 100000 65536\n");
        // "/" is owned by host root, outside the mapping: idmap it.
        assert!(p.idmap_rootfs);
        assert_eq!(p.rootfs_overlay.as_deref(), Some(ovl()));
        assert_eq!(p.exec_candidates, vec![CString::new("/x").unwrap()]);
        let no_maps = base("", r#""args":["/x"]"#)
            .replace(r#""namespaces":["#, r#""namespaces":[{"type":"user"},"#);
        let e = build(&spec(&no_maps), Path::new("/"), &host(), None).unwrap_err();
        assert_eq!(e.field, "linux.uidMappings");
    }

    #[test]
    fn namespaces_are_created_joined_or_refused() {
        let ns = |list: &str| {
            let json = format!(r#"{{"namespaces":[{list}]}}"#);
            plan(&serde_json::from_str(&json).unwrap())
        };
        let n = ns(
            r#"{"type":"mount"},{"type":"cgroup"},{"type":"network","path":"/n"},
                     {"type":"mount","path":"/m"},{"type":"user","path":"/u"}"#,
        )
        .unwrap();
        // The cgroup namespace is unshared later, not created at clone.
        assert_eq!(n.clone_flags, libc::CLONE_NEWNS as u64);
        assert!(n.unshare_cgroupns);
        assert_eq!(n.join_before[0].nstype, libc::CLONE_NEWNET);
        // The user namespace is joined first.
        let order: Vec<_> = n.join_in_child.iter().map(|j| j.nstype).collect();
        assert_eq!(order, [libc::CLONE_NEWUSER, libc::CLONE_NEWNS]);
        assert!(n.own_userns() && !n.userns);
        let e = ns(r#"{"type":"mount"},{"type":"mount"}"#).unwrap_err();
        assert_eq!(e.reason, "mount given twice");
        let e = ns(r#"{"type":"pid"}"#).unwrap_err();
        assert!(e.reason.starts_with("a mount namespace is required"), "{e}");
    }
}
