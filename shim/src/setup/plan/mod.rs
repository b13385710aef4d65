//! Everything the container child needs, computed from `config.json` before
//! fork: C strings, parsed mount flags, capability masks, namespace flags. The
//! child walks this plan and allocates nothing.
//!
//! One module per section of the spec, each with its own tests: [`namespaces`],
//! [`rootfs`] (root and the idmap policy), [`mounts`], [`devices`], [`paths`]
//! (masked and read-only), [`sysctl`], [`process`] (args, env, cwd),
//! [`rlimits`], [`caps`], [`attrs`] (umask, personality, scheduling, ...),
//! [`lsm`] (AppArmor, SELinux), [`timens`], [`hooks`], and [`unsupported`]
//! (fields refused by name); seccomp is compiled by `setup::seccomp`. [`build`]
//! runs them in the spec's order and assembles the [`Plan`].

pub mod attrs;
pub mod caps;
pub mod devices;
pub mod hooks;
pub mod lsm;
pub mod mounts;
pub mod namespaces;
pub mod paths;
pub mod process;
pub mod rlimits;
pub mod rootfs;
pub mod sysctl;
pub mod timens;
pub mod unsupported;

pub use caps::CapPlan;
pub use devices::DeviceStep;
pub use mounts::{MountKind, MountStep};
pub use namespaces::JoinNs;
pub use rootfs::{Idmap, ROOTFS_IDMAP_ANNOTATION};

use crate::setup::mountopts;
use libc::c_ulong;
use oci_spec::runtime::Spec;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use zctr_shim_core::cgroup::{self, Hierarchy};

/// A bad `config.json`: which field, and why.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct PlanError {
    pub field: String,
    pub reason: String,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError {
        field: field.into(),
        reason: reason.into(),
    }
}

fn cstr(field: &str, s: &str) -> Result<CString, PlanError> {
    CString::new(s).map_err(|_| err(field, "contains a NUL byte"))
}

#[derive(Debug)]
pub struct Plan {
    /// CLONE_NEW* flags of namespaces to create.
    pub clone_flags: u64,
    /// Create the cgroup namespace with unshare in the child, after the shim
    /// has moved it into its cgroups (not at clone: on cgroup v1 the child is
    /// moved only after clone, and the namespace's root would be the shim's cgroup).
    pub unshare_cgroupns: bool,
    /// Joined by the shim itself before clone (net, ipc, uts, pid, cgroup, time),
    /// so that the new user namespace does not stand between the child and them.
    pub join_before: Vec<JoinNs>,
    /// Joined by the child (user, then mount).
    pub join_in_child: Vec<JoinNs>,
    pub userns: bool,
    pub uid_map: String,
    pub gid_map: String,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub rootfs: CString,
    /// The propagation of `/` while the container's mounts are made.
    pub root_propagation: c_ulong,
    /// `linux.rootfsPropagation` applied to the new `/` after pivot_root,
    /// when it cannot be during setup (shared: pivot_root refuses a shared
    /// parent; unbindable: the rootfs could not be bound), else 0.
    pub root_propagation_after: c_ulong,
    /// Create a time namespace with unshare in the child (never at clone:
    /// its offsets must be written before a process enters it).
    pub unshare_timens: bool,
    /// `linux.timeOffsets`, the text for /proc/self/timens_offsets.
    pub time_offsets: Option<CString>,
    pub readonly_root: bool,
    pub mounts: Vec<MountStep>,
    /// /dev is a tmpfs the shim fills with device nodes and links.
    pub populate_dev: bool,
    pub devices: Vec<DeviceStep>,
    pub has_devpts: bool,
    pub masked: Vec<CString>,
    pub readonly_paths: Vec<CString>,
    /// (path below /proc/sys, value)
    pub sysctls: Vec<(CString, CString)>,
    pub loopback_up: bool,
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<libc::gid_t>,
    pub caps: CapPlan,
    pub last_cap: u32,
    pub no_new_privs: bool,
    /// umask, personality, scheduling, I/O priority, CPU affinity, terminal.
    pub attrs: attrs::Attrs,
    /// AppArmor profile and SELinux label for exec.
    pub labels: lsm::Labels,
    pub hooks: hooks::HookPlan,
    /// The id (set by the caller), bundle and annotations for the hooks' state.
    pub container: hooks::ContainerInfo,
    pub cwd: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Candidate executables: argv[0] itself when it holds a '/', else argv[0]
    /// joined to each PATH entry of the container's environment.
    pub exec_candidates: Vec<CString>,
    pub cgroups_path: String,
    /// Make the rootfs an idmapped mount (user namespace + rootfs owned by an
    /// unmapped uid + an overlay: never on a rootfs the container writes to).
    pub idmap_rootfs: bool,
    /// `linux.seccomp`, compiled (see `seccomp`).
    pub seccomp: Option<crate::setup::seccomp::Filter>,
    /// The container's root is an overlay: the rootfs is its read-only lower
    /// layer, and `<dir>/upper` and `<dir>/work` (a directory the shim makes
    /// 0700) take every write. See "Writes and the host" in docs/shim.md.
    pub rootfs_overlay: Option<PathBuf>,
    /// The size of the tmpfs taking the overlay's writes (`None`: the
    /// kernel's default); set from `--rootfs-overlay-size`.
    pub rootfs_overlay_size: Option<u64>,
}

/// Pointer arrays into a plan's C strings, NULL-terminated, built before fork.
pub struct ExecArrays {
    pub argv: Vec<*const libc::c_char>,
    pub envp: Vec<*const libc::c_char>,
}

impl Plan {
    pub fn exec_arrays(&self) -> ExecArrays {
        let mut argv: Vec<_> = self.argv.iter().map(|s| s.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<_> = self.envp.iter().map(|s| s.as_ptr()).collect();
        envp.push(std::ptr::null());
        ExecArrays { argv, envp }
    }
}

/// Facts about the host the plan depends on, gathered by the caller (and faked in tests).
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub hierarchies: Vec<Hierarchy>,
    pub last_cap: u32,
    /// The shim's own bounding set (bit n = capability n).
    pub bounding: u64,
    /// AppArmor is enabled (/sys/module/apparmor/parameters/enabled is "Y").
    pub apparmor: bool,
    /// SELinux is enabled (/sys/fs/selinux/enforce exists).
    pub selinux: bool,
    /// resctrl is mounted at /sys/fs/resctrl (Intel RDT).
    pub resctrl: bool,
}

impl HostFacts {
    pub fn probe() -> std::io::Result<Self> {
        Ok(HostFacts {
            hierarchies: cgroup::hierarchies()?,
            last_cap: crate::setup::sys::last_cap(),
            bounding: own_bounding(),
            apparmor: std::fs::read("/sys/module/apparmor/parameters/enabled")
                .is_ok_and(|v| v.starts_with(b"Y")),
            selinux: Path::new("/sys/fs/selinux/enforce").exists(),
            resctrl: Path::new("/sys/fs/resctrl/info").is_dir(),
        })
    }
}

fn own_bounding() -> u64 {
    ::caps::read(None, ::caps::CapSet::Bounding)
        .map(|set| set.iter().fold(0u64, |m, c| m | 1u64 << c.index()))
        .unwrap_or(u64::MAX)
}

fn in_bundle(bundle: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        bundle.join(path)
    }
}

/// A destination inside the container: absolute, normalised, returned relative
/// ("proc/sys"). `..` components are refused outright.
fn container_path(field: &str, path: &str) -> Result<String, PlanError> {
    if !path.starts_with('/') {
        return Err(err(field, format!("{path:?} is not an absolute path")));
    }
    let mut parts = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(err(field, format!("{path:?} contains \"..\""))),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Builds the plan for the bundle at `bundle` whose parsed config is `spec`.
/// With `overlay` (a directory the shim owns, see [`Plan::rootfs_overlay`]) the
/// container's writes to its root go to an overlay's upper layer there.
pub fn build(
    spec: &Spec,
    bundle: &Path,
    host: &HostFacts,
    overlay: Option<&Path>,
) -> Result<Plan, PlanError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| err("process", "missing"))?;
    let root = spec.root().as_ref().ok_or_else(|| err("root", "missing"))?;
    let linux = spec.linux().clone().unwrap_or_default();
    unsupported::check(spec, &linux, host)?;
    let mut ns = namespaces::plan(&linux)?;
    let unshare_timens = ns.clone_flags & namespaces::CLONE_NEWTIME != 0;
    ns.clone_flags &= !namespaces::CLONE_NEWTIME;
    let time_offsets = timens::plan(&linux, unshare_timens)?;
    let rootfs = rootfs::plan(root, linux.rootfs_propagation().as_ref(), bundle)?;
    let (root_propagation, root_propagation_after) = rootfs::propagation_steps(rootfs.propagation);
    let uid_maps = linux.uid_mappings().as_deref().unwrap_or(&[]);
    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut mounts = mounts::plan(
        spec.mounts().iter().flatten(),
        &mounts::Context {
            bundle,
            host,
            cgroups_path: &cgroups_path,
            userns: ns.userns,
            uid_maps,
            gid_maps: linux.gid_mappings().as_deref(),
        },
    )?;
    let devices = if mounts.populate_dev {
        devices::plan(linux.devices().iter().flatten())?
    } else {
        Vec::new()
    };
    let masked = paths::plan("linux.maskedPaths", linux.masked_paths().as_ref())?;
    let readonly_paths = paths::plan("linux.readonlyPaths", linux.readonly_paths().as_ref())?;
    let sysctls = sysctl::plan(linux.sysctl().as_ref())?;
    let exec = process::plan(process)?;
    let rlimits = rlimits::plan(process.rlimits().iter().flatten())?;
    let caps = caps::plan(process.capabilities().as_ref(), ns.own_userns(), host)?;
    let attrs = attrs::plan(process, linux.personality().as_ref())?;
    let labels = lsm::plan(process, &linux, host, &mut mounts.steps)?;
    let hooks = hooks::plan(spec.hooks().as_ref())?;
    let domainname = spec
        .domainname()
        .as_ref()
        .map(|d| cstr("domainname", d))
        .transpose()?;
    if domainname.is_some() && ns.clone_flags & libc::CLONE_NEWUTS as u64 == 0 {
        return Err(err(
            "domainname",
            "needs a new UTS namespace (linux.namespaces has no \"uts\" without a path)",
        ));
    }
    let idmap_rootfs = rootfs::idmap_policy(
        spec,
        &ns,
        uid_maps,
        rootfs.owner,
        caps.sys_admin(),
        &mounts.steps,
        overlay,
    )?;
    let user = process.user();

    Ok(Plan {
        clone_flags: ns.clone_flags,
        unshare_cgroupns: ns.unshare_cgroupns,
        loopback_up: ns.clone_flags & libc::CLONE_NEWNET as u64 != 0,
        join_before: ns.join_before,
        join_in_child: ns.join_in_child,
        userns: ns.userns,
        uid_map: ns.uid_map,
        gid_map: ns.gid_map,
        hostname: spec
            .hostname()
            .as_ref()
            .map(|h| cstr("hostname", h))
            .transpose()?,
        domainname,
        rootfs: rootfs.path,
        root_propagation,
        root_propagation_after,
        unshare_timens,
        time_offsets,
        readonly_root: root.readonly().unwrap_or(false),
        mounts: mounts.steps,
        populate_dev: mounts.populate_dev,
        devices,
        has_devpts: mounts.has_devpts,
        masked,
        readonly_paths,
        sysctls,
        rlimits,
        oom_score_adj: process.oom_score_adj(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        caps,
        last_cap: host.last_cap,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        attrs,
        labels,
        hooks,
        container: hooks::ContainerInfo {
            id: String::new(),
            bundle: std::path::absolute(bundle).unwrap_or_else(|_| bundle.to_path_buf()),
            annotations: spec.annotations().clone(),
        },
        cwd: cstr("process.cwd", &exec.cwd)?,
        argv: exec.argv,
        envp: exec.envp,
        exec_candidates: exec.exec_candidates,
        cgroups_path,
        idmap_rootfs,
        seccomp: crate::setup::seccomp::plan(linux.seccomp().as_ref())?,
        rootfs_overlay: overlay.map(Path::to_path_buf),
        rootfs_overlay_size: None,
    })
}

/// Fixtures the sections' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use oci_spec::runtime::Spec;

    pub fn host() -> HostFacts {
        HostFacts {
            hierarchies: vec![
                Hierarchy {
                    mount_point: "/sys/fs/cgroup/memory".into(),
                    unified: false,
                },
                Hierarchy {
                    mount_point: "/sys/fs/cgroup/unified".into(),
                    unified: true,
                },
            ],
            last_cap: 40,
            bounding: u64::MAX,
            apparmor: false,
            selinux: false,
            resctrl: false,
        }
    }

    pub fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    pub fn base(extra_linux: &str, process: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.0.2","root":{{"path":"/"}},
              "process":{{"cwd":"/","user":{{"uid":0,"gid":0}},{process}}},
              "mounts":[{{"destination":"/proc","type":"proc","source":"proc"}},
                        {{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}},
                        {{"destination":"/data","type":"bind","source":"/tmp","options":["rbind","ro"]}},
                        {{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["ro"]}}],
              "linux":{{"cgroupsPath":"/a/b",{extra_linux}
                "namespaces":[{{"type":"mount"}},{{"type":"pid"}},{{"type":"network","path":"/proc/1/ns/net"}}]}}}}"#
        )
    }

    pub fn userns_spec(mounts_extra: &str, annotations: &str) -> Spec {
        let json = base("", r#""args":["/x"]"#)
            .replace(
                r#""namespaces":["#,
                r#""uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                   "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
                   "namespaces":[{"type":"user"},"#,
            )
            .replace(r#""mounts":["#, &format!(r#""mounts":[{mounts_extra}"#))
            .replace(
                r#"{"ociVersion":"1.0.2","#,
                &format!(r#"{{"ociVersion":"1.0.2",{annotations}"#),
            );
        spec(&json)
    }

    pub fn idmap_of(p: &Plan, dest: &str) -> Idmap {
        p.mounts
            .iter()
            .find(|m| m.dest.to_bytes() == dest.as_bytes())
            .unwrap()
            .idmap
    }

    pub fn ovl() -> &'static Path {
        Path::new("/run/test-overlay")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn plan_from_a_full_spec() {
        let s = spec(&base(
            r#""sysctl":{"net.ipv4.ip_forward":"1"},"maskedPaths":["/proc/kcore"],"#,
            r#""args":["sh","-c","true"],"env":["PATH=/bin:/usr/bin","A=1"],
               "capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"],"effective":["CAP_KILL"]},
               "rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":512}],"noNewPrivileges":true"#,
        ));
        let p = build(&s, Path::new("/"), &host(), None).unwrap();
        assert_eq!(
            p.clone_flags,
            (libc::CLONE_NEWNS | libc::CLONE_NEWPID) as u64
        );
        assert_eq!(p.join_before.len(), 1);
        assert_eq!(p.join_before[0].nstype, libc::CLONE_NEWNET);
        assert!(!p.loopback_up);
        assert_eq!(
            p.exec_candidates,
            vec![
                CString::new("/bin/sh").unwrap(),
                CString::new("/usr/bin/sh").unwrap()
            ]
        );
        assert_eq!(p.caps.bounding, (1 << 0) | (1 << 5));
        assert_eq!(p.caps.effective, 1 << 5);
        assert_eq!(p.rlimits, vec![(libc::RLIMIT_NOFILE as i32, 512, 1024)]);
        assert!(p.no_new_privs);
        assert!(p.populate_dev);
        assert_eq!(p.devices.len(), 6);
        assert_eq!(
            p.sysctls[0].0.to_str().unwrap(),
            "/proc/sys/net/ipv4/ip_forward"
        );
        assert_eq!(p.masked[0].to_str().unwrap(), "/proc/kcore");
        let data = p
            .mounts
            .iter()
            .find(|m| m.dest.to_bytes() == b"data")
            .unwrap();
        assert_eq!(
            data.kind,
            MountKind::Bind {
                dir: true,
                recursive: true
            }
        );
        assert!(data.needs_remount());
        // Hybrid host: tmpfs plus one bind per hierarchy.
        let cg: Vec<_> = p
            .mounts
            .iter()
            .filter(|m| m.dest.to_bytes().starts_with(b"sys/fs/cgroup"))
            .map(|m| {
                (
                    m.dest.to_str().unwrap().to_string(),
                    m.source.as_ref().unwrap().to_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            cg,
            vec![
                ("sys/fs/cgroup".to_string(), "tmpfs".to_string()),
                (
                    "sys/fs/cgroup/memory".to_string(),
                    "/sys/fs/cgroup/memory/a/b".to_string()
                ),
                (
                    "sys/fs/cgroup/unified".to_string(),
                    "/sys/fs/cgroup/unified/a/b".to_string()
                ),
            ]
        );
    }

    #[test]
    fn bad_specs_name_the_field() {
        let cases = [
            (base("", r#""args":[]"#), "process.args"),
            (
                base("", r#""args":["x"],"env":["NOEQUALS"]"#),
                "process.env",
            ),
            (
                base(
                    "",
                    r#""args":["x"],"capabilities":{"bounding":["CAP_NOPE"]}"#,
                ),
                "",
            ),
            (
                base("", r#""args":["x"]"#)
                    .replace(r#""destination":"/proc""#, r#""destination":"/../proc""#),
                "mounts[0].destination",
            ),
            (
                base("", r#""args":["x"]"#)
                    .replace(r#"{"path":"/"}"#, r#"{"path":"/nonexistent-zctr"}"#),
                "root.path",
            ),
            (
                base("", r#""args":["x"]"#).replace(r#"[{"type":"mount"},"#, "["),
                "linux.namespaces",
            ),
        ];
        for (json, field) in cases {
            let Ok(s) = serde_json::from_str::<Spec>(&json) else {
                continue; // the spec crate itself refused it: also fine
            };
            let e = build(&s, Path::new("/"), &host(), None).unwrap_err();
            assert!(e.field.starts_with(field), "{e} (wanted {field})");
        }
    }
}
