//! `mounts`: each entry as a [`MountStep`] (destination checked and made
//! relative, options parsed to flags, bind sources resolved), and the
//! `cgroup` mount expanded for the host's cgroup layout.

use super::rootfs::{bind_idmap, Idmap};
use super::{cgroup, container_path, cstr, err, in_bundle, mountopts, HostFacts, PlanError};
use libc::c_ulong;
use oci_spec::runtime::{LinuxIdMapping, Mount};
use std::ffi::{CStr, CString};
use std::path::Path;

/// How a mount is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind of a host path; `dir` tells whether the target is a directory.
    Bind { dir: bool, recursive: bool },
    /// A filesystem mount (proc, tmpfs, sysfs, cgroup2, ...).
    Fs,
}

/// One entry of `mounts`, ready for the child.
#[derive(Debug)]
pub struct MountStep {
    /// Destination relative to the rootfs ("proc", "dev/pts").
    pub dest: CString,
    pub source: Option<CString>,
    pub fstype: Option<CString>,
    pub flags: c_ulong,
    pub propagation: c_ulong,
    pub data: Option<CString>,
    pub kind: MountKind,
    /// Binds only: made from an idmapped clone of the source.
    pub idmap: Idmap,
    /// The destination as the config spelled it, for error messages.
    pub display: CString,
}

impl MountStep {
    /// A bind that must be remounted to apply flags (read-only, nosuid, ...).
    pub fn needs_remount(&self) -> bool {
        matches!(self.kind, MountKind::Bind { .. })
            && self.flags & !(libc::MS_BIND | libc::MS_REC) != 0
    }
}

/// The mount section of a plan.
#[derive(Debug)]
pub struct Mounts {
    pub steps: Vec<MountStep>,
    /// /dev is a tmpfs the shim fills with device nodes and links.
    pub populate_dev: bool,
    pub has_devpts: bool,
}

/// What the mount section needs from the rest of the config.
pub struct Context<'a> {
    pub bundle: &'a Path,
    pub host: &'a HostFacts,
    pub cgroups_path: &'a str,
    pub userns: bool,
    pub uid_maps: &'a [LinuxIdMapping],
    pub gid_maps: Option<&'a [LinuxIdMapping]>,
}

pub fn plan<'m>(
    mounts: impl Iterator<Item = &'m Mount>,
    cx: &Context,
) -> Result<Mounts, PlanError> {
    let mut out = Mounts {
        steps: Vec::new(),
        populate_dev: false,
        has_devpts: false,
    };
    for (i, m) in mounts.enumerate() {
        let field = format!("mounts[{i}].destination");
        let dest_str = m.destination().to_string_lossy();
        let dest = container_path(&field, &dest_str)?;
        let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
        let typ = m.typ().as_deref().unwrap_or("");
        let display = cstr(&field, &dest_str)?;
        if typ == "cgroup" || typ == "cgroup2" {
            cgroup_mounts(
                &mut out.steps,
                &dest,
                &opts,
                cx.host,
                cx.cgroups_path,
                &display,
            )?;
            continue;
        }
        if dest == "dev" && typ == "tmpfs" {
            out.populate_dev = true;
        }
        if dest == "dev/pts" {
            out.has_devpts = true;
        }
        out.steps
            .push(one(i, m, &field, &dest, &opts, display, cx)?);
    }
    Ok(out)
}

/// The step for `mounts[i]`, not a cgroup mount.
fn one(
    i: usize,
    m: &Mount,
    field: &str,
    dest: &str,
    opts: &mountopts::MountOptions,
    display: CString,
    cx: &Context,
) -> Result<MountStep, PlanError> {
    let typ = m.typ().as_deref().unwrap_or("");
    let bundle = cx.bundle;
    let is_bind = opts.bind || typ == "bind";
    let mut idmap = Idmap::Off;
    let kind = if is_bind {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| err(format!("mounts[{i}].source"), "a bind mount needs a source"))?;
        let src = in_bundle(bundle, src);
        let md = std::fs::metadata(&src).map_err(|e| {
            err(
                format!("mounts[{i}].source"),
                format!("{}: {e}", src.display()),
            )
        })?;
        let recursive = opts.recursive || !opts.bind;
        idmap = bind_idmap(i, m, opts, cx.userns, cx.uid_maps, cx.gid_maps)?;
        MountKind::Bind {
            dir: md.is_dir(),
            recursive,
        }
    } else {
        if opts.idmap.is_some() {
            return Err(err(
                format!("mounts[{i}].options"),
                "idmap and ridmap apply to bind mounts only",
            ));
        }
        MountKind::Fs
    };
    let source = match (m.source(), &kind) {
        (Some(s), MountKind::Bind { .. }) => {
            Some(in_bundle(bundle, s).to_string_lossy().into_owned())
        }
        (Some(s), MountKind::Fs) => Some(s.to_string_lossy().into_owned()),
        (None, _) => Some(typ.to_string()),
    };
    let mut flags = opts.flags;
    if let MountKind::Bind { recursive, .. } = kind {
        flags |= libc::MS_BIND | if recursive { libc::MS_REC } else { 0 };
    }
    Ok(MountStep {
        dest: cstr(field, dest)?,
        source: source
            .map(|s| cstr(&format!("mounts[{i}].source"), &s))
            .transpose()?,
        fstype: if is_bind {
            None
        } else {
            Some(cstr(&format!("mounts[{i}].type"), typ)?)
        },
        flags,
        propagation: opts.propagation,
        data: (!opts.data.is_empty())
            .then(|| cstr(&format!("mounts[{i}].options"), &opts.data))
            .transpose()?,
        kind,
        idmap,
        display,
    })
}

/// A `cgroup` mount: cgroup2 on a pure v2 host; on v1 or hybrid hosts a tmpfs
/// holding a bind of the container's own directory of every hierarchy.
fn cgroup_mounts(
    out: &mut Vec<MountStep>,
    dest: &str,
    opts: &mountopts::MountOptions,
    host: &HostFacts,
    cgroups_path: &str,
    display: &CStr,
) -> Result<(), PlanError> {
    let field = "mounts (cgroup)";
    let flags = opts.flags | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if cgroup::host_is_unified(&host.hierarchies) {
        // A tmpfs first: where /sys is a recursive bind of the host's (a user
        // namespace without its own network namespace), the host's cgroup2
        // mount is already at the destination, and the kernel refuses to mount
        // a filesystem on the root of a mount of that same filesystem (EBUSY).
        // It also hides the host's hierarchy under the container's.
        out.push(MountStep {
            dest: cstr(field, dest)?,
            source: Some(c"tmpfs".into()),
            fstype: Some(c"tmpfs".into()),
            flags: flags & !libc::MS_RDONLY,
            propagation: 0,
            data: Some(c"mode=755".into()),
            kind: MountKind::Fs,
            idmap: Idmap::Off,
            display: display.into(),
        });
        out.push(MountStep {
            dest: cstr(field, dest)?,
            source: Some(c"cgroup2".into()),
            fstype: Some(c"cgroup2".into()),
            flags,
            propagation: 0,
            data: None,
            kind: MountKind::Fs,
            idmap: Idmap::Off,
            display: display.into(),
        });
        return Ok(());
    }
    out.push(MountStep {
        dest: cstr(field, dest)?,
        source: Some(c"tmpfs".into()),
        fstype: Some(c"tmpfs".into()),
        flags: (flags & !libc::MS_RDONLY),
        propagation: 0,
        data: Some(c"mode=755".into()),
        kind: MountKind::Fs,
        idmap: Idmap::Off,
        display: display.into(),
    });
    let rel = cgroups_path.trim_start_matches('/');
    for h in &host.hierarchies {
        let Some(name) = h.mount_point.file_name() else {
            continue;
        };
        let src = h.mount_point.join(rel);
        out.push(MountStep {
            dest: cstr(field, &format!("{dest}/{}", name.to_string_lossy()))?,
            source: Some(cstr(field, &src.to_string_lossy())?),
            fstype: None,
            flags: flags | libc::MS_BIND,
            propagation: 0,
            data: None,
            kind: MountKind::Bind {
                dir: true,
                recursive: false,
            },
            idmap: Idmap::Off,
            display: display.into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn requested_idmaps_are_required_and_checked() {
        let m = |opts: &str| {
            format!(r#"{{"destination":"/v","type":"bind","source":"/tmp","options":[{opts}]}},"#)
        };
        let p = build(
            &userns_spec(&m(r#""rbind","idmap""#), ""),
            Path::new("/"),
            &host(),
            None,
        )
        .unwrap();
        assert_eq!(idmap_of(&p, "v"), Idmap::Required { recursive: false });
        let p = build(
            &userns_spec(&m(r#""bind","ridmap""#), ""),
            Path::new("/"),
            &host(),
            None,
        )
        .unwrap();
        assert_eq!(idmap_of(&p, "v"), Idmap::Required { recursive: true });
        // The mount's own mappings, equal to the container's.
        let own = r#"{"destination":"/v","type":"bind","source":"/tmp","options":["rbind"],
            "uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
            "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}]},"#;
        let p = build(&userns_spec(own, ""), Path::new("/"), &host(), None).unwrap();
        assert_eq!(idmap_of(&p, "v"), Idmap::Required { recursive: false });
        // Other mappings cannot go through the container's user namespace.
        let other = own.replacen("100000", "200000", 1);
        let e = build(&userns_spec(&other, ""), Path::new("/"), &host(), None).unwrap_err();
        assert_eq!(e.field, "mounts[0].uidMappings");
        // idmap without a user namespace, or on a non-bind mount, is refused.
        let json = base("", r#""args":["/x"]"#).replace(
            r#""mounts":["#,
            &format!(r#""mounts":[{}"#, m(r#""rbind","idmap""#)),
        );
        let e = build(&spec(&json), Path::new("/"), &host(), None).unwrap_err();
        assert_eq!(e.field, "mounts[0]");
        let tmpfs = r#"{"destination":"/t","type":"tmpfs","source":"tmpfs","options":["idmap"]},"#;
        let e = build(&userns_spec(tmpfs, ""), Path::new("/"), &host(), None).unwrap_err();
        assert_eq!(e.field, "mounts[0].options");
    }

    #[test]
    fn a_pure_cgroup2_host_gets_a_tmpfs_then_cgroup2() {
        let unified = HostFacts {
            hierarchies: vec![Hierarchy {
                mount_point: "/sys/fs/cgroup".into(),
                unified: true,
            }],
            ..host()
        };
        let p = build(
            &spec(&base("", r#""args":["/x"]"#)),
            Path::new("/"),
            &unified,
            None,
        )
        .unwrap();
        let cg: Vec<_> = p
            .mounts
            .iter()
            .filter(|m| m.dest.to_bytes() == b"sys/fs/cgroup")
            .map(|m| (m.fstype.clone().unwrap(), m.flags & libc::MS_RDONLY != 0))
            .collect();
        assert_eq!(
            cg,
            vec![(c"tmpfs".to_owned(), false), (c"cgroup2".to_owned(), true)]
        );
    }

    #[test]
    fn binds_get_their_flags_and_sources_in_the_bundle() {
        let json = base("", r#""args":["/x"]"#).replace(
            r#""mounts":["#,
            r#""mounts":[{"destination":"/b","type":"none","source":"tmp","options":["bind","nosuid"]},
                         {"destination":"/nosrc","type":"bind","options":["rbind"]},"#,
        );
        let e = build(&spec(&json), Path::new("/"), &host(), None).unwrap_err();
        assert_eq!(e.field, "mounts[1].source");
        let json = json.replace(
            r#"{"destination":"/nosrc","type":"bind","options":["rbind"]},"#,
            "",
        );
        let p = build(&spec(&json), Path::new("/"), &host(), None).unwrap();
        let b = &p.mounts[0];
        assert_eq!(b.source.as_deref(), Some(c"/tmp"));
        assert_eq!(
            b.kind,
            MountKind::Bind {
                dir: true,
                recursive: false
            }
        );
        assert_eq!(b.flags, libc::MS_BIND | libc::MS_NOSUID);
        assert!(b.needs_remount() && b.fstype.is_none());
    }
}
