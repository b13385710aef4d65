//! End-to-end: both profiles of `common::spec::generate`, run by
//! `zctr-shim run` with the probe, checked from inside the container, with a
//! private network, host networking and a joined network namespace.
//! Run as root after `scripts/build-static.sh`.

mod shim_support;

use common::config::{NetworkMode, Profile};
use serde_json::Value;
use shim_support::*;

const UNPRIVILEGED_CAPS: [&str; 14] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Memory limit the test puts on the container's cgroup (the manager's job normally).
const MEMORY_LIMIT: u64 = 96 * 1024 * 1024;

/// Probe arguments shared by every profile test.
fn probe_args() -> Vec<&'static str> {
    vec![
        PROBE,
        "report",
        "--read",
        "/proc/kcore",
        "--read",
        "/proc/keys",
        "--open",
        "/dev/sda",
        "--open",
        "/dev/vda",
        "--open",
        "/dev/kmsg",
        "--open",
        "/dev/mem",
        "--open",
        "/dev/null",
        "--open",
        "/dev/zero",
        "--open",
        "/dev/urandom",
        "--open",
        "/dev/tty",
        "--write",
        "/written-by-probe",
        "--read",
        "/etc/hostname",
        "--open",
        "/root",
    ]
}

fn spec_caps(spec: &Value, set: &str) -> Vec<String> {
    let mut v: Vec<String> = spec["process"]["capabilities"][set]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// The limit goes into the config (zctr-shim by hand applies
/// `linux.resources` itself) and, as the manager would, on the cgroup.
fn set_memory_limit(c: &mut Ctr) -> Option<String> {
    if c.spec["linux"]["resources"].is_object() {
        c.spec["linux"]["resources"]["memory"] = serde_json::json!({ "limit": MEMORY_LIMIT });
    }
    if c.cg.v1_dir("memory").is_some() {
        c.cg.write("memory", "memory.limit_in_bytes", &MEMORY_LIMIT.to_string())
            .unwrap();
        Some("memory.limit_in_bytes".into())
    } else if c.cg.v2_dir().is_some() && c.cg.v2_dir().unwrap().join("memory.max").exists() {
        c.cg.write("", "memory.max", &MEMORY_LIMIT.to_string())
            .unwrap();
        Some("memory.max".into())
    } else {
        None
    }
}

enum Net {
    Private,
    Host,
    Join,
}

/// Checks only for the unprivileged profile (a privileged container could
/// really change the host there).
fn unprivileged_args() -> Vec<&'static str> {
    vec![
        "--write",
        "/proc/sys/kernel/hostname",
        "--write",
        "/proc/sys/kernel/shmmax",
        "--write",
        "/sys/kernel/zctr-probe",
    ]
}

fn run_profile(profile: Profile, net: Net) {
    let netns = matches!(net, Net::Join).then(NetNs::new);
    let network = match (&net, &netns) {
        (Net::Private, _) => NetworkMode::Private,
        (Net::Host, _) => NetworkMode::Host,
        (Net::Join, Some(ns)) => NetworkMode::Join {
            path: ns.path.clone(),
        },
        (Net::Join, None) => unreachable!(),
    };
    let unpriv = profile == Profile::Unprivileged;
    let mut args = probe_args();
    if unpriv {
        args.extend(unprivileged_args());
    }
    let mut c = Ctr::new(profile, network, &args);
    // Environment, cwd and extra args from the config.
    c.spec["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push("ZCTR_E2E=hello world".into());
    c.spec["process"]["cwd"] = "/home/user".into();
    c.spec["hostname"] = "e2e-host".into();
    let limit_file = set_memory_limit(&mut c);
    if !unpriv {
        // The privileged profile mounts no cgroupfs; ask for one, as an image may.
        c.spec["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "ro"]
            }));
    }

    let r = c.report();
    let ctx = format!("report: {r}");

    // Namespaces.
    for ns in ["pid", "mnt", "uts", "ipc"] {
        assert_ne!(r["namespaces"][ns], host_ns(ns), "{ns} shared; {ctx}");
    }
    if unpriv {
        assert_ne!(r["namespaces"]["user"], host_ns("user"), "{ctx}");
        assert_ne!(r["namespaces"]["cgroup"], host_ns("cgroup"), "{ctx}");
    } else {
        assert_eq!(r["namespaces"]["user"], host_ns("user"), "{ctx}");
    }
    match net {
        Net::Private => {
            assert_ne!(r["namespaces"]["net"], host_ns("net"), "{ctx}");
            assert_eq!(
                r["net"],
                serde_json::json!([{"name": "lo", "up": true}]),
                "{ctx}"
            );
        }
        Net::Host => assert_eq!(r["namespaces"]["net"], host_ns("net"), "{ctx}"),
        Net::Join => {
            let ns = netns.as_ref().unwrap();
            assert_eq!(r["namespaces"]["net"], ns.link(), "{ctx}");
            assert_ne!(r["namespaces"]["net"], host_ns("net"), "{ctx}");
        }
    }
    assert_eq!(r["pid"], 1, "{ctx}");
    assert_eq!(r["hostname"], "e2e-host", "{ctx}");

    // Identity.
    assert_eq!(r["uid"]["effective"], 0, "{ctx}");
    assert_eq!(r["gid"]["effective"], 0, "{ctx}");
    let uid_map = r["uid_map"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    if unpriv {
        assert_eq!(uid_map, ["0", "100000", "65536"], "{ctx}");
        let gid_map = r["gid_map"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>();
        assert_eq!(gid_map, ["0", "100000", "65536"], "{ctx}");
    } else {
        assert_eq!(uid_map, ["0", "0", "4294967295"], "{ctx}");
    }

    // Capabilities: exactly the profile's sets.
    for set in ["effective", "permitted", "bounding"] {
        assert_eq!(caps(&r, set), spec_caps(&c.spec, set), "{set}; {ctx}");
    }
    assert!(caps(&r, "inheritable").is_empty(), "{ctx}");
    assert!(caps(&r, "ambient").is_empty(), "{ctx}");
    if unpriv {
        assert_eq!(caps(&r, "effective"), UNPRIVILEGED_CAPS, "{ctx}");
    } else {
        // Full: every capability the host grants (41 on an unrestricted host).
        assert_eq!(caps(&r, "effective"), own_bounding(), "{ctx}");
        assert!(caps(&r, "effective").len() >= 40, "{ctx}");
        assert!(caps(&r, "effective").contains(&"CAP_SYS_ADMIN".to_string()));
    }
    assert_eq!(r["no_new_privs"], unpriv, "{ctx}");

    // Process from config.
    assert_eq!(r["cwd"], "/home/user", "{ctx}");
    assert_eq!(r["env"]["ZCTR_E2E"], "hello world", "{ctx}");
    assert_eq!(
        r["env"]["PATH"],
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    let seen_args: Vec<&str> = r["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(seen_args, args, "{ctx}");
    if unpriv {
        assert_eq!(
            r["rlimit_nofile"],
            serde_json::json!({"soft": 1024, "hard": 1024}),
            "{ctx}"
        );
    }

    // Only stdio is open.
    let fds: Vec<i64> = r["fds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fd"].as_i64().unwrap())
        .collect();
    assert_eq!(fds, [0, 1, 2], "{ctx}");

    // The rootfs appears owned by root inside (idmapped for unprivileged).
    let etc = check(&r, "read", "/etc/hostname");
    assert_eq!(etc["ok"], true, "{ctx}");
    assert_eq!(etc["content"], "zctr-test\n");
    // /root is 0700 and owned by host root: only openable when it appears
    // owned by the container's root, i.e. through the idmapped lower layer.
    assert_eq!(check(&r, "open", "/root")["ok"], true, "{ctx}");
    // "/" is an overlay on the image directory (its lower layer, idmapped for
    // unprivileged; the layer itself is no mount in the container).
    let root_mount = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mount_point"] == "/")
        .unwrap();
    assert_eq!(root_mount["fs_type"], "overlay", "{ctx}");

    // Masked and read-only paths, devices, writes.
    let kcore = check(&r, "read", "/proc/kcore");
    let sda = check(&r, "open", "/dev/sda");
    let vda = check(&r, "open", "/dev/vda");
    let kmsg = check(&r, "open", "/dev/kmsg");
    let mem = check(&r, "open", "/dev/mem");
    if unpriv {
        assert!(
            kcore["ok"] == false || kcore["content"] == "",
            "kcore not masked; {ctx}"
        );
        let keys = check(&r, "read", "/proc/keys");
        assert!(keys["ok"] == false || keys["content"] == "", "{ctx}");
        // /proc/sys is a read-only mount; where container root owns the file
        // (the sysctls of its own network namespace) the write fails with EROFS.
        let proc_sys = r["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|m| m["mount_point"] == "/proc/sys")
            .unwrap_or_else(|| panic!("/proc/sys not a mount; {ctx}"));
        assert!(proc_sys["options"]
            .as_array()
            .unwrap()
            .contains(&"ro".into()));
        let host = check(&r, "write", "/proc/sys/kernel/hostname");
        assert_eq!(host["ok"], false, "{ctx}");
        // kernel.shmmax of the container's own IPC namespace is owned by its root.
        let shm = check(&r, "write", "/proc/sys/kernel/shmmax");
        assert_eq!(shm["error"], "EROFS", "{ctx}");
        for d in [sda, vda, kmsg, mem] {
            assert_eq!(d["ok"], false, "host device opened: {d}; {ctx}");
        }
        let sysfs = check(&r, "write", "/sys/kernel/zctr-probe");
        assert_eq!(sysfs["ok"], false, "{ctx}");
    } else {
        // Privileged: the host's /dev is there, and /proc/kcore is not masked.
        let _ = (mem, sda, vda);
        if std::path::Path::new("/dev/kmsg").exists() {
            assert_eq!(kmsg["ok"], true, "{ctx}");
        }
        if std::path::Path::new("/proc/kcore").exists() {
            assert_eq!(kcore["ok"], true, "{ctx}");
        }
    }
    for dev in ["/dev/null", "/dev/zero", "/dev/urandom"] {
        assert_eq!(check(&r, "open", dev)["ok"], true, "{dev}; {ctx}");
    }
    // A write to / stays inside the container: on its overlay's tmpfs, gone
    // with it; not in the image directory, not in the overlay dir on the
    // host (empty mount points only), not on the host's /.
    let w = check(&r, "write", "/written-by-probe");
    assert_eq!(w["ok"], true, "{ctx}");
    assert!(!c.rootfs.path().join("written-by-probe").exists(), "{ctx}");
    let mut on_host: Vec<String> = std::fs::read_dir(c.overlay.as_ref().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_host.sort();
    assert_eq!(on_host, ["lower", "tmp"], "{ctx}");
    for d in &on_host {
        let p = c.overlay.as_ref().unwrap().join(d);
        assert_eq!(std::fs::read_dir(&p).unwrap().count(), 0, "{ctx}");
    }
    assert!(!std::path::Path::new("/written-by-probe").exists());

    // The container is in the cgroup (with a cgroup namespace: at its root).
    let lines: Vec<&str> = r["cgroup"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(!lines.is_empty(), "{ctx}");
    for line in &lines {
        if unpriv {
            assert!(
                line.ends_with(":/"),
                "{line}: not the cgroup namespace's root"
            );
        } else {
            assert!(line.ends_with(c.cg.relative_path()), "{line}");
        }
    }
    // The memory limit of the cgroup is visible inside.
    if let Some(file) = limit_file {
        let files = r["cgroup"]["files"].as_object().unwrap();
        let seen: Vec<&Value> = files
            .iter()
            .filter(|(k, _)| k.ends_with(&format!("/{file}")))
            .map(|(_, v)| v)
            .collect();
        assert!(
            seen.iter()
                .any(|v| *v == &Value::String(MEMORY_LIMIT.to_string())),
            "memory limit not visible: {files:?}"
        );
    }
    drop(c);
}

#[test]
fn unprivileged_private_network() {
    if root_or_skip("unprivileged_private_network") {
        run_profile(Profile::Unprivileged, Net::Private);
    }
}

#[test]
fn unprivileged_host_network() {
    if root_or_skip("unprivileged_host_network") {
        run_profile(Profile::Unprivileged, Net::Host);
    }
}

#[test]
fn unprivileged_joined_netns() {
    if root_or_skip("unprivileged_joined_netns") {
        run_profile(Profile::Unprivileged, Net::Join);
    }
}

#[test]
fn privileged_private_network() {
    if root_or_skip("privileged_private_network") {
        run_profile(Profile::Privileged, Net::Private);
    }
}

#[test]
fn privileged_host_network() {
    if root_or_skip("privileged_host_network") {
        run_profile(Profile::Privileged, Net::Host);
    }
}

#[test]
fn privileged_joined_netns() {
    if root_or_skip("privileged_joined_netns") {
        run_profile(Profile::Privileged, Net::Join);
    }
}
