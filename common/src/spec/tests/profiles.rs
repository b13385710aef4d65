//! The two profiles' base specs.

use super::*;

#[test]
fn unprivileged_namespaces_per_network_mode() {
    use LinuxNamespaceType::*;
    let mut c = config(Profile::Unprivileged);
    let types = |s: &Spec| namespaces(s).into_iter().map(|n| n.0).collect::<Vec<_>>();
    let s = gen(&c, &ImageMeta::default());
    assert_eq!(types(&s), vec![User, Pid, Mount, Uts, Ipc, Cgroup, Network]);
    assert!(namespaces(&s).iter().all(|n| n.1.is_none()));
    c.network = NetworkMode::Host;
    assert_eq!(
        types(&gen(&c, &ImageMeta::default())),
        vec![User, Pid, Mount, Uts, Ipc, Cgroup]
    );
    c.network = NetworkMode::Join {
        path: "/run/netns/x".into(),
    };
    let s = gen(&c, &ImageMeta::default());
    assert_eq!(
        namespaces(&s).last().unwrap(),
        &(Network, Some(PathBuf::from("/run/netns/x")))
    );
}

#[test]
fn unprivileged_id_mappings() {
    let mut c = config(Profile::Unprivileged);
    let maps = |s: &Spec| {
        let l = linux(s);
        let one = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
            let m = m.as_ref().unwrap();
            assert_eq!(m.len(), 1);
            (m[0].container_id(), m[0].host_id(), m[0].size())
        };
        (one(l.uid_mappings()), one(l.gid_mappings()))
    };
    assert_eq!(
        maps(&gen(&c, &ImageMeta::default())),
        ((0, 100000, 65536), (0, 100000, 65536))
    );
    c.id_map = Some(IdMap {
        host_uid: 200000,
        host_gid: 300000,
        size: 1000,
    });
    assert_eq!(
        maps(&gen(&c, &ImageMeta::default())),
        ((0, 200000, 1000), (0, 300000, 1000))
    );
}

#[test]
fn unprivileged_capabilities_and_adjustments() {
    let mut c = config(Profile::Unprivileged);
    let s = gen(&c, &ImageMeta::default());
    let caps = caps(&s);
    let want: HashSet<Capability> = capability::UNPRIVILEGED.into_iter().collect();
    assert_eq!(caps.bounding().as_ref().unwrap(), &want);
    assert_eq!(caps.effective().as_ref().unwrap(), &want);
    assert_eq!(caps.permitted().as_ref().unwrap(), &want);
    assert!(caps.inheritable().as_ref().unwrap().is_empty());
    assert!(caps.ambient().as_ref().unwrap().is_empty());
    assert_eq!(process(&s).no_new_privileges(), Some(true));

    c.capabilities.add = vec!["NET_ADMIN".into()];
    c.capabilities.drop = vec!["CAP_MKNOD".into(), "net_raw".into()];
    let caps = super::tests::caps(&gen(&c, &ImageMeta::default()));
    let mut want = want;
    want.insert(Capability::NetAdmin);
    want.remove(&Capability::Mknod);
    want.remove(&Capability::NetRaw);
    assert_eq!(caps.bounding().as_ref().unwrap(), &want);
    assert_eq!(caps.effective().as_ref().unwrap(), &want);
    assert_eq!(caps.permitted().as_ref().unwrap(), &want);
    assert!(caps.ambient().as_ref().unwrap().is_empty());
}

#[test]
fn unprivileged_devices_deny_all_then_allow_standard_nodes() {
    let s = gen(&config(Profile::Unprivileged), &ImageMeta::default());
    let devices = linux(&s)
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    let rules: Vec<_> = devices.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        rules,
        vec![
            "a *:* rwm",
            "c 1:3 rwm",
            "c 1:5 rwm",
            "c 1:7 rwm",
            "c 1:8 rwm",
            "c 1:9 rwm",
            "c 5:0 rwm",
            "c 5:2 rwm",
            "c 136:* rwm"
        ]
    );
    assert!(!devices[0].allow());
    assert!(devices[1..].iter().all(|d| d.allow()));
    assert!(devices[1..]
        .iter()
        .all(|d| d.typ() == Some(LinuxDeviceType::C)));
}

fn limits(s: &Spec) -> (Option<(i64, u64)>, Option<i64>, Option<i64>) {
    let r = linux(s).resources().as_ref().unwrap();
    (
        r.cpu()
            .as_ref()
            .map(|c| (c.quota().unwrap(), c.period().unwrap())),
        r.memory().as_ref().map(|m| m.limit().unwrap()),
        r.pids().as_ref().map(|p| p.limit()),
    )
}

#[test]
fn unprivileged_default_limits_and_overrides() {
    let mut c = config(Profile::Unprivileged);
    assert_eq!(
        limits(&gen(&c, &ImageMeta::default())),
        (Some((100000, 100000)), Some(512 << 20), Some(1024))
    );
    c.limits.cpus = Some(2.5);
    assert_eq!(
        limits(&gen(&c, &ImageMeta::default())),
        (Some((250000, 100000)), Some(512 << 20), Some(1024))
    );
    c.limits.memory_bytes = Some(64 << 20);
    c.limits.pids = Some(10);
    assert_eq!(
        limits(&gen(&c, &ImageMeta::default())),
        (Some((250000, 100000)), Some(64 << 20), Some(10))
    );
}

#[test]
fn unprivileged_masked_readonly_paths_and_rlimits() {
    let s = gen(&config(Profile::Unprivileged), &ImageMeta::default());
    let l = linux(&s);
    assert_eq!(
        l.masked_paths().clone().unwrap(),
        profile::MASKED_PATHS.map(String::from).to_vec()
    );
    assert_eq!(
        l.readonly_paths().clone().unwrap(),
        profile::READONLY_PATHS.map(String::from).to_vec()
    );
    let rl = process(&s).rlimits().clone().unwrap();
    assert_eq!(rl.len(), 1);
    assert_eq!(
        (rl[0].typ(), rl[0].soft(), rl[0].hard()),
        (oci_spec::runtime::PosixRlimitType::RlimitNofile, 1024, 1024)
    );
    assert_eq!(process(&s).oom_score_adj(), None);
}

#[test]
fn unprivileged_base_mounts() {
    let s = gen(&config(Profile::Unprivileged), &ImageMeta::default());
    let typ = |d: &str| mount(&s, d).unwrap().typ().clone().unwrap();
    assert_eq!(typ("/proc"), "proc");
    assert_eq!(typ("/dev"), "tmpfs");
    assert_eq!(
        opts(mount(&s, "/dev").unwrap()),
        vec!["nosuid", "strictatime", "mode=755", "size=65536k"]
    );
    assert_eq!(typ("/dev/pts"), "devpts");
    let pts = opts(mount(&s, "/dev/pts").unwrap());
    assert!(pts.contains(&"newinstance") && pts.contains(&"ptmxmode=0666"));
    assert!(pts.contains(&"mode=0620") && pts.contains(&"gid=5"));
    assert_eq!(typ("/dev/shm"), "tmpfs");
    assert_eq!(typ("/dev/mqueue"), "mqueue");
    assert_eq!(typ("/sys"), "sysfs");
    assert_eq!(
        opts(mount(&s, "/sys").unwrap()),
        vec!["nosuid", "noexec", "nodev", "ro"]
    );
    assert_eq!(typ("/sys/fs/cgroup"), "cgroup");
    assert!(opts(mount(&s, "/sys/fs/cgroup").unwrap()).contains(&"ro"));
}

#[test]
fn unprivileged_devpts_gid_only_when_mapped() {
    let mut c = config(Profile::Unprivileged);
    c.id_map = Some(IdMap {
        host_uid: 200000,
        host_gid: 200000,
        size: 5,
    });
    let s = gen(&c, &ImageMeta::default());
    assert!(!opts(mount(&s, "/dev/pts").unwrap()).contains(&"gid=5"));
    c.id_map.as_mut().unwrap().size = 6;
    let s = gen(&c, &ImageMeta::default());
    assert!(opts(mount(&s, "/dev/pts").unwrap()).contains(&"gid=5"));
}

#[test]
fn unprivileged_sys_is_a_readonly_bind_without_own_netns() {
    for network in [
        NetworkMode::Host,
        NetworkMode::Join {
            path: "/run/netns/x".into(),
        },
    ] {
        let mut c = config(Profile::Unprivileged);
        c.network = network;
        let s = gen(&c, &ImageMeta::default());
        let sys = mount(&s, "/sys").unwrap();
        assert_eq!(sys.typ().as_deref(), Some("bind"));
        assert_eq!(sys.source().as_deref(), Some(Path::new("/sys")));
        assert_eq!(opts(sys), vec!["rbind", "nosuid", "noexec", "nodev", "ro"]);
    }
}

// ---- privileged profile ----

#[test]
fn privileged_namespaces_per_network_mode() {
    use LinuxNamespaceType::*;
    let mut c = config(Profile::Privileged);
    let types = |s: &Spec| namespaces(s).into_iter().map(|n| n.0).collect::<Vec<_>>();
    assert_eq!(
        types(&gen(&c, &ImageMeta::default())),
        vec![Pid, Mount, Uts, Ipc, Network]
    );
    c.network = NetworkMode::Host;
    assert_eq!(
        types(&gen(&c, &ImageMeta::default())),
        vec![Pid, Mount, Uts, Ipc]
    );
    c.network = NetworkMode::Join {
        path: "/run/netns/x".into(),
    };
    assert_eq!(
        namespaces(&gen(&c, &ImageMeta::default())).last().unwrap(),
        &(Network, Some(PathBuf::from("/run/netns/x")))
    );
}

#[test]
fn privileged_has_no_user_namespace_mappings() {
    let s = gen(&config(Profile::Privileged), &ImageMeta::default());
    assert!(linux(&s).uid_mappings().is_none());
    assert!(linux(&s).gid_mappings().is_none());
}

#[test]
fn privileged_capabilities_are_complete() {
    let mut c = config(Profile::Privileged);
    let s = gen(&c, &ImageMeta::default());
    let all: HashSet<Capability> = capability::ALL.into_iter().collect();
    let caps = caps(&s);
    assert_eq!(caps.bounding().as_ref().unwrap(), &all);
    assert_eq!(caps.effective().as_ref().unwrap(), &all);
    assert_eq!(caps.permitted().as_ref().unwrap(), &all);
    assert!(caps.ambient().as_ref().unwrap().is_empty());
    assert_eq!(process(&s).no_new_privileges(), Some(false));
    assert!(process(&s).rlimits().is_none());
    c.capabilities.drop = vec!["SYS_MODULE".into()];
    let caps = super::tests::caps(&gen(&c, &ImageMeta::default()));
    assert!(!caps
        .bounding()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysModule));
    assert_eq!(caps.bounding().as_ref().unwrap().len(), all.len() - 1);
}

#[test]
fn capabilities_the_runtime_lacks_are_left_out_unless_added_explicitly() {
    let held: Vec<Capability> = capability::ALL
        .into_iter()
        .filter(|c| *c != Capability::SysResource && *c != Capability::SysModule)
        .collect();
    let mut c = config(Profile::Privileged);
    let mut s = gen(&c, &ImageMeta::default());
    profile::limit_to_held(&mut s, &c, &held).unwrap();
    let caps = caps(&s);
    for set in [caps.bounding(), caps.effective(), caps.permitted()] {
        let set = set.as_ref().unwrap();
        assert_eq!(set.len(), held.len());
        assert!(!set.contains(&Capability::SysResource));
    }
    // An explicit add stays (the shim then refuses it by name).
    c.capabilities.add = vec!["CAP_SYS_RESOURCE".into()];
    let mut s = gen(&c, &ImageMeta::default());
    profile::limit_to_held(&mut s, &c, &held).unwrap();
    let bounding = super::tests::caps(&s).bounding().clone().unwrap();
    assert!(bounding.contains(&Capability::SysResource));
    assert!(!bounding.contains(&Capability::SysModule));
    // A user namespace starts with a full bounding set: nothing to limit.
    let u = config(Profile::Unprivileged);
    let mut s = gen(&u, &ImageMeta::default());
    let before = super::tests::caps(&s);
    profile::limit_to_held(&mut s, &u, &[]).unwrap();
    assert_eq!(super::tests::caps(&s), before);
}

#[test]
fn privileged_devices_limits_and_paths() {
    let mut c = config(Profile::Privileged);
    let s = gen(&c, &ImageMeta::default());
    let r = linux(&s).resources().as_ref().unwrap();
    let rules: Vec<_> = r
        .devices()
        .as_ref()
        .unwrap()
        .iter()
        .map(|d| (d.allow(), d.to_string()))
        .collect();
    assert_eq!(rules, vec![(true, "a *:* rwm".to_string())]);
    assert_eq!(limits(&s), (None, None, None));
    assert!(linux(&s).masked_paths().is_none());
    assert!(linux(&s).readonly_paths().is_none());
    c.limits.memory_bytes = Some(1 << 30);
    assert_eq!(
        limits(&gen(&c, &ImageMeta::default())),
        (None, Some(1 << 30), None)
    );
    c.limits.cpus = Some(4.0);
    c.limits.pids = Some(100);
    assert_eq!(
        limits(&gen(&c, &ImageMeta::default())),
        (Some((400000, 100000)), Some(1 << 30), Some(100))
    );
}

#[test]
fn privileged_mounts() {
    for network in [NetworkMode::Private, NetworkMode::Host] {
        let mut c = config(Profile::Privileged);
        c.network = network;
        let s = gen(&c, &ImageMeta::default());
        let dev = mount(&s, "/dev").unwrap();
        assert_eq!(dev.typ().as_deref(), Some("bind"));
        assert_eq!(dev.source().as_deref(), Some(Path::new("/dev")));
        assert_eq!(opts(dev), vec!["rbind", "rprivate"]);
        let sys = mount(&s, "/sys").unwrap();
        assert_eq!(sys.typ().as_deref(), Some("sysfs"));
        assert!(!opts(sys).contains(&"ro"));
        assert!(mount(&s, "/sys/fs/cgroup").is_none());
        assert!(opts(mount(&s, "/dev/pts").unwrap()).contains(&"gid=5"));
    }
}

// ---- base spec and JSON ----

#[test]
fn base_spec_has_profile_parts_only() {
    for profile in [Profile::Unprivileged, Profile::Privileged] {
        let b = base_spec(profile, &NetworkMode::Private).unwrap();
        assert!(b.root().is_none());
        assert!(b.hostname().is_none());
        assert!(process(&b).args().is_none());
        assert!(linux(&b).cgroups_path().is_none());
        let g = gen(&config(profile), &ImageMeta::default());
        assert_eq!(linux(&b).namespaces(), linux(&g).namespaces());
        assert_eq!(linux(&b).resources(), linux(&g).resources());
        assert_eq!(b.mounts(), g.mounts());
        assert_eq!(process(&b).capabilities(), process(&g).capabilities());
    }
}

#[test]
fn json_is_stable_sorted_and_parses_back() {
    let mut c = config(Profile::Privileged);
    c.capabilities.drop = vec!["SYS_MODULE".into()];
    let a = to_json(&gen(&c, &ImageMeta::default()));
    for _ in 0..5 {
        assert_eq!(a, to_json(&gen(&c, &ImageMeta::default())));
    }
    let v: Value = serde_json::from_str(&a).unwrap();
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    let bounding: Vec<_> = v["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let mut sorted = bounding.clone();
    sorted.sort();
    assert_eq!(bounding, sorted);
    let back: Spec = serde_json::from_str(&a).unwrap();
    assert_eq!(back, gen(&c, &ImageMeta::default()));
}

#[test]
fn seccomp_default_follows_capabilities_unconfined_drops_it_custom_replaces_it() {
    use crate::seccomp::{compile, SeccompOption};
    let s = gen(&config(Profile::Unprivileged), &ImageMeta::default());
    let default = linux(&s).seccomp().clone().unwrap();
    assert!(compile(&default).is_ok());
    // Adding SYS_ADMIN opens its group (mount is then allowed).
    let mut c = config(Profile::Unprivileged);
    c.capabilities.add = vec!["SYS_ADMIN".into()];
    let with_admin = linux(&gen(&c, &ImageMeta::default()))
        .seccomp()
        .clone()
        .unwrap();
    let names = |p: &oci_spec::runtime::LinuxSeccomp| -> Vec<String> {
        p.syscalls()
            .iter()
            .flatten()
            .flat_map(|r| r.names().clone())
            .collect()
    };
    assert!(!names(&default).contains(&"mount".to_string()));
    assert!(names(&with_admin).contains(&"mount".to_string()));

    let mut c = config(Profile::Unprivileged);
    c.seccomp = SeccompOption::Unconfined;
    assert!(linux(&gen(&c, &ImageMeta::default())).seccomp().is_none());

    let custom: SeccompOption =
        serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_LOG"}"#).unwrap();
    let mut c = config(Profile::Privileged);
    c.seccomp = custom.clone();
    let s = gen(&c, &ImageMeta::default());
    assert_eq!(
        SeccompOption::Custom(Box::new(linux(&s).seccomp().clone().unwrap())),
        custom
    );
}

#[test]
fn a_custom_seccomp_profile_that_cannot_compile_is_refused() {
    let mut c = config(Profile::Unprivileged);
    c.seccomp = serde_json::from_str(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    )
    .unwrap();
    let e = gen_err(&c, &ImageMeta::default()).to_string();
    assert!(e.contains("SCMP_ACT_NOTIFY"), "{e}");
}
