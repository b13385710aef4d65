//! `process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`:
//! applied where the host has the security module, refused where it does
//! not (as runc does). The labels are written to `/proc/self/attr/...`
//! just before exec; the mount label goes into the data of the filesystems
//! the container gets fresh (tmpfs, devpts, mqueue).

use super::mounts::{MountKind, MountStep};
use super::{cstr, err, HostFacts, PlanError};
use oci_spec::runtime::{Linux, Process};
use std::ffi::CString;

/// What the child writes before exec.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Labels {
    /// "exec PROFILE", for /proc/self/attr/apparmor/exec (or attr/exec).
    pub apparmor_exec: Option<CString>,
    /// The SELinux label, for /proc/self/attr/exec.
    pub selinux_exec: Option<CString>,
}

/// Filesystems that get `context="<mountLabel>"`.
const LABELLED_FS: &[&[u8]] = &[b"tmpfs", b"devpts", b"mqueue"];

pub fn plan(
    process: &Process,
    linux: &Linux,
    host: &HostFacts,
    mounts: &mut [MountStep],
) -> Result<Labels, PlanError> {
    let apparmor_exec = match process.apparmor_profile().as_deref() {
        None | Some("") => None,
        Some(_) if !host.apparmor => {
            return Err(err(
                "process.apparmorProfile",
                "AppArmor is not enabled on this host",
            ))
        }
        Some(p) => Some(cstr("process.apparmorProfile", &format!("exec {p}"))?),
    };
    let selinux_exec = match process.selinux_label().as_deref() {
        None | Some("") => None,
        Some(_) if !host.selinux => {
            return Err(err(
                "process.selinuxLabel",
                "SELinux is not enabled on this host",
            ))
        }
        Some(l) => Some(cstr("process.selinuxLabel", l)?),
    };
    match linux.mount_label().as_deref() {
        None | Some("") => {}
        Some(_) if !host.selinux => {
            return Err(err(
                "linux.mountLabel",
                "SELinux is not enabled on this host",
            ))
        }
        Some(label) => {
            if label.contains('"') {
                return Err(err("linux.mountLabel", format!("{label:?} contains '\"'")));
            }
            for m in mounts.iter_mut().filter(|m| {
                m.kind == MountKind::Fs
                    && m.fstype
                        .as_ref()
                        .is_some_and(|t| LABELLED_FS.contains(&t.to_bytes()))
            }) {
                let mut data = m.data.take().map(CString::into_bytes).unwrap_or_default();
                if !data.is_empty() {
                    data.push(b',');
                }
                data.extend_from_slice(format!("context=\"{label}\"").as_bytes());
                m.data = Some(cstr("linux.mountLabel", &String::from_utf8_lossy(&data))?);
            }
        }
    }
    Ok(Labels {
        apparmor_exec,
        selinux_exec,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    fn with(process: &str, linux: &str, apparmor: bool, selinux: bool) -> Result<Plan, PlanError> {
        let mut h = host();
        h.apparmor = apparmor;
        h.selinux = selinux;
        let json = base(linux, &format!(r#""args":["/x"],{process}"#)).replace(
            r#"{"destination":"/proc","#,
            r#"{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue"},{"destination":"/proc","#,
        );
        build(&spec(&json), Path::new("/"), &h, None)
    }

    #[test]
    fn labels_are_refused_without_the_module() {
        let e = with(r#""apparmorProfile":"p""#, "", false, true).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.apparmorProfile: AppArmor is not enabled on this host"
        );
        let e = with(r#""selinuxLabel":"l""#, "", true, false).unwrap_err();
        assert_eq!(e.field, "process.selinuxLabel");
        let e = with(r#""env":[]"#, r#""mountLabel":"m","#, true, false).unwrap_err();
        assert_eq!(e.field, "linux.mountLabel");
    }

    #[test]
    fn labels_are_applied_with_the_module() {
        let p = with(r#""env":[]"#, r#""mountLabel":"a\"b","#, true, true);
        assert_eq!(p.unwrap_err().field, "linux.mountLabel");
        let p = with(
            r#""apparmorProfile":"zp","selinuxLabel":"system_u:system_r:container_t:s0""#,
            r#""mountLabel":"system_u:object_r:container_file_t:s0:c1,c2","#,
            true,
            true,
        )
        .unwrap();
        assert_eq!(p.labels.apparmor_exec.as_deref(), Some(c"exec zp"));
        assert_eq!(
            p.labels.selinux_exec.as_deref(),
            Some(c"system_u:system_r:container_t:s0")
        );
        let data = |dest: &[u8]| {
            p.mounts
                .iter()
                .find(|m| m.dest.to_bytes() == dest)
                .unwrap()
                .data
                .clone()
        };
        assert_eq!(
            data(b"dev").unwrap().to_str().unwrap(),
            "mode=755,context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(
            data(b"dev/mqueue").unwrap().to_str().unwrap(),
            "context=\"system_u:object_r:container_file_t:s0:c1,c2\""
        );
        assert_eq!(data(b"proc"), None);
    }
}
