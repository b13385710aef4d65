//! End-to-end security cases of the shim: hostile rootfs symlinks (mount and
//! volume destinations, their parents, /proc, /dev, /dev/null) never lead to a
//! host mount or write; a process.cwd escaping through /proc is refused; the
//! container cannot reach the shim binary (CVE-2019-5736 class).
//! Run as root after `scripts/build-static.sh`.

mod shim_support;

use common::config::{NetworkMode, Profile};
use serde_json::{json, Value};
use shim_support::*;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A directory and a file on the host, outside the rootfs, that a hostile
/// rootfs points its symlinks at. Both must stay untouched.
struct HostTarget {
    dir: PathBuf,
    file: PathBuf,
}

const SENTINEL: &str = "host content, must not change\n";

impl HostTarget {
    fn new(c: &Ctr) -> HostTarget {
        let dir = c.tmp.join("host-dir");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("sentinel"), SENTINEL).unwrap();
        let file = c.tmp.join("host-file");
        std::fs::write(&file, SENTINEL).unwrap();
        HostTarget { dir, file }
    }

    /// Nothing was mounted on or below the targets (in the host's mount
    /// namespace), nothing was created in the directory, the file is unchanged.
    fn assert_untouched(&self, out: &Output) {
        let ctx = zctr_tests::describe(out);
        assert!(
            host_mounts_below(&self.dir).is_empty() && host_mounts_below(&self.file).is_empty(),
            "a mount appeared on the host: {:?} {:?}\n{ctx}",
            host_mounts_below(&self.dir),
            host_mounts_below(&self.file)
        );
        let entries: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(entries, ["sentinel"], "host dir changed\n{ctx}");
        assert_eq!(
            std::fs::read_to_string(self.dir.join("sentinel")).unwrap(),
            SENTINEL
        );
        assert_eq!(
            std::fs::read_to_string(&self.file).unwrap(),
            SENTINEL,
            "{ctx}"
        );
    }
}

/// Either the container ran (the hostile path was resolved inside the rootfs)
/// or the shim refused it with a message; never a crash or a hang.
fn ran_or_failed_cleanly(out: &Output) -> Option<Value> {
    if out.status.success() {
        Some(parse_report(&out.stdout).expect("report"))
    } else {
        assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("zctr-shim: "), "{err}");
        None
    }
}

fn remove_from_rootfs(c: &Ctr, rel: &str) {
    let p = c.rootfs.host_path(rel).unwrap();
    if p.is_dir() {
        std::fs::remove_dir(&p).unwrap();
    } else {
        let _ = std::fs::remove_file(&p);
    }
}

/// Runs the probe in a container whose rootfs `plant` made hostile, and checks
/// the host targets afterwards; returns the report if the container ran.
fn hostile(
    profile: Profile,
    plant: impl FnOnce(&mut Ctr, &HostTarget),
    probe: &[&str],
) -> Option<Value> {
    let mut args = vec![PROBE, "report"];
    args.extend_from_slice(probe);
    let mut c = Ctr::new(profile, NetworkMode::Private, &args);
    let t = HostTarget::new(&c);
    plant(&mut c, &t);
    let out = c.run();
    t.assert_untouched(&out);
    let r = ran_or_failed_cleanly(&out);
    eprintln!(
        "{profile:?}: {}",
        match &r {
            Some(_) => "ran, hostile path resolved inside the rootfs".to_string(),
            None => format!("refused: {}", String::from_utf8_lossy(&out.stderr).trim()),
        }
    );
    assert!(
        zctr_tests::wait_until(T, || c.no_processes()),
        "processes left: {:?}",
        c.cg.pids()
    );
    r
}

#[test]
fn proc_symlinked_to_host_dir() {
    if !root_or_skip("proc_symlinked_to_host_dir") {
        return;
    }
    for profile in [Profile::Unprivileged, Profile::Privileged] {
        for absolute in [true, false] {
            let r = hostile(
                profile,
                |c, t| {
                    remove_from_rootfs(c, "proc");
                    let target = if absolute {
                        t.dir.clone()
                    } else {
                        // ../../../.. from /proc climbs out of any rootfs on the host.
                        Path::new("../../../../../../..").join(t.dir.strip_prefix("/").unwrap())
                    };
                    c.rootfs.symlink("proc", target).unwrap();
                },
                &[],
            );
            if let Some(r) = r {
                // proc was mounted where the link leads inside the rootfs.
                assert_eq!(r["pid"], 1);
                assert!(
                    r["mounts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|m| m["fs_type"] == "proc"),
                    "{r}"
                );
            }
        }
    }
}

#[test]
fn dev_symlinked_to_host_dir() {
    if !root_or_skip("dev_symlinked_to_host_dir") {
        return;
    }
    for profile in [Profile::Unprivileged, Profile::Privileged] {
        hostile(
            profile,
            |c, t| {
                remove_from_rootfs(c, "dev");
                c.rootfs.symlink("dev", &t.dir).unwrap();
            },
            &["--open", "/dev/null"],
        );
    }
}

#[test]
fn dev_null_symlinked_to_host_file() {
    if !root_or_skip("dev_null_symlinked_to_host_file") {
        return;
    }
    // Without a /dev mount the rootfs's own /dev/null is used, e.g. as the
    // source that masks /proc/kcore, and as a device node destination.
    for keep_dev_mount in [false, true] {
        hostile(
            Profile::Unprivileged,
            |c, t| {
                if !keep_dev_mount {
                    c.spec["mounts"]
                        .as_array_mut()
                        .unwrap()
                        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
                }
                c.rootfs.symlink("dev/null", &t.file).unwrap();
            },
            &["--read", "/proc/kcore", "--write", "/dev/null"],
        );
    }
}

#[test]
fn volume_destination_symlinked_to_host_dir() {
    if !root_or_skip("volume_destination_symlinked_to_host_dir") {
        return;
    }
    let r = hostile(
        Profile::Unprivileged,
        |c, t| {
            let vol = c.tmp.join("volume");
            std::fs::create_dir(&vol).unwrap();
            std::fs::write(vol.join("in-volume"), "volume\n").unwrap();
            c.spec["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/data", "type": "bind", "source": vol,
                "options": ["rbind", "rprivate"]
            }));
            c.rootfs.symlink("data", &t.dir).unwrap();
        },
        &["--read", "/data/in-volume", "--write", "/data/new"],
    );
    if let Some(r) = r {
        // The volume is mounted inside the rootfs, where the link leads.
        assert_eq!(check(&r, "read", "/data/in-volume")["content"], "volume\n");
    }
}

#[test]
fn mount_parent_symlinked_to_host_dir() {
    if !root_or_skip("mount_parent_symlinked_to_host_dir") {
        return;
    }
    for profile in [Profile::Unprivileged, Profile::Privileged] {
        hostile(
            profile,
            |c, t| {
                c.spec["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/mnt/sub/data", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "nodev"]
                }));
                c.spec["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/opt/file", "type": "bind", "source": "/etc/hostname",
                    "options": ["bind", "ro"]
                }));
                c.rootfs.symlink("mnt", &t.dir).unwrap();
                c.rootfs.symlink("opt", &t.dir).unwrap();
            },
            &["--write", "/mnt/sub/data/x"],
        );
    }
}

#[test]
fn masked_and_readonly_paths_symlinked_to_host() {
    if !root_or_skip("masked_and_readonly_paths_symlinked_to_host") {
        return;
    }
    hostile(
        Profile::Unprivileged,
        |c, t| {
            c.spec["linux"]["maskedPaths"]
                .as_array_mut()
                .unwrap()
                .push(json!("/etc/masked"));
            c.spec["linux"]["readonlyPaths"]
                .as_array_mut()
                .unwrap()
                .push(json!("/etc/ro"));
            c.rootfs.symlink("etc/masked", &t.file).unwrap();
            c.rootfs.symlink("etc/ro", &t.dir).unwrap();
        },
        &[],
    );
}

#[test]
fn cwd_escape_through_proc_is_refused() {
    if !root_or_skip("cwd_escape_through_proc_is_refused") {
        return;
    }
    for cwd in [
        "/proc/self/fd/3",
        "/proc/self/fd/0",
        "/proc/self/cwd",
        "/proc/self/root/../..",
        "/proc/1/root",
    ] {
        let mut c = Ctr::unprivileged(&[]);
        c.spec["process"]["cwd"] = cwd.into();
        let out = c.run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "cwd {cwd} accepted\n{}",
            zctr_tests::describe(&out)
        );
        assert!(err.contains("cwd"), "cwd {cwd}: unclear error: {err}");
        assert!(out.stdout.is_empty(), "the process ran with cwd {cwd}");
        assert!(zctr_tests::wait_until(T, || c.no_processes()));
    }
}

#[test]
fn container_cannot_reach_the_shim_binary() {
    if !root_or_skip("container_cannot_reach_the_shim_binary") {
        return;
    }
    let shim = zctr_tests::bins::shim();
    let before = file_digest(&shim);
    for profile in [Profile::Unprivileged, Profile::Privileged] {
        let c = Ctr::new(
            profile,
            NetworkMode::Private,
            &[
                PROBE,
                "report",
                "--write",
                "/proc/self/exe",
                "--write",
                "/proc/1/exe",
                "--open",
                "/proc/0/exe",
                "--write",
                "/proc/2/exe",
                "--open",
                &shim.display().to_string(),
            ],
        );
        let r = c.report();
        // The probe is pid 1 and its parent (the shim) is outside its pid
        // namespace: no /proc entry inside leads to it.
        assert_eq!(r["pid"], 1, "{r}");
        assert_eq!(r["ppid"], 0, "{r}");
        for exe in ["/proc/self/exe", "/proc/1/exe"] {
            let w = check(&r, "write", exe);
            assert_eq!(w["ok"], false, "{exe} writable: {r}");
            assert!(
                ["ETXTBSY", "EACCES", "EPERM", "EROFS"].contains(&w["error"].as_str().unwrap()),
                "{w}"
            );
        }
        assert_eq!(check(&r, "open", "/proc/0/exe")["ok"], false);
        assert_eq!(check(&r, "write", "/proc/2/exe")["ok"], false);
        // The host path of the shim is not in the rootfs.
        assert_eq!(check(&r, "open", &shim.display().to_string())["ok"], false);
        // Nothing the process holds is the shim: only stdio is open.
        let fds: Vec<&str> = r["fds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["target"].as_str().unwrap())
            .collect();
        assert_eq!(fds.len(), 3, "{fds:?}");
        assert!(fds.iter().all(|t| !t.contains("zctr-shim")), "{fds:?}");
        // The probe inside is not modified either (it was busy).
        assert_eq!(
            file_digest(&c.rootfs.path().join("bin/zctr-probe")),
            file_digest(&zctr_tests::bins::probe())
        );
    }
    assert_eq!(file_digest(&shim), before, "the shim binary changed");
}
