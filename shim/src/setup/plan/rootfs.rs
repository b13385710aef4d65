//! `root`, `linux.rootfsPropagation` and the idmap policy: whether the
//! rootfs is an idmapped mount, which bind mounts ask for an idmap, and what
//! rules out an idmap altogether (CAP_SYS_ADMIN, a joined mount namespace).

use super::mounts::MountStep;
use super::namespaces::Namespaces;
use super::{cstr, err, in_bundle, mountopts, PlanError};
use libc::c_ulong;
use oci_spec::runtime::{LinuxIdMapping, Mount, Root, Spec};
use std::ffi::CString;
use std::path::Path;

/// Annotation that turns off the automatic idmapping of the rootfs.
pub const ROOTFS_IDMAP_ANNOTATION: &str = "org.zctr.rootfs-idmap";

/// Whether a bind mount (or the rootfs) is made from an idmapped clone of its
/// source (open_tree + mount_setattr MOUNT_ATTR_IDMAP through the container's
/// user namespace), so that host-owned files appear owned by the container's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idmap {
    /// A plain bind.
    Off,
    /// The rootfs is owned by an id the user namespace does not map and is the
    /// lower layer of an overlay: idmap it where the filesystem allows, else
    /// fall back to a plain bind. (Bind
    /// mounts are never idmapped unasked: through an idmapped volume the
    /// container could leave host-root-owned setuid files on the host.)
    Auto { recursive: bool },
    /// The config asked for it (`idmap`/`ridmap`, or the mount's own id
    /// mappings): failing to idmap is an error.
    Required { recursive: bool },
}

impl Idmap {
    pub fn is_on(self) -> bool {
        self != Idmap::Off
    }

    pub fn recursive(self) -> bool {
        matches!(
            self,
            Idmap::Auto { recursive: true } | Idmap::Required { recursive: true }
        )
    }
}

/// The root section of a plan.
#[derive(Debug)]
pub struct Rootfs {
    pub path: CString,
    pub propagation: c_ulong,
    /// Owner of the rootfs directory (host uid).
    pub owner: u32,
}

pub fn plan(root: &Root, propagation: Option<&String>, bundle: &Path) -> Result<Rootfs, PlanError> {
    use std::os::unix::fs::MetadataExt;
    let rootfs_path = in_bundle(bundle, root.path());
    let meta = std::fs::metadata(&rootfs_path)
        .map_err(|e| err("root.path", format!("{}: {e}", rootfs_path.display())))?;
    if !meta.is_dir() {
        return Err(err(
            "root.path",
            format!("{} is not a directory", rootfs_path.display()),
        ));
    }
    let rootfs_path = rootfs_path
        .canonicalize()
        .map_err(|e| err("root.path", format!("{}: {e}", rootfs_path.display())))?;
    let path = cstr("root.path", &rootfs_path.to_string_lossy())?;
    let propagation = match propagation {
        None => libc::MS_SLAVE | libc::MS_REC,
        Some(p) => mountopts::propagation(p)
            .ok_or_else(|| err("linux.rootfsPropagation", format!("unknown value {p:?}")))?,
    };
    Ok(Rootfs {
        path,
        propagation,
        owner: meta.uid(),
    })
}

/// `/`'s propagation during setup and the one to apply to the new `/` after
/// pivot_root (0: none). Shared and unbindable cannot be had during setup:
/// pivot_root refuses a shared parent mount, and an unbindable rootfs cannot
/// be bound onto itself. Setup then runs with a recursive slave `/`.
pub fn propagation_steps(requested: c_ulong) -> (c_ulong, c_ulong) {
    if requested & (libc::MS_SHARED | libc::MS_UNBINDABLE) != 0 {
        (libc::MS_SLAVE | libc::MS_REC, requested)
    } else {
        (requested, 0)
    }
}

/// Whether host id `id` lies in one of the mappings.
fn maps_host_id(maps: &[LinuxIdMapping], id: u32) -> bool {
    maps.iter()
        .any(|m| id >= m.host_id() && id - m.host_id() < m.size())
}

/// The idmapping a bind mount explicitly asks for: the `idmap`/`ridmap`
/// options, or its own `uidMappings`/`gidMappings`, which must then be the
/// container's (the idmap goes through the container's user namespace).
pub fn bind_idmap(
    i: usize,
    m: &Mount,
    opts: &mountopts::MountOptions,
    userns: bool,
    uid_maps: &[LinuxIdMapping],
    gid_maps: Option<&[LinuxIdMapping]>,
) -> Result<Idmap, PlanError> {
    let own_maps = m.uid_mappings().is_some() || m.gid_mappings().is_some();
    if opts.idmap.is_none() && !own_maps {
        return Ok(Idmap::Off);
    }
    if !userns {
        return Err(err(
            format!("mounts[{i}]"),
            "an idmapped mount needs a new user namespace (linux.namespaces has no \"user\" without a path)",
        ));
    }
    if own_maps
        && (m.uid_mappings().as_deref() != Some(uid_maps)
            || m.gid_mappings().as_deref() != gid_maps)
    {
        return Err(err(
            format!("mounts[{i}].uidMappings"),
            "only the container's own uid/gid mappings are supported for an idmapped mount",
        ));
    }
    Ok(Idmap::Required {
        recursive: opts.idmap == Some(true),
    })
}

/// Whether the rootfs is made an idmapped mount, given the whole config:
/// refuses the combinations an idmap or an overlay cannot serve.
pub fn idmap_policy(
    spec: &Spec,
    ns: &Namespaces,
    uid_maps: &[LinuxIdMapping],
    owner: u32,
    sys_admin: bool,
    mounts: &[MountStep],
    overlay: Option<&Path>,
) -> Result<bool, PlanError> {
    let idmap_off = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ROOTFS_IDMAP_ANNOTATION))
        .is_some_and(|v| v == "false");
    // Only below an overlay: through a writable idmapped rootfs the
    // container's root would create files owned by host root in the image
    // directory (setuid binaries an unprivileged host user could run).
    let idmap_rootfs =
        ns.userns && !maps_host_id(uid_maps, owner) && !idmap_off && overlay.is_some();
    // An idmapped tree is cloned outside the container's user namespace and
    // attached into it, so the host's locks on its mount flags (read-only,
    // nosuid, ...) and over-mounts do not follow: a container holding
    // CAP_SYS_ADMIN could undo them and, through the idmap, write as host
    // root. Such a container gets a plain rootfs bind, and an idmap it asks
    // for is refused.
    // Trees are cloned in the shim's mount namespace: a joined one may not
    // even have the same paths.
    let joins_mountns = ns.joins(libc::CLONE_NEWNS);
    let idmap_rootfs = idmap_rootfs && !sys_admin && !joins_mountns;
    if overlay.is_some() && joins_mountns {
        return Err(err(
            "linux.namespaces",
            "a rootfs overlay cannot be made for a container joining a mount namespace \
             (its layers are opened in the shim's own)",
        ));
    }
    if sys_admin || joins_mountns {
        if let Some(m) = mounts.iter().find(|m| m.idmap.is_on()) {
            return Err(err(
                "mounts",
                format!(
                    "{}: an idmapped mount cannot be given to a container with CAP_SYS_ADMIN \
                     (it would not keep the host's mount flags) or one joining a mount namespace",
                    m.display.to_string_lossy()
                ),
            ));
        }
    }
    Ok(idmap_rootfs)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use super::{plan, Root};

    #[test]
    fn only_the_rootfs_is_idmapped_unasked() {
        // "/" and /tmp are owned by host root, which the mapping does not cover.
        let p = build(&userns_spec("", ""), Path::new("/"), &host(), Some(ovl())).unwrap();
        assert!(p.idmap_rootfs);
        assert_eq!(idmap_of(&p, "data"), Idmap::Off);
        assert_eq!(idmap_of(&p, "proc"), Idmap::Off);
        // Without a user namespace nothing is idmapped.
        let p = build(
            &spec(&base("", r#""args":["/x"]"#)),
            Path::new("/"),
            &host(),
            None,
        )
        .unwrap();
        assert!(!p.idmap_rootfs);
        // The annotation turns the rootfs idmap off.
        let off = userns_spec("", r#""annotations":{"org.zctr.rootfs-idmap":"false"},"#);
        let p = build(&off, Path::new("/"), &host(), Some(ovl())).unwrap();
        assert!(!p.idmap_rootfs);
    }

    #[test]
    fn a_rootfs_written_in_place_is_never_idmapped() {
        // Without an overlay the container writes into the image directory:
        // through an idmap its root would create host-root-owned files there.
        let p = build(&userns_spec("", ""), Path::new("/"), &host(), None).unwrap();
        assert!(!p.idmap_rootfs);
        assert!(p.rootfs_overlay.is_none());
    }

    #[test]
    fn an_overlay_cannot_be_made_in_a_joined_mount_namespace() {
        let json = base("", r#""args":["/x"]"#).replace(
            r#"{"type":"mount"}"#,
            r#"{"type":"mount","path":"/proc/1/ns/mnt"}"#,
        );
        build(&spec(&json), Path::new("/"), &host(), None).unwrap();
        let e = build(&spec(&json), Path::new("/"), &host(), Some(ovl())).unwrap_err();
        assert_eq!(e.field, "linux.namespaces");
        assert!(e.reason.contains("overlay"), "{e}");
    }

    #[test]
    fn no_idmap_for_a_container_with_sys_admin() {
        let with_admin = |mounts: &str| {
            let json = base(
                "",
                r#""args":["/x"],"capabilities":{"bounding":["CAP_SYS_ADMIN"]}"#,
            )
            .replace(
                r#""namespaces":["#,
                r#""uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                   "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                   "namespaces":[{"type":"user"},"#,
            )
            .replace(r#""mounts":["#, &format!(r#""mounts":[{mounts}"#));
            build(&spec(&json), Path::new("/"), &host(), None)
        };
        // The rootfs falls back to a plain bind.
        assert!(!with_admin("").unwrap().idmap_rootfs);
        let e = with_admin(
            r#"{"destination":"/v","type":"bind","source":"/tmp","options":["rbind","idmap"]},"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "mounts");
        assert!(e.reason.starts_with("/v: an idmapped mount cannot"), "{e}");
    }

    #[test]
    fn the_root_must_be_a_directory_and_its_propagation_known() {
        let root: Root = serde_json::from_str(r#"{"path":"/"}"#).unwrap();
        let r = plan(&root, None, Path::new("/")).unwrap();
        assert_eq!(r.propagation, libc::MS_SLAVE | libc::MS_REC);
        assert_eq!(r.path.to_bytes(), b"/");
        let e = plan(&root, Some(&"sideways".to_string()), Path::new("/")).unwrap_err();
        assert_eq!(e.field, "linux.rootfsPropagation");
        assert_eq!(
            super::propagation_steps(libc::MS_SHARED),
            (libc::MS_SLAVE | libc::MS_REC, libc::MS_SHARED)
        );
        assert_eq!(
            super::propagation_steps(libc::MS_PRIVATE | libc::MS_REC),
            (libc::MS_PRIVATE | libc::MS_REC, 0)
        );
        let file: Root = serde_json::from_str(r#"{"path":"/proc/self/stat"}"#).unwrap();
        let e = plan(&file, None, Path::new("/")).unwrap_err();
        assert!(e.reason.ends_with("is not a directory"), "{e}");
    }
}
