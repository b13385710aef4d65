//! End-to-end: Linux fields of config.json applied (looked at from inside the
//! container with the probe or busybox) or refused by name on this host
//! (no AppArmor, no SELinux, no resctrl). See docs/spec-fields.md.
//! Run as root after `scripts/build-static.sh`.

mod shim_support;

use serde_json::{json, Value};
use shim_support::*;
use zctr_tests::Error;

/// `zctr-probe report --read P...`.
fn reading(paths: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec![PROBE, "report"];
    for p in paths {
        args.push("--read");
        args.push(p);
    }
    args
}

/// The content the probe read at `path`.
fn read_of(report: &Value, path: &str) -> String {
    let c = check(report, "read", path);
    c["content"]
        .as_str()
        .unwrap_or_else(|| panic!("{path} not read: {c}"))
        .to_string()
}

/// Value of `Key:` in /proc/self/status text.
fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .trim()
        .to_string()
}

/// A fixture with busybox in its rootfs, or None (skip) without a static busybox.
fn with_busybox(c: Ctr) -> Option<Ctr> {
    match c.rootfs.with_busybox() {
        Ok(()) => Some(c),
        Err(Error::BusyboxUnavailable(why)) => {
            zctr_tests::skip::skip(why);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn has_ns(spec: &Value, ns: &str) -> bool {
    spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == ns && n.get("path").is_none())
}

#[test]
fn process_fields_are_applied() {
    if !root_or_skip("process_fields_are_applied") {
        return;
    }
    let mut c = Ctr::unprivileged(&reading(&[
        "/proc/self/status",
        "/proc/self/oom_score_adj",
        "/proc/self/personality",
        "/proc/self/stat",
        "/proc/self/numa_maps",
        "/proc/sys/kernel/domainname",
        "/proc/sys/net/ipv4/ip_unprivileged_port_start",
    ]));
    assert!(has_ns(&c.spec, "uts") && has_ns(&c.spec, "network"));
    let p = &mut c.spec["process"];
    p["user"]["umask"] = json!(0o027);
    p["user"]["additionalGids"] = json!([5, 7]);
    p["oomScoreAdj"] = json!(123);
    p["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
    // Not observable from /proc: applied without an error at least.
    p["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6});
    let last_cpu = std::thread::available_parallelism().map_or(0, |n| n.get() - 1);
    p["execCPUAffinity"] = json!({"initial": "0", "final": last_cpu.to_string()});
    c.spec["linux"]["personality"] = json!({"domain": "LINUX32"});
    c.spec["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    c.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "1234"});
    c.spec["domainname"] = json!("zctr.example");
    let r = c.report();
    let status = read_of(&r, "/proc/self/status");
    assert_eq!(status_field(&status, "Umask"), "0027");
    assert_eq!(status_field(&status, "Groups"), "5 7");
    assert_eq!(
        status_field(&status, "Cpus_allowed_list"),
        last_cpu.to_string()
    );
    assert_eq!(read_of(&r, "/proc/self/oom_score_adj").trim(), "123");
    assert_eq!(read_of(&r, "/proc/self/personality").trim(), "00000008");
    // The task's policy shows on the mappings without one of their own.
    let numa = read_of(&r, "/proc/self/numa_maps");
    assert!(
        numa.lines().next().is_some_and(|l| l.contains(" bind:0 ")),
        "{numa}"
    );
    assert_eq!(
        read_of(&r, "/proc/sys/kernel/domainname").trim(),
        "zctr.example"
    );
    assert_eq!(
        read_of(&r, "/proc/sys/net/ipv4/ip_unprivileged_port_start").trim(),
        "1234"
    );
    // /proc/self/stat: field 19 is nice, field 41 the policy (3: SCHED_BATCH).
    let stat = read_of(&r, "/proc/self/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    assert_eq!((fields[19 - 3], fields[41 - 3]), ("7", "3"), "{stat}");
}

#[test]
fn the_default_umask_is_0022() {
    if !root_or_skip("the_default_umask_is_0022") {
        return;
    }
    let c = Ctr::unprivileged(&reading(&["/proc/self/status"]));
    let r = c.report();
    assert_eq!(
        status_field(&read_of(&r, "/proc/self/status"), "Umask"),
        "0022"
    );
}

#[test]
fn time_offsets_apply_in_a_new_time_namespace() {
    if !root_or_skip("time_offsets_apply_in_a_new_time_namespace") {
        return;
    }
    const DAYS_10: u64 = 10 * 86400;
    let mut c = Ctr::unprivileged(&reading(&["/proc/uptime"]));
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    c.spec["linux"]["timeOffsets"] = json!({"boottime": {"secs": DAYS_10}});
    let r = c.report();
    let up: f64 = read_of(&r, "/proc/uptime")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let host: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        up >= DAYS_10 as f64 && up - DAYS_10 as f64 <= host + 1.0,
        "uptime inside {up}, host {host}"
    );
    // Without a new time namespace: refused by name.
    let mut c = Ctr::unprivileged(&[]);
    c.spec["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1}});
    let out = c.run();
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("linux.timeOffsets: needs a new time namespace"),
        "{err}"
    );
}

/// The propagation of the container's `/` in its own mountinfo.
fn root_propagation(r: &Value) -> String {
    let mi = read_of(r, "/proc/self/mountinfo");
    let line = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / in {mi}"));
    // Optional fields sit between the mount options (6th) and "-".
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields.iter().position(|f| *f == "-").unwrap();
    fields[6..dash].join(" ")
}

#[test]
fn every_rootfs_propagation_is_applied() {
    if !root_or_skip("every_rootfs_propagation_is_applied") {
        return;
    }
    for (kind, want) in [
        ("private", ""),
        ("rprivate", ""),
        ("slave", "master:"),
        ("rslave", "master:"),
        ("shared", "shared:"),
        ("rshared", "shared:"),
        ("unbindable", "unbindable"),
        ("runbindable", "unbindable"),
    ] {
        let mut c = Ctr::unprivileged(&reading(&["/proc/self/mountinfo"]));
        // The root a bind of the host's directory, itself a shared mount
        // here (this host's / is private: nothing to be a slave of). An
        // overlay root would be a new mount with no master to follow.
        c.overlay = None;
        let root = c.rootfs.path().to_path_buf();
        for args in [&["--bind"][..], &["--make-shared"][..]] {
            let out = std::process::Command::new("mount")
                .args(args)
                .args(if args[0] == "--bind" {
                    vec![&root, &root]
                } else {
                    vec![&root]
                })
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", zctr_tests::describe(&out));
        }
        c.spec["linux"]["rootfsPropagation"] = json!(kind);
        let out = c.run();
        assert!(
            out.status.success(),
            "{kind}: {}",
            zctr_tests::describe(&out)
        );
        let r = parse_report(&out.stdout).unwrap();
        let got = root_propagation(&r);
        if want.is_empty() {
            assert_eq!(got, "", "{kind}");
        } else {
            assert!(got.starts_with(want), "{kind}: {got:?}");
        }
    }
}

#[test]
fn device_nodes_get_their_exact_mode_and_owner() {
    if !root_or_skip("device_nodes_get_their_exact_mode_and_owner") {
        return;
    }
    // Privileged (no user namespace): the node is made with mknod.
    let c = Ctr::new(
        common::config::Profile::Privileged,
        common::config::NetworkMode::Private,
        &[],
    );
    let Some(mut c) = with_busybox(c) else { return };
    c.set_args(&["sh", "-c", "ls -ln /dev/zctr-null /dev/zctr-fifo"]);
    // The privileged profile binds the host's /dev: a tmpfs /dev instead.
    for m in c.spec["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/dev" {
            *m = json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                        "options": ["nosuid", "mode=755", "size=64k"]});
        }
    }
    c.spec["linux"]["devices"] = json!([
        {"path": "/dev/zctr-null", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o660, "uid": 1000, "gid": 1001},
        {"path": "/dev/zctr-fifo", "type": "p", "major": 0, "minor": 0,
         "fileMode": 0o751, "uid": 5, "gid": 6}
    ]);
    let out = c.run();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    let line = |name: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let null = line("/dev/zctr-null");
    assert_eq!(
        (&null[0][..], &null[2][..], &null[3][..]),
        ("crw-rw----", "1000", "1001")
    );
    let fifo = line("/dev/zctr-fifo");
    assert_eq!(
        (&fifo[0][..], &fifo[2][..], &fifo[3][..]),
        ("prwxr-x--x", "5", "6")
    );
}

/// A change to a config.
type Edit = fn(&mut Value);

#[test]
fn fields_this_host_cannot_apply_are_refused_by_name() {
    if !root_or_skip("fields_this_host_cannot_apply_are_refused_by_name") {
        return;
    }
    // The LSM rows depend on the host: refused where the module is off (this
    // development host), applied where it is on (the Debian kernel of the
    // cgroup v2 VM enables AppArmor): a profile that does not exist then
    // fails the container's exec, naming AppArmor, instead of being ignored.
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.starts_with('Y'));
    let selinux = std::path::Path::new("/sys/fs/selinux/enforce").exists();
    if apparmor {
        let mut c = Ctr::unprivileged(&[]);
        c.spec["process"]["apparmorProfile"] = json!("zctr-test-no-such-profile");
        let out = c.run();
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        assert!(
            !out.status.success(),
            "an unknown AppArmor profile was ignored"
        );
        assert!(err.contains("apparmor"), "{err}");
    }
    let cases: [(&str, Edit); 8] = [
        (
            "process.apparmorProfile: AppArmor is not enabled on this host",
            |s| s["process"]["apparmorProfile"] = json!("zctr-test"),
        ),
        (
            "process.selinuxLabel: SELinux is not enabled on this host",
            |s| s["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"),
        ),
        (
            "linux.mountLabel: SELinux is not enabled on this host",
            |s| s["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0"),
        ),
        ("linux.intelRdt: ", |s| {
            s["linux"]["intelRdt"] = json!({"closID": "zctr"})
        }),
        ("linux.netDevices: ", |s| {
            s["linux"]["netDevices"] = json!({"lo": {"name": "lo2"}})
        }),
        ("process.terminal: ", |s| {
            s["process"]["terminal"] = json!(true)
        }),
        (
            "linux.devices: device nodes are made only in a /dev the runtime fills",
            |s| {
                for m in s["mounts"].as_array_mut().unwrap() {
                    if m["destination"] == "/dev" {
                        *m = json!({"destination": "/dev", "type": "bind", "source": "/dev",
                                    "options": ["rbind"]});
                    }
                }
                s["linux"]["devices"] =
                    json!([{"path": "/dev/zz", "type": "c", "major": 1, "minor": 3}]);
            },
        ),
        ("linux.personality.flags: ", |s| {
            s["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["X"]})
        }),
    ];
    for (want, edit) in cases {
        if (want.starts_with("process.apparmorProfile") && apparmor)
            || (want.contains("SELinux") && selinux)
        {
            continue;
        }
        let mut c = Ctr::unprivileged(&[]);
        edit(&mut c.spec);
        let out = c.run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{want}\n{}",
            zctr_tests::describe(&out)
        );
        assert!(err.contains(want), "wanted {want:?}: {err}");
        assert!(c.no_processes());
    }
}

#[test]
fn a_runc_spec_config_runs_unmodified() {
    if !root_or_skip("a_runc_spec_config_runs_unmodified") {
        return;
    }
    let Ok(runc) = which("runc") else {
        zctr_tests::skip::skip("runc is not installed");
        return;
    };
    let Some(c) = with_busybox(Ctr::unprivileged(&[])) else {
        return;
    };
    // `runc spec` writes config.json in the current directory.
    let out = std::process::Command::new(runc)
        .arg("spec")
        .current_dir(&c.bundle)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    let text = std::fs::read_to_string(c.bundle.join("config.json")).unwrap();
    let mut spec: Value = serde_json::from_str(&text).unwrap();
    // Its ambient set is not in its inheritable set: runc leaves those out.
    assert!(spec["process"]["capabilities"]["ambient"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    spec["root"]["path"] = json!(c.rootfs.path());
    spec["process"]["terminal"] = json!(false);
    spec["process"]["args"] = json!(["sh", "-c", "echo from-runc-spec"]);
    std::fs::write(
        c.bundle.join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let out = zctr_tests::run_cmd(
        std::process::Command::new(&c.shim_bin)
            .arg("run")
            .arg("--bundle")
            .arg(&c.bundle)
            .arg("--id")
            .arg(&c.id),
        T,
    )
    .unwrap();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-runc-spec\n");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn ambient_capabilities_are_raised_where_the_kernel_allows_it() {
    if !root_or_skip("ambient_capabilities_are_raised_where_the_kernel_allows_it") {
        return;
    }
    let mut c = Ctr::unprivileged(&[]);
    // CAP_KILL can be ambient (permitted and inheritable); CAP_CHOWN is not
    // inheritable: left out, as runc does, not an error.
    c.spec["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_CHOWN"],
        "effective": ["CAP_KILL", "CAP_CHOWN"],
        "permitted": ["CAP_KILL", "CAP_CHOWN"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL", "CAP_CHOWN"],
    });
    c.spec["process"]["user"]["uid"] = json!(1000);
    let r = c.report();
    assert_eq!(caps(&r, "ambient"), ["CAP_KILL"]);
    // A non-root user keeps what is ambient across exec.
    assert_eq!(caps(&r, "effective"), ["CAP_KILL"]);
}
