//! Everything the container child needs, computed from `config.json` before
//! fork: C strings, parsed mount flags, capability masks, namespace flags. The
//! child walks this plan and allocates nothing.

use crate::cgroup::{self, Hierarchy};
use crate::mountopts;
use libc::c_ulong;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::str::FromStr;

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

/// How a mount is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind of a host path; `dir` tells whether the target is a directory.
    Bind { dir: bool, recursive: bool },
    /// A filesystem mount (proc, tmpfs, sysfs, cgroup2, ...).
    Fs,
}

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

/// A device node to provide in the container's /dev.
#[derive(Debug)]
pub struct DeviceStep {
    /// Path relative to the rootfs ("dev/null").
    pub dest: CString,
    /// Host node bound there when a user namespace forbids mknod.
    pub host: CString,
    pub kind: u32,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Capability masks (bit n = capability n).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapPlan {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// A namespace to join by path.
#[derive(Debug)]
pub struct JoinNs {
    pub path: PathBuf,
    pub nstype: libc::c_int,
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
    pub rootfs: CString,
    pub root_propagation: c_ulong,
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
    pub seccomp: Option<crate::seccomp::Filter>,
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
}

impl HostFacts {
    pub fn probe() -> std::io::Result<Self> {
        Ok(HostFacts {
            hierarchies: cgroup::hierarchies()?,
            last_cap: crate::sys::last_cap(),
            bounding: own_bounding(),
        })
    }
}

fn own_bounding() -> u64 {
    caps::read(None, caps::CapSet::Bounding)
        .map(|set| set.iter().fold(0u64, |m, c| m | 1u64 << c.index()))
        .unwrap_or(u64::MAX)
}

/// Names of the capabilities in `mask`, comma-separated.
fn cap_names(mask: u64) -> String {
    caps::all()
        .into_iter()
        .filter(|c| mask & (1u64 << c.index()) != 0)
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

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
    (LinuxNamespaceType::Time, 0x80, "time"),
];

/// The standard device nodes every container with its own /dev gets.
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// Resolves `path` relative to `bundle` when it is not absolute.
/// Annotation that turns off the automatic idmapping of the rootfs.
pub const ROOTFS_IDMAP_ANNOTATION: &str = "org.zctr.rootfs-idmap";

/// Whether host id `id` lies in one of the mappings.
fn maps_host_id(maps: &[LinuxIdMapping], id: u32) -> bool {
    maps.iter()
        .any(|m| id >= m.host_id() && id - m.host_id() < m.size())
}

/// The idmapping a bind mount explicitly asks for: the `idmap`/`ridmap`
/// options, or its own `uidMappings`/`gidMappings`, which must then be the
/// container's (the idmap goes through the container's user namespace).
fn bind_idmap(
    i: usize,
    m: &oci_spec::runtime::Mount,
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

fn cap_mask(field: &str, caps: Option<&oci_spec::runtime::Capabilities>) -> Result<u64, PlanError> {
    let mut mask = 0u64;
    for cap in caps.into_iter().flatten() {
        let name = format!("CAP_{cap}");
        let parsed = caps::Capability::from_str(&name)
            .map_err(|_| err(field, format!("unknown capability {name}")))?;
        mask |= 1u64 << parsed.index();
    }
    Ok(mask)
}

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

fn id_map(
    field: &str,
    maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>,
) -> Result<String, PlanError> {
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

    // Namespaces.
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

    // Root.
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
    let rootfs = cstr("root.path", &rootfs_path.to_string_lossy())?;
    let root_propagation = match linux.rootfs_propagation() {
        None => libc::MS_SLAVE | libc::MS_REC,
        Some(p) => mountopts::propagation(p)
            .ok_or_else(|| err("linux.rootfsPropagation", format!("unknown value {p:?}")))?,
    };
    let uid_maps = linux.uid_mappings().as_deref().unwrap_or(&[]);
    let idmap_off = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ROOTFS_IDMAP_ANNOTATION))
        .is_some_and(|v| v == "false");
    // Only below an overlay: through a writable idmapped rootfs the
    // container's root would create files owned by host root in the image
    // directory (setuid binaries an unprivileged host user could run).
    let idmap_rootfs = {
        use std::os::unix::fs::MetadataExt;
        userns && !maps_host_id(uid_maps, meta.uid()) && !idmap_off && overlay.is_some()
    };

    // Mounts.
    let cgroups_path = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut mounts = Vec::new();
    let mut populate_dev = false;
    let mut has_devpts = false;
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let field = format!("mounts[{i}].destination");
        let dest_str = m.destination().to_string_lossy();
        let dest = container_path(&field, &dest_str)?;
        let opts = mountopts::parse(m.options().as_deref().unwrap_or(&[]));
        let typ = m.typ().as_deref().unwrap_or("");
        let display = cstr(&field, &dest_str)?;
        if typ == "cgroup" || typ == "cgroup2" {
            cgroup_mounts(&mut mounts, &dest, &opts, host, &cgroups_path, &display)?;
            continue;
        }
        if dest == "dev" && typ == "tmpfs" {
            populate_dev = true;
        }
        if dest == "dev/pts" {
            has_devpts = true;
        }
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
            idmap = bind_idmap(
                i,
                m,
                &opts,
                userns,
                uid_maps,
                linux.gid_mappings().as_deref(),
            )?;
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
        mounts.push(MountStep {
            dest: cstr(&field, &dest)?,
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
        });
    }

    // Devices.
    let mut devices = Vec::new();
    if populate_dev {
        for (path, major, minor) in DEFAULT_DEVICES {
            devices.push(DeviceStep {
                dest: cstr("devices", &path[1..])?,
                host: cstr("devices", path)?,
                kind: libc::S_IFCHR,
                major: *major,
                minor: *minor,
                mode: 0o666,
                uid: 0,
                gid: 0,
            });
        }
        for (i, d) in linux.devices().iter().flatten().enumerate() {
            let field = format!("linux.devices[{i}]");
            let p = d.path().to_string_lossy();
            let rel = container_path(&field, &p)?;
            if !rel.starts_with("dev/") {
                return Err(err(field, format!("{p:?} is not below /dev")));
            }
            let kind = match d.typ().as_str() {
                "c" | "u" => libc::S_IFCHR,
                "b" => libc::S_IFBLK,
                "p" => libc::S_IFIFO,
                t => return Err(err(field, format!("unsupported device type {t:?}"))),
            };
            devices.retain(|x: &DeviceStep| x.dest.to_bytes() != rel.as_bytes());
            devices.push(DeviceStep {
                dest: cstr(&field, &rel)?,
                host: cstr(&field, &p)?,
                kind,
                major: d.major() as u64,
                minor: d.minor() as u64,
                mode: d.file_mode().unwrap_or(0o666) & 0o7777,
                uid: d.uid().unwrap_or(0),
                gid: d.gid().unwrap_or(0),
            });
        }
    }

    let masked = linux
        .masked_paths()
        .iter()
        .flatten()
        .map(|p| {
            container_path("linux.maskedPaths", p)
                .and_then(|r| cstr("linux.maskedPaths", &format!("/{r}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let readonly_paths = linux
        .readonly_paths()
        .iter()
        .flatten()
        .map(|p| {
            container_path("linux.readonlyPaths", p)
                .and_then(|r| cstr("linux.readonlyPaths", &format!("/{r}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut sysctls = Vec::new();
    for (k, v) in linux.sysctl().iter().flatten() {
        let field = format!("linux.sysctl.{k}");
        if k.is_empty() || k.contains("..") || k.contains('/') && k.contains('.') {
            return Err(err(field, "not a sysctl name"));
        }
        let rel = k.replace('.', "/");
        sysctls.push((cstr(&field, &format!("/proc/sys/{rel}"))?, cstr(&field, v)?));
    }
    sysctls.sort();

    // Process.
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err(err("process.args", "empty: nothing to execute"));
    }
    let argv = args
        .iter()
        .map(|a| cstr("process.args", a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = process.env().clone().unwrap_or_default();
    for e in &env {
        if !e.contains('=') {
            return Err(err("process.env", format!("{e:?} is not KEY=VALUE")));
        }
    }
    let envp = env
        .iter()
        .map(|e| cstr("process.env", e))
        .collect::<Result<Vec<_>, _>>()?;
    let path_var = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let exec_candidates = if args[0].contains('/') {
        vec![argv[0].clone()]
    } else {
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| {
                cstr(
                    "process.args",
                    &format!("{}/{}", d.trim_end_matches('/'), args[0]),
                )
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let cwd = process.cwd().to_string_lossy().into_owned();
    let cwd = format!("/{}", container_path("process.cwd", &cwd)?);
    let mut rlimits = Vec::new();
    for r in process.rlimits().iter().flatten() {
        let name = r.typ().to_string();
        let res = rlimit_resource(&name)
            .ok_or_else(|| err("process.rlimits", format!("unknown rlimit {name}")))?;
        if r.soft() > r.hard() {
            return Err(err(
                "process.rlimits",
                format!("{name}: soft limit above hard limit"),
            ));
        }
        rlimits.push((res, r.soft(), r.hard()));
    }
    let caps = match process.capabilities() {
        None => CapPlan::default(),
        Some(c) => CapPlan {
            bounding: cap_mask("process.capabilities.bounding", c.bounding().as_ref())?,
            effective: cap_mask("process.capabilities.effective", c.effective().as_ref())?,
            permitted: cap_mask("process.capabilities.permitted", c.permitted().as_ref())?,
            inheritable: cap_mask("process.capabilities.inheritable", c.inheritable().as_ref())?,
            ambient: cap_mask("process.capabilities.ambient", c.ambient().as_ref())?,
        },
    };
    // Without a user namespace (new or joined) the container's bounding set is
    // a subset of the shim's: what the shim lacks cannot be granted.
    let own_userns = userns
        || join_in_child
            .iter()
            .any(|j| j.nstype == libc::CLONE_NEWUSER);
    let wanted = caps.bounding | caps.effective | caps.permitted | caps.inheritable | caps.ambient;
    if !own_userns && wanted & !host.bounding != 0 {
        return Err(err(
            "process.capabilities",
            format!(
                "{} not in the runtime's own bounding set: it cannot grant them \
                 (run zctr-shim with them, or leave them out)",
                cap_names(wanted & !host.bounding)
            ),
        ));
    }
    // An idmapped tree is cloned outside the container's user namespace and
    // attached into it, so the host's locks on its mount flags (read-only,
    // nosuid, ...) and over-mounts do not follow: a container holding
    // CAP_SYS_ADMIN could undo them and, through the idmap, write as host
    // root. Such a container gets a plain rootfs bind, and an idmap it asks
    // for is refused.
    let sys_admin = caps.bounding & (1u64 << caps::Capability::CAP_SYS_ADMIN.index()) != 0;
    // Trees are cloned in the shim's mount namespace: a joined one may not
    // even have the same paths.
    let joins_mountns = join_in_child.iter().any(|j| j.nstype == libc::CLONE_NEWNS);
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
    let user = process.user();

    Ok(Plan {
        clone_flags,
        unshare_cgroupns,
        join_before,
        join_in_child,
        userns,
        uid_map,
        gid_map,
        hostname: spec
            .hostname()
            .as_ref()
            .map(|h| cstr("hostname", h))
            .transpose()?,
        rootfs,
        root_propagation,
        readonly_root: root.readonly().unwrap_or(false),
        mounts,
        populate_dev,
        devices,
        has_devpts,
        masked,
        readonly_paths,
        sysctls,
        loopback_up: clone_flags & libc::CLONE_NEWNET as u64 != 0,
        rlimits,
        oom_score_adj: process.oom_score_adj(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        caps,
        last_cap: host.last_cap,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        cwd: cstr("process.cwd", &cwd)?,
        argv,
        envp,
        exec_candidates,
        cgroups_path,
        idmap_rootfs,
        seccomp: crate::seccomp::plan(linux.seccomp().as_ref())?,
        rootfs_overlay: overlay.map(Path::to_path_buf),
        rootfs_overlay_size: None,
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
    use super::*;

    fn host() -> HostFacts {
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
        }
    }

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    fn base(extra_linux: &str, process: &str) -> String {
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

    fn userns_spec(mounts_extra: &str, annotations: &str) -> Spec {
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

    fn idmap_of(p: &Plan, dest: &str) -> Idmap {
        p.mounts
            .iter()
            .find(|m| m.dest.to_bytes() == dest.as_bytes())
            .unwrap()
            .idmap
    }

    fn ovl() -> &'static Path {
        Path::new("/run/test-overlay")
    }

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
    fn capabilities_the_shim_lacks_are_refused_by_name_without_a_user_namespace() {
        let json = base(
            "",
            r#""args":["/x"],"capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"]}"#,
        );
        let mut h = host();
        h.bounding = !(1u64 << 5); // no CAP_KILL
        let e = build(&spec(&json), Path::new("/"), &h, None).unwrap_err();
        assert_eq!(e.field, "process.capabilities");
        assert!(e.reason.starts_with("CAP_KILL not in"), "{e}");
        // A new user namespace has a full bounding set of its own.
        let json = json.replace(
            r#""namespaces":["#,
            r#""uidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
               "gidMappings":[{"containerID":0,"hostID":100000,"size":65536}],
               "namespaces":[{"type":"user"},"#,
        );
        build(&spec(&json), Path::new("/"), &h, None).unwrap();
    }

    #[test]
    fn a_pure_cgroup2_host_gets_a_tmpfs_then_cgroup2() {
        let unified = HostFacts {
            hierarchies: vec![Hierarchy {
                mount_point: "/sys/fs/cgroup".into(),
                unified: true,
            }],
            last_cap: 40,
            bounding: u64::MAX,
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
}
