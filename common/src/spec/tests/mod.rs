use super::*;
use crate::capability;
use crate::config::{ExtraMount, MountKind, Volume};
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Mount};
use std::collections::HashSet;

fn id() -> ContainerId {
    ContainerId::new("demo").unwrap()
}

fn config(profile: Profile) -> ContainerConfig {
    let mut c = ContainerConfig::new("/var/lib/zctr/demo/rootfs");
    c.args = Some(vec!["/bin/sh".into()]);
    c.profile = profile;
    c
}

fn gen(c: &ContainerConfig, m: &ImageMeta) -> Spec {
    generate(&id(), c, m, "zctr/demo").unwrap()
}

fn gen_err(c: &ContainerConfig, m: &ImageMeta) -> SpecError {
    generate(&id(), c, m, "zctr/demo").unwrap_err()
}

fn process(s: &Spec) -> &oci_spec::runtime::Process {
    s.process().as_ref().unwrap()
}

fn linux(s: &Spec) -> &oci_spec::runtime::Linux {
    s.linux().as_ref().unwrap()
}

fn namespaces(s: &Spec) -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
    linux(s)
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| (n.typ(), n.path().clone()))
        .collect()
}

fn mount<'a>(s: &'a Spec, dest: &str) -> Option<&'a Mount> {
    s.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new(dest))
}

fn opts(m: &Mount) -> Vec<&str> {
    m.options()
        .as_ref()
        .map(|o| o.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

fn destinations(s: &Spec) -> Vec<String> {
    s.mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect()
}

fn caps(s: &Spec) -> oci_spec::runtime::LinuxCapabilities {
    process(s).capabilities().clone().unwrap()
}

fn env(s: &Spec) -> Vec<String> {
    process(s).env().clone().unwrap()
}

fn meta_with(f: impl FnOnce(&mut ImageMeta)) -> ImageMeta {
    let mut m = ImageMeta::default();
    f(&mut m);
    m
}

// ---- merge rules ----

#[test]
fn args_config_overrides_meta() {
    let m = meta_with(|m| m.args = vec!["/bin/meta".into()]);
    let s = gen(&config(Profile::Unprivileged), &m);
    assert_eq!(process(&s).args().clone().unwrap(), vec!["/bin/sh"]);
}

#[test]
fn args_from_meta_when_config_has_none() {
    let mut c = config(Profile::Unprivileged);
    c.args = None;
    let m = meta_with(|m| m.args = vec!["/bin/meta".into(), "-x".into()]);
    let s = gen(&c, &m);
    assert_eq!(process(&s).args().clone().unwrap(), vec!["/bin/meta", "-x"]);
}

#[test]
fn args_missing_everywhere_is_an_error() {
    let mut c = config(Profile::Unprivileged);
    c.args = None;
    let err = gen_err(&c, &ImageMeta::default());
    assert!(matches!(err, SpecError::NoArgs));
    assert_eq!(
        err.to_string(),
        "args: neither the config nor the image meta gives a command"
    );
    c.args = Some(vec![]);
    let err = gen_err(&c, &meta_with(|m| m.args = vec!["/x".into()]));
    assert!(matches!(err, SpecError::Config(_)), "{err}");
}

#[test]
fn env_meta_then_config_then_default_path_sorted() {
    let mut c = config(Profile::Unprivileged);
    c.env.insert("B".into(), "config".into());
    c.env.insert("C".into(), "config".into());
    let m = meta_with(|m| {
        m.env.insert("A".into(), "meta".into());
        m.env.insert("B".into(), "meta".into());
    });
    assert_eq!(
        env(&gen(&c, &m)),
        vec![
            "A=meta".to_string(),
            "B=config".into(),
            "C=config".into(),
            format!("PATH={DEFAULT_PATH}"),
        ]
    );
}

#[test]
fn env_path_from_meta_or_config_wins_over_default() {
    let mut c = config(Profile::Unprivileged);
    let m = meta_with(|m| {
        m.env.insert("PATH".into(), "/meta/bin".into());
    });
    assert_eq!(env(&gen(&c, &m)), vec!["PATH=/meta/bin"]);
    c.env.insert("PATH".into(), "/config/bin".into());
    assert_eq!(env(&gen(&c, &m)), vec!["PATH=/config/bin"]);
    assert_eq!(
        env(&gen(&c, &ImageMeta::default())),
        vec!["PATH=/config/bin"]
    );
}

#[test]
fn cwd_config_then_meta_then_root() {
    let mut c = config(Profile::Unprivileged);
    let m = meta_with(|m| m.workdir = Some("/meta".into()));
    assert_eq!(
        process(&gen(&c, &ImageMeta::default())).cwd(),
        Path::new("/")
    );
    assert_eq!(process(&gen(&c, &m)).cwd(), Path::new("/meta"));
    c.cwd = Some("/config".into());
    assert_eq!(process(&gen(&c, &m)).cwd(), Path::new("/config"));
}

#[test]
fn user_config_then_meta_then_root() {
    let mut c = config(Profile::Unprivileged);
    let m = meta_with(|m| m.user = Some("1000:1001".into()));
    let user = |s: &Spec| (process(s).user().uid(), process(s).user().gid());
    assert_eq!(user(&gen(&c, &ImageMeta::default())), (0, 0));
    assert_eq!(user(&gen(&c, &m)), (1000, 1001));
    c.user = Some("33".into());
    assert_eq!(user(&gen(&c, &m)), (33, 33));
}

#[test]
fn user_must_be_mapped_in_a_user_namespace() {
    let mut c = config(Profile::Unprivileged);
    c.user = Some("65536".into());
    match gen_err(&c, &ImageMeta::default()) {
        SpecError::Invalid { field, reason } => {
            assert_eq!(field, "user");
            assert_eq!(
                reason,
                Violation::NotMapped {
                    id: 65536,
                    size: 65536
                }
            );
        }
        e => panic!("{e}"),
    }
    c.user = None;
    c.id_map = Some(IdMap {
        host_uid: 200000,
        host_gid: 200000,
        size: 1000,
    });
    let m = meta_with(|m| m.user = Some("999:1000".into()));
    let err = gen_err(&c, &m);
    assert!(
        err.to_string()
            .starts_with("meta.user: id 1000 is not mapped"),
        "{err}"
    );
    // Without a user namespace any id goes.
    let mut p = config(Profile::Privileged);
    p.user = Some("70000".into());
    assert_eq!(process(&gen(&p, &ImageMeta::default())).user().uid(), 70000);
}

#[test]
fn root_and_hostname() {
    let mut c = config(Profile::Unprivileged);
    let s = gen(&c, &ImageMeta::default());
    let root = s.root().as_ref().unwrap();
    assert_eq!(root.path(), Path::new("/var/lib/zctr/demo/rootfs"));
    assert_eq!(root.readonly(), Some(false));
    assert_eq!(s.hostname().as_deref(), Some("demo"));
    c.hostname = Some("web".into());
    assert_eq!(
        gen(&c, &ImageMeta::default()).hostname().as_deref(),
        Some("web")
    );
}

#[test]
fn cgroups_path_is_copied_and_checked() {
    let c = config(Profile::Unprivileged);
    let s = gen(&c, &ImageMeta::default());
    assert_eq!(
        linux(&s).cgroups_path().as_deref(),
        Some(Path::new("zctr/demo"))
    );
    for (bad, reason) in [
        ("", Violation::Empty),
        ("/", Violation::Empty),
        ("a\0b", Violation::Nul),
        (
            "zctr/../x",
            Violation::DotDot {
                path: "zctr/../x".into(),
            },
        ),
    ] {
        match generate(&id(), &c, &ImageMeta::default(), bad) {
            Err(SpecError::Invalid { field, reason: r }) => {
                assert_eq!(field, "cgroups_path");
                assert_eq!(r, reason);
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[test]
fn invalid_config_and_meta_are_reported_with_field() {
    let mut c = config(Profile::Unprivileged);
    c.volumes = vec![
        Volume::new("/a", "/s", false),
        Volume::new("/a", "/t", false),
    ];
    let err = gen_err(&c, &ImageMeta::default());
    assert!(
        err.to_string()
            .starts_with("volumes[1].destination: duplicate"),
        "{err}"
    );
    let c = config(Profile::Unprivileged);
    let m = meta_with(|m| m.version = 7);
    let err = gen_err(&c, &m);
    assert!(matches!(err, SpecError::Meta(_)));
    assert!(err.to_string().contains("version"), "{err}");
}

// ---- volumes and mounts ----

#[test]
fn volumes_are_private_recursive_binds() {
    let mut c = config(Profile::Unprivileged);
    c.volumes = vec![
        Volume::new("/data", "/srv/data", false),
        Volume::new("/conf", "/srv/conf", true),
    ];
    let s = gen(&c, &ImageMeta::default());
    let data = mount(&s, "/data").unwrap();
    assert_eq!(data.typ().as_deref(), Some("bind"));
    assert_eq!(data.source().as_deref(), Some(Path::new("/srv/data")));
    assert_eq!(opts(data), vec!["rbind", "rprivate"]);
    assert_eq!(
        opts(mount(&s, "/conf").unwrap()),
        vec!["rbind", "rprivate", "ro"]
    );
}

#[test]
fn idmapped_volumes_need_the_unprivileged_profile() {
    let mut c = config(Profile::Unprivileged);
    let mut v = Volume::new("/data", "/srv/data", true);
    v.idmap = true;
    c.volumes = vec![v];
    let s = gen(&c, &ImageMeta::default());
    assert_eq!(
        opts(mount(&s, "/data").unwrap()),
        vec!["rbind", "rprivate", "ro", "idmap"]
    );
    c.capabilities.add = vec!["sys_admin".into()];
    assert!(gen_err(&c, &ImageMeta::default())
        .to_string()
        .contains("against CAP_SYS_ADMIN"));
    c.capabilities.add.clear();
    c.profile = Profile::Privileged;
    assert!(gen_err(&c, &ImageMeta::default())
        .to_string()
        .starts_with("volumes[0].idmap: not allowed"));
}

#[test]
fn meta_mount_without_volume_gets_empty_tmpfs() {
    let c = config(Profile::Unprivileged);
    let m = meta_with(|m| m.mounts = vec!["/data".into()]);
    let s = gen(&c, &m);
    let data = mount(&s, "/data").unwrap();
    assert_eq!(data.typ().as_deref(), Some("tmpfs"));
    assert_eq!(opts(data), vec!["nosuid", "nodev", "mode=755"]);
    // Owned by the process user when that is not root.
    let m = meta_with(|m| {
        m.mounts = vec!["/data".into()];
        m.user = Some("1000:1001".into());
    });
    let s = gen(&c, &m);
    assert_eq!(
        opts(mount(&s, "/data").unwrap()),
        vec!["nosuid", "nodev", "mode=755", "uid=1000", "gid=1001"]
    );
}

#[test]
fn meta_mount_filled_by_volume_or_mount_gets_no_tmpfs() {
    let mut c = config(Profile::Unprivileged);
    c.volumes = vec![Volume::new("/data", "/srv/data", false)];
    c.mounts = vec![ExtraMount {
        destination: "/cache".into(),
        source: Some("/srv/cache".into()),
        kind: MountKind::Bind,
        readonly: false,
        options: vec![],
    }];
    let m = meta_with(|m| m.mounts = vec!["/data".into(), "/cache".into()]);
    let s = gen(&c, &m);
    let all = destinations(&s);
    assert_eq!(all.iter().filter(|d| *d == "/data").count(), 1);
    assert_eq!(all.iter().filter(|d| *d == "/cache").count(), 1);
    assert_eq!(mount(&s, "/data").unwrap().typ().as_deref(), Some("bind"));
}

#[test]
fn volume_at_undeclared_destination_is_allowed() {
    let mut c = config(Profile::Unprivileged);
    c.volumes = vec![Volume::new("/elsewhere", "/srv/x", false)];
    let m = meta_with(|m| m.mounts = vec!["/data".into()]);
    let s = gen(&c, &m);
    assert!(mount(&s, "/elsewhere").is_some());
    assert_eq!(mount(&s, "/data").unwrap().typ().as_deref(), Some("tmpfs"));
}

#[test]
fn extra_mounts() {
    let mut c = config(Profile::Unprivileged);
    c.mounts = vec![
        ExtraMount {
            destination: "/tmp".into(),
            source: None,
            kind: MountKind::Tmpfs,
            readonly: false,
            options: vec!["size=64m".into()],
        },
        ExtraMount {
            destination: "/etc/resolv.conf".into(),
            source: Some("/etc/resolv.conf".into()),
            kind: MountKind::Bind,
            readonly: true,
            options: vec!["nosuid".into()],
        },
    ];
    let s = gen(&c, &ImageMeta::default());
    let tmp = mount(&s, "/tmp").unwrap();
    assert_eq!(tmp.typ().as_deref(), Some("tmpfs"));
    assert_eq!(tmp.source().as_deref(), Some(Path::new("tmpfs")));
    assert_eq!(opts(tmp), vec!["nosuid", "nodev", "size=64m"]);
    let resolv = mount(&s, "/etc/resolv.conf").unwrap();
    assert_eq!(resolv.typ().as_deref(), Some("bind"));
    assert_eq!(opts(resolv), vec!["rbind", "rprivate", "ro", "nosuid"]);
}

#[test]
fn user_mounts_follow_base_mounts_parents_first() {
    let mut c = config(Profile::Unprivileged);
    c.volumes = vec![
        Volume::new("/data/sub/deeper", "/s3", false),
        Volume::new("/data/sub", "/s2", false),
        Volume::new("/data", "/s1", false),
        Volume::new("/b", "/s0", false),
    ];
    let s = gen(&c, &ImageMeta::default());
    assert_eq!(
        destinations(&s),
        vec![
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/b",
            "/data",
            "/data/sub",
            "/data/sub/deeper"
        ]
    );
}

// ---- unprivileged profile ----

/// The profiles' base specs (namespaces, ids, capabilities, devices, limits, mounts).
mod profiles;

#[test]
fn a_tty_config_gives_the_process_a_terminal_of_that_size() {
    let m = ImageMeta::default();
    let mut c = config(Profile::Unprivileged);
    if c.args.is_none() {
        c.args = Some(vec!["/bin/sh".into()]);
    }
    assert_eq!(process(&gen(&c, &m)).terminal(), Some(false));
    c.tty = true;
    c.console_size = Some([30, 100]);
    let s = gen(&c, &m);
    assert_eq!(process(&s).terminal(), Some(true));
    let size = process(&s).console_size().unwrap();
    assert_eq!((size.height(), size.width()), (30, 100));
}
