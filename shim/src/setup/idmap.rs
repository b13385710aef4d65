//! Idmapped rootfs and bind mounts, prepared by the shim around clone.
//!
//! Before clone the shim takes a detached clone of each source that the plan
//! idmaps (`open_tree(OPEN_TREE_CLONE)`); once the child's user namespace has
//! its maps, it sets MOUNT_ATTR_IDMAP on each clone through that namespace; the
//! child then attaches the clones with `move_mount` instead of binding the
//! sources. Where the filesystem (or kernel) cannot idmap, an automatic idmap
//! falls back to the clone as a plain bind; a requested one is an error.
//!
//! With a rootfs overlay the rootfs is cloned too (idmapped or not): the
//! clone becomes the overlay's lower layer (`overlay`) instead of the root.

use crate::setup::plan::{Idmap, Plan};
use crate::setup::sys;
use nix::errno::Errno;
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use zctr_shim_core::SetupError;

/// Detached mount trees, one per idmapped item of the plan.
#[derive(Default)]
pub struct Trees {
    rootfs: Option<OwnedFd>,
    /// Per plan mount: the clone's fd, or -1 (what the child indexes).
    mount_fds: Vec<RawFd>,
    /// Owners of the fds in `mount_fds`.
    owned: Vec<OwnedFd>,
}

impl Trees {
    /// Clones every source the plan idmaps. Done before clone, in the shim's
    /// own mount namespace.
    pub fn open(plan: &Plan) -> Result<Trees, SetupError> {
        let mut trees = Trees::default();
        // As binds made once `/` has the rootfs propagation would be: slaves
        // of the host's mounts, or private when that was asked for.
        let propagation = if plan.root_propagation & libc::MS_PRIVATE != 0 {
            libc::MS_PRIVATE
        } else {
            libc::MS_SLAVE
        };
        if plan.idmap_rootfs || plan.rootfs_overlay.is_some() {
            // An overlay layer is one mount: submounts would not show anyway.
            trees.rootfs = Some(clone_tree(
                &plan.rootfs,
                plan.rootfs_overlay.is_none(),
                propagation,
                "clone rootfs mount",
            )?);
        }
        if plan.mounts.iter().any(|m| m.idmap.is_on()) {
            for m in &plan.mounts {
                let fd = match (&m.source, m.idmap) {
                    (Some(src), idmap) if idmap.is_on() => {
                        let recursive = m.flags & libc::MS_REC != 0;
                        let fd = if m.flags & libc::MS_RDONLY == 0 {
                            // Checked and cloned through one fd: the clone
                            // is of the directory that was checked.
                            let dir = source_out_of_reach(src, &m.display)?;
                            if recursive && idmap.recursive() {
                                no_submounts(&dir.path, src, &m.display)?;
                            }
                            let tree = sys::open_tree_clone_fd(
                                std::os::fd::AsFd::as_fd(&dir.fd),
                                recursive,
                            )
                            .map_err(|e| SetupError::errno("clone volume mount", &show(src), e))?;
                            set_propagation(tree, propagation, src, "clone volume mount")?
                        } else {
                            let tree =
                                clone_tree(src, recursive, propagation, "clone volume mount")?;
                            // `ro` remounts only the top mount of an rbind: a
                            // submount of a recursively idmapped clone would
                            // stay writable as host root, unchecked. Every
                            // mount of the clone is made read-only.
                            if recursive && idmap.recursive() {
                                sys::mount_setattr_rdonly_recursive(tree.as_raw_fd()).map_err(
                                    |e| SetupError::errno("clone volume mount", &show(src), e),
                                )?;
                            }
                            tree
                        };
                        let raw = fd.as_raw_fd();
                        trees.owned.push(fd);
                        raw
                    }
                    _ => -1,
                };
                trees.mount_fds.push(fd);
            }
        }
        Ok(trees)
    }

    /// The clone the child attaches as its root, when it attaches one
    /// (not with an overlay: the overlay is built on it).
    pub fn rootfs(&self, plan: &Plan) -> Option<RawFd> {
        match plan.rootfs_overlay {
            Some(_) => None,
            None => self.rootfs.as_ref().map(|t| t.as_raw_fd()),
        }
    }

    /// The rootfs clone, for the overlay's lower layer.
    pub fn take_rootfs(&mut self) -> Option<OwnedFd> {
        self.rootfs.take()
    }

    /// Per plan mount, the clone to attach or -1; empty when nothing is idmapped.
    pub fn mount_fds(&self) -> &[RawFd] {
        &self.mount_fds
    }

    /// Whether [`Trees::apply`] has anything to idmap.
    pub fn needs_userns(&self, plan: &Plan) -> bool {
        (plan.idmap_rootfs && self.rootfs.is_some()) || !self.owned.is_empty()
    }

    /// Idmaps every clone through `userns` (the child's user namespace, its
    /// maps written). Automatic idmaps fall back to plain binds.
    pub fn apply(&self, plan: &Plan, userns: BorrowedFd) -> Result<(), SetupError> {
        if let Some(tree) = self.rootfs.as_ref().filter(|_| plan.idmap_rootfs) {
            let auto = Idmap::Auto { recursive: true };
            set_idmap(tree.as_raw_fd(), userns, auto, &plan.rootfs)
                .map_err(|e| SetupError::errno("idmap rootfs", &show(&plan.rootfs), e))?;
        }
        for (m, &fd) in plan.mounts.iter().zip(&self.mount_fds) {
            if fd < 0 {
                continue;
            }
            let src = m.source.as_deref().unwrap_or(c"");
            set_idmap(fd, userns, m.idmap, src).map_err(|e| {
                SetupError::errno(
                    "idmap mount",
                    &format!("{} (source {})", show(&m.display), show(src)),
                    e,
                )
            })?;
        }
        Ok(())
    }
}

/// Through a writable idmapped bind the container's root writes files owned
/// by host root, set-id bits included: its source must be out of reach of
/// unprivileged host users (see `reach`). Returns the source, opened by the
/// walk that checked it.
fn source_out_of_reach(src: &CStr, dest: &CStr) -> Result<crate::setup::reach::Walked, SetupError> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(src.to_bytes()));
    let what = format!("{} (source {})", show(dest), show(src));
    match crate::setup::reach::walk_host_path(path) {
        Ok(w) => match &w.open {
            None => Ok(w),
            Some(p) => Err(SetupError::new(
                "idmap mount",
                libc::EPERM,
                format!(
                    "{what}: a writable idmapped mount makes the container's root the host's root \
                     there, so its source must not be reachable by unprivileged host users, and {} is: \
                     put it below a directory owned by root with mode 0700 (or 0750, group root), \
                     or mount it read-only",
                    p.display()
                ),
            )),
        },
        Err(e) => Err(SetupError::new(
            "idmap mount",
            e.raw_os_error().unwrap_or(libc::EINVAL),
            format!("{what}: {e}"),
        )),
    }
}

/// A writable recursively idmapped clone would idmap every mount below its
/// source too, and those are not checked (a bind of a directory that host
/// users reach can sit below a root-only source): refused.
fn no_submounts(real: &std::path::Path, src: &CStr, dest: &CStr) -> Result<(), SetupError> {
    let what = format!("{} (source {})", show(dest), show(src));
    let info = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| {
        SetupError::new(
            "idmap mount",
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("{what}: reading /proc/self/mountinfo: {e}"),
        )
    })?;
    match crate::setup::reach::mounts_below(real, &info).first() {
        None => Ok(()),
        Some(sub) => Err(SetupError::new(
            "idmap mount",
            libc::EPERM,
            format!(
                "{what}: a writable recursively idmapped mount (ridmap) would idmap the mounts below \
                 its source too, which are not checked for reach by unprivileged host users, and {} \
                 is one: use idmap (only the volume itself is idmapped), mount it read-only, or \
                 remove the submounts",
                sub.display()
            ),
        )),
    }
}

fn show(s: &CStr) -> String {
    s.to_string_lossy().into_owned()
}

/// A detached clone of the mount tree at `path`, made a slave (or private): a
/// clone of a shared mount (every mount under systemd) starts in its source's
/// peer group, so the container's mounts on it would appear on the host, and
/// pivot_root refuses a shared root. A slave still sees the host's later
/// mounts below it, as a bind made after `/` became rslave would.
fn clone_tree(
    path: &CStr,
    recursive: bool,
    propagation: libc::c_ulong,
    step: &str,
) -> Result<OwnedFd, SetupError> {
    let tree = sys::open_tree_clone(path, recursive)
        .map_err(|e| SetupError::errno(step, &show(path), e))?;
    set_propagation(tree, propagation, path, step)
}

fn set_propagation(
    tree: OwnedFd,
    propagation: libc::c_ulong,
    path: &CStr,
    step: &str,
) -> Result<OwnedFd, SetupError> {
    sys::mount_setattr_propagation(tree.as_raw_fd(), propagation)
        .map_err(|e| SetupError::errno(step, &format!("{}: make slave", show(path)), e))?;
    Ok(tree)
}

/// Errors that mean "this filesystem or kernel cannot idmap", as opposed to a
/// broken setup.
fn unsupported(e: Errno) -> bool {
    matches!(
        e,
        Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOSYS | Errno::EPERM
    )
}

fn set_idmap(tree: RawFd, userns: BorrowedFd, idmap: Idmap, what: &CStr) -> Result<(), Errno> {
    match sys::mount_setattr_idmap(tree, userns.as_raw_fd(), idmap.recursive()) {
        Ok(()) => Ok(()),
        Err(e) if matches!(idmap, Idmap::Auto { .. }) && unsupported(e) => {
            tracing::debug!(
                step = "idmap",
                errno = e as i32,
                "{} cannot be idmapped ({}); it is bound as is, files keep their host owners",
                what.to_string_lossy(),
                e.desc()
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}
