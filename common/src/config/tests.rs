use super::*;
use serde_json::json;

fn base() -> ContainerConfig {
    ContainerConfig::new("/var/lib/zctr/c/rootfs")
}

/// Asserts that `c` fails validation at `field` and returns the reason.
fn fails(c: &ContainerConfig, field: &str) -> Violation {
    match c.validate() {
        Err(ConfigError::Invalid { field: f, reason }) => {
            assert_eq!(f, field, "reason: {reason}");
            reason
        }
        other => panic!("expected an error at {field}, got {other:?}"),
    }
}

#[test]
fn minimal_config_is_valid() {
    base().validate().unwrap();
    let c = ContainerConfig::from_json(r#"{"rootfs": "/r"}"#).unwrap();
    assert_eq!(c, ContainerConfig::new("/r"));
}

#[test]
fn full_config_parses_and_is_valid() {
    let v = json!({
        "rootfs": "/var/lib/zctr/web/rootfs",
        "meta": "/var/lib/zctr/web/meta.json",
        "volumes": [{"destination": "/data", "source": "/srv/web", "readonly": true}],
        "env": {"MODE": "prod"},
        "args": ["/bin/web", "--port", "80"],
        "profile": "unprivileged",
        "hostname": "web.example",
        "network": {"mode": "join", "path": "/run/netns/web"},
        "limits": {"cpus": 0.5, "memory_bytes": 268435456u64, "pids": 256},
        "mounts": [{"destination": "/tmp", "kind": "tmpfs", "options": ["size=64m"]},
                   {"destination": "/etc/x", "kind": "bind", "source": "/etc/x", "readonly": true}],
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["CAP_MKNOD"]},
        "id_map": {"host_uid": 200000, "host_gid": 300000, "size": 1000},
        "cwd": "/srv",
        "user": "1000:1000",
        "init": true
    });
    let c = ContainerConfig::from_json(&v.to_string()).unwrap();
    assert!(c.init);
    assert_eq!(
        c.network,
        NetworkMode::Join {
            path: "/run/netns/web".into()
        }
    );
    assert_eq!(c.user_ids().unwrap(), Some((1000, 1000)));
    assert_eq!(c.effective_id_map().unwrap().host_gid, 300000);
    // Round trip.
    let again: ContainerConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
    assert_eq!(again, c);
}

#[test]
fn init_is_off_by_default_and_left_out_of_the_json_when_off() {
    assert!(!base().init);
    let text = serde_json::to_string(&base()).unwrap();
    assert!(!text.contains("init"), "{text}");
    let mut c = base();
    c.init = true;
    assert!(serde_json::to_string(&c)
        .unwrap()
        .contains(r#""init":true"#));
    assert!(ContainerConfig::from_json(r#"{"rootfs": "/r", "init": "yes"}"#).is_err());
}

#[test]
fn serde_rejects_unknown_fields_everywhere() {
    for bad in [
        json!({"rootfs": "/r", "nope": 1}),
        json!({"rootfs": "/r", "volumes": [{"destination": "/d", "source": "/s", "x": 1}]}),
        json!({"rootfs": "/r", "limits": {"cpu": 1}}),
        json!({"rootfs": "/r", "network": {"mode": "host", "ns": "/x"}}),
        json!({"rootfs": "/r", "capabilities": {"keep": []}}),
        json!({"rootfs": "/r", "id_map": {"host_uid": 1, "host_gid": 1, "size": 1, "a": 1}}),
        json!({"rootfs": "/r", "mounts": [{"destination": "/d", "kind": "tmpfs", "z": 1}]}),
    ] {
        let err = ContainerConfig::from_json(&bad.to_string()).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{bad}: {err}");
    }
}

#[test]
fn serde_enums() {
    let c = ContainerConfig::from_json(
        r#"{"rootfs": "/r", "profile": "privileged", "network": {"mode": "host"}}"#,
    )
    .unwrap();
    assert_eq!(c.profile, Profile::Privileged);
    assert_eq!(c.network, NetworkMode::Host);
    assert!(ContainerConfig::from_json(r#"{"rootfs": "/r", "profile": "root"}"#).is_err());
    assert!(ContainerConfig::from_json(r#"{"rootfs":"/r","network":{"mode":"bridge"}}"#).is_err());
    for (bad, why) in [
        (json!({"mode": "join"}), "required with mode"),
        (
            json!({"mode": "host", "path": "/x"}),
            "only allowed with mode",
        ),
        (
            json!({"mode": "private", "path": "/x"}),
            "only allowed with mode",
        ),
    ] {
        let c = json!({"rootfs": "/r", "network": bad}).to_string();
        let err = ContainerConfig::from_json(&c).unwrap_err().to_string();
        assert!(err.contains("network.path") && err.contains(why), "{err}");
    }
    assert_eq!(
        serde_json::to_value(NetworkMode::Join {
            path: "/run/netns/x".into()
        })
        .unwrap(),
        json!({"mode": "join", "path": "/run/netns/x"})
    );
    assert_eq!(
        serde_json::to_value(NetworkMode::Host).unwrap(),
        json!({"mode": "host"})
    );
    assert_eq!(
        serde_json::to_value(NetworkMode::Private).unwrap(),
        json!({"mode": "private"})
    );
    assert!(ContainerConfig::from_json("{}")
        .unwrap_err()
        .to_string()
        .contains("rootfs"));
}

#[test]
fn rootfs_must_be_absolute() {
    let mut c = base();
    c.rootfs = "rootfs".into();
    assert!(matches!(fails(&c, "rootfs"), Violation::NotAbsolute { .. }));
    c.rootfs = "/a/../b".into();
    assert!(matches!(fails(&c, "rootfs"), Violation::DotDot { .. }));
    c.rootfs = "".into();
    assert_eq!(fails(&c, "rootfs"), Violation::Empty);
}

#[test]
fn meta_path_must_be_absolute() {
    let mut c = base();
    c.meta = Some("meta.json".into());
    assert!(matches!(fails(&c, "meta"), Violation::NotAbsolute { .. }));
}

#[test]
fn volume_rules() {
    let mut c = base();
    c.volumes = vec![
        Volume::new("/a", "/srv/a", false),
        Volume::new("/b", "/srv/b", true),
        Volume::new("b", "/srv/c", false),
    ];
    assert!(matches!(
        fails(&c, "volumes[2].destination"),
        Violation::NotAbsolute { .. }
    ));
    c.volumes[2].destination = "/c/../d".into();
    assert!(matches!(
        fails(&c, "volumes[2].destination"),
        Violation::DotDot { .. }
    ));
    c.volumes[2].destination = "/c//d/".into();
    assert_eq!(
        fails(&c, "volumes[2].destination"),
        Violation::NotNormalized {
            path: "/c//d/".into(),
            normalized: "/c/d".into()
        }
    );
    c.volumes[2].destination = "/".into();
    assert_eq!(fails(&c, "volumes[2].destination"), Violation::IsRoot);
    c.volumes[2].destination = "/b".into();
    assert!(matches!(
        fails(&c, "volumes[2].destination"),
        Violation::Duplicate { .. }
    ));
    c.volumes[2].destination = "/proc/sys".into();
    assert!(matches!(
        fails(&c, "volumes[2].destination"),
        Violation::NotAllowed { .. }
    ));
    c.volumes[2].destination = "/dev/shm".into();
    assert!(matches!(
        fails(&c, "volumes[2].destination"),
        Violation::NotAllowed { .. }
    ));
    c.volumes[2].destination = "/c".into();
    c.volumes[2].source = "srv/c".into();
    assert!(matches!(
        fails(&c, "volumes[2].source"),
        Violation::NotAbsolute { .. }
    ));
    c.volumes[2].source = "/srv/c".into();
    c.validate().unwrap();
}

#[test]
fn error_message_names_field_and_reason() {
    let mut c = base();
    c.volumes = vec![Volume::new("data", "/srv", false)];
    let msg = c.validate().unwrap_err().to_string();
    assert_eq!(
        msg,
        "volumes[0].destination: must be an absolute path, got \"data\""
    );
}

#[test]
fn env_rules() {
    let mut c = base();
    c.env.insert("".into(), "x".into());
    assert_eq!(fails(&c, "env[\"\"]"), Violation::Empty);
    c.env.clear();
    c.env.insert("A=B".into(), "x".into());
    assert_eq!(fails(&c, "env[\"A=B\"]"), Violation::ContainsEquals);
    c.env.clear();
    c.env.insert("A\0".into(), "x".into());
    assert_eq!(fails(&c, "env[\"A\\0\"]"), Violation::Nul);
    c.env.clear();
    c.env.insert("A".into(), "x\0".into());
    assert_eq!(fails(&c, "env[\"A\"]"), Violation::Nul);
    c.env.clear();
    c.env.insert("A".into(), "".into());
    c.validate().unwrap();
}

#[test]
fn args_rules() {
    let mut c = base();
    c.args = Some(vec![]);
    assert!(matches!(fails(&c, "args"), Violation::Missing { .. }));
    c.args = Some(vec!["".into()]);
    assert_eq!(fails(&c, "args[0]"), Violation::Empty);
    c.args = Some(vec!["/bin/sh".into(), "a\0".into()]);
    assert_eq!(fails(&c, "args[1]"), Violation::Nul);
    c.args = Some(vec!["/bin/sh".into(), "".into()]);
    c.validate().unwrap();
}

#[test]
fn hostname_rules() {
    let mut c = base();
    for good in ["a", "web-1", "a.b.c", "A0", &"a".repeat(63)] {
        c.hostname = Some(good.into());
        c.validate().unwrap();
    }
    c.hostname = Some("".into());
    assert_eq!(fails(&c, "hostname"), Violation::Empty);
    c.hostname = Some(format!("{}.{}", "a".repeat(40), "b".repeat(30)));
    assert!(matches!(fails(&c, "hostname"), Violation::TooLong { .. }));
    for bad in [
        "-a",
        "a-",
        "a_b",
        "a..b",
        ".a",
        "a.",
        "a b",
        &"a".repeat(64),
    ] {
        c.hostname = Some(bad.into());
        assert!(
            matches!(fails(&c, "hostname"), Violation::Format { .. }),
            "{bad}"
        );
    }
}

#[test]
fn network_join_path_must_be_absolute() {
    let mut c = base();
    c.network = NetworkMode::Join {
        path: "netns/x".into(),
    };
    assert!(matches!(
        fails(&c, "network.path"),
        Violation::NotAbsolute { .. }
    ));
}

#[test]
fn cpu_limits() {
    let mut c = base();
    for good in [0.01, 0.5, 1.0, 1024.0] {
        c.limits.cpus = Some(good);
        c.validate().unwrap();
    }
    for bad in [0.0, -1.0, 0.001, 1024.5, f64::NAN, f64::INFINITY] {
        c.limits.cpus = Some(bad);
        assert!(matches!(
            fails(&c, "limits.cpus"),
            Violation::OutOfRange { .. }
        ));
    }
    assert_eq!(cpu_quota(1.0), 100_000);
    assert_eq!(cpu_quota(0.5), 50_000);
    assert_eq!(cpu_quota(0.01), 1_000);
    assert_eq!(cpu_quota(2.333333), 233_333);
}

#[test]
fn memory_limits() {
    let mut c = base();
    for good in [MIN_MEMORY, 512 << 20, MAX_MEMORY] {
        c.limits.memory_bytes = Some(good);
        c.validate().unwrap();
    }
    for bad in [0, MIN_MEMORY - 1, MAX_MEMORY + 1] {
        c.limits.memory_bytes = Some(bad);
        assert!(matches!(
            fails(&c, "limits.memory_bytes"),
            Violation::OutOfRange { .. }
        ));
    }
}

#[test]
fn pids_limits() {
    let mut c = base();
    for good in [1, 1024, MAX_PIDS] {
        c.limits.pids = Some(good);
        c.validate().unwrap();
    }
    for bad in [0, -1, MAX_PIDS + 1] {
        c.limits.pids = Some(bad);
        assert!(matches!(
            fails(&c, "limits.pids"),
            Violation::OutOfRange { .. }
        ));
    }
}

#[test]
fn extra_mount_rules() {
    let tmpfs = ExtraMount {
        destination: "/tmp".into(),
        source: None,
        kind: MountKind::Tmpfs,
        readonly: false,
        options: vec!["size=64m".into()],
    };
    let bind = ExtraMount {
        destination: "/etc/resolv.conf".into(),
        source: Some("/etc/resolv.conf".into()),
        kind: MountKind::Bind,
        readonly: true,
        options: vec![],
    };
    let mut c = base();
    c.mounts = vec![tmpfs.clone(), bind.clone()];
    c.validate().unwrap();

    c.mounts[0].source = Some("/x".into());
    assert!(matches!(
        fails(&c, "mounts[0].source"),
        Violation::NotAllowed { .. }
    ));
    c.mounts[0] = tmpfs.clone();
    c.mounts[1].source = None;
    assert!(matches!(
        fails(&c, "mounts[1].source"),
        Violation::Missing { .. }
    ));
    c.mounts[1].source = Some("etc".into());
    assert!(matches!(
        fails(&c, "mounts[1].source"),
        Violation::NotAbsolute { .. }
    ));
    c.mounts[1] = bind.clone();
    c.mounts[1].destination = "tmp".into();
    assert!(matches!(
        fails(&c, "mounts[1].destination"),
        Violation::NotAbsolute { .. }
    ));
    c.mounts[1].destination = "/tmp".into();
    assert!(matches!(
        fails(&c, "mounts[1].destination"),
        Violation::Duplicate { .. }
    ));
    c.mounts[1] = bind;
    c.mounts[0].options = vec!["size=1m".into(), "ro,nosuid".into()];
    assert!(matches!(
        fails(&c, "mounts[0].options[1]"),
        Violation::Format { .. }
    ));
    c.mounts[0].options = vec!["".into()];
    assert_eq!(fails(&c, "mounts[0].options[0]"), Violation::Empty);
}

#[test]
fn volume_and_mount_destinations_must_differ() {
    let mut c = base();
    c.volumes = vec![Volume::new("/data", "/srv", false)];
    c.mounts = vec![ExtraMount {
        destination: "/data".into(),
        source: None,
        kind: MountKind::Tmpfs,
        readonly: false,
        options: vec![],
    }];
    assert!(matches!(
        fails(&c, "mounts[0].destination"),
        Violation::Duplicate { .. }
    ));
}

#[test]
fn capability_rules() {
    let mut c = base();
    c.capabilities.add = vec!["CAP_NET_ADMIN".into(), "sys_time".into()];
    c.capabilities.drop = vec!["MKNOD".into()];
    c.validate().unwrap();
    let (add, drop) = c.capabilities.resolve().unwrap();
    assert_eq!(add, vec![Capability::NetAdmin, Capability::SysTime]);
    assert_eq!(drop, vec![Capability::Mknod]);

    c.capabilities.add.push("CAP_FLY".into());
    assert_eq!(
        fails(&c, "capabilities.add[2]"),
        Violation::UnknownCapability {
            name: "CAP_FLY".into()
        }
    );
    c.capabilities.add.pop();
    c.capabilities.drop.push("ALL".into());
    assert!(matches!(
        fails(&c, "capabilities.drop[1]"),
        Violation::UnknownCapability { .. }
    ));
    c.capabilities.drop = vec!["CAP_SYS_TIME".into()];
    assert_eq!(
        fails(&c, "capabilities.drop[0]"),
        Violation::AddedAndDropped {
            name: "CAP_SYS_TIME".into()
        }
    );
}

#[test]
fn id_map_rules() {
    let mut c = base();
    assert_eq!(c.effective_id_map(), Some(IdMap::default()));
    assert_eq!(
        IdMap::default(),
        IdMap {
            host_uid: 100000,
            host_gid: 100000,
            size: 65536
        }
    );
    c.id_map = Some(IdMap {
        host_uid: 0,
        host_gid: 100000,
        size: 10,
    });
    assert!(matches!(
        fails(&c, "id_map.host_uid"),
        Violation::NotAllowed { .. }
    ));
    c.id_map = Some(IdMap {
        host_uid: 100000,
        host_gid: 0,
        size: 10,
    });
    assert!(matches!(
        fails(&c, "id_map.host_gid"),
        Violation::NotAllowed { .. }
    ));
    c.id_map = Some(IdMap {
        host_uid: 100000,
        host_gid: 100000,
        size: 0,
    });
    assert!(matches!(
        fails(&c, "id_map.size"),
        Violation::OutOfRange { .. }
    ));
    c.id_map = Some(IdMap {
        host_uid: u32::MAX - 10,
        host_gid: 100000,
        size: 11,
    });
    assert!(matches!(
        fails(&c, "id_map.host_uid"),
        Violation::OutOfRange { .. }
    ));
    c.id_map = Some(IdMap {
        host_uid: u32::MAX - 10,
        host_gid: 100000,
        size: 10,
    });
    c.validate().unwrap();

    c.profile = Profile::Privileged;
    assert!(matches!(fails(&c, "id_map"), Violation::NotAllowed { .. }));
    c.id_map = None;
    c.validate().unwrap();
    assert_eq!(c.effective_id_map(), None);
}

#[test]
fn cwd_and_user_rules() {
    let mut c = base();
    c.cwd = Some("srv".into());
    assert!(matches!(fails(&c, "cwd"), Violation::NotAbsolute { .. }));
    c.cwd = Some("/srv/".into());
    assert!(matches!(fails(&c, "cwd"), Violation::NotNormalized { .. }));
    c.cwd = Some("/".into());
    c.user = Some("nobody".into());
    assert!(matches!(fails(&c, "user"), Violation::Format { .. }));
    c.user = Some("65534".into());
    c.validate().unwrap();
    assert_eq!(c.user_ids().unwrap(), Some((65534, 65534)));
}

#[test]
fn a_notifying_profile_with_its_agent_socket_is_valid() {
    let rule = json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]);
    let mut c = base();
    c.seccomp = serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock", "listenerMetadata": "m", "syscalls": rule}))
    .unwrap();
    c.validate().unwrap();
    c.seccomp =
        serde_json::from_value(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rule}))
            .unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("needs listenerPath"), "{e}");
}

#[test]
fn a_console_size_needs_a_tty_and_a_real_size() {
    let mut c = base();
    c.console_size = Some([24, 80]);
    fails(&c, "console_size");
    c.tty = true;
    c.validate().unwrap();
    c.console_size = Some([0, 80]);
    fails(&c, "console_size");
    let parsed: ContainerConfig = serde_json::from_value(json!({
        "rootfs": "/r", "tty": true, "console_size": [40, 120], "stdin": true
    }))
    .unwrap();
    assert!(parsed.tty && parsed.stdin);
    assert_eq!(parsed.console_size, Some([40, 120]));
    // Absent fields stay absent in the JSON written back.
    let text = serde_json::to_string(&base()).unwrap();
    assert!(!text.contains("tty") && !text.contains("stdin"), "{text}");
}
