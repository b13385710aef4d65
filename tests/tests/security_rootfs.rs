//! End-to-end: what a container writes to its root never reaches the host as
//! something a host user could run with privilege (issue 8, break 1), and the
//! shim reads a client-named config.json safely (issue 8, break 2, shim side).
//!
//! Every container's root is an overlay: the image directory is its read-only
//! lower layer, the writes land in `<state-dir>/rootfs-overlay/upper` (mode
//! 0700 directory), removed with the container. Run as root after
//! `scripts/build-static.sh`. Without root or a static busybox the tests skip,
//! except under `CI=true`, where they fail ([`zctr_tests::skip`]).

mod shim_support;
mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Env, T};
use zctr_tests::run_cmd;

/// A daemon harness with busybox in its rootfs, or `None` (skipped).
fn env_with_busybox() -> Option<Env> {
    let env = Env::new()?;
    zctr_tests::skip::or_skip(env.rootfs.with_busybox())?;
    Some(env)
}

/// Every entry below `dir`: relative path → (mode, uid, gid, size, mtime).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, u32, u32, u64, i64)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p.clone());
            }
            out.insert(
                p.strip_prefix(dir).unwrap().to_path_buf(),
                (m.mode(), m.uid(), m.gid(), m.size(), m.mtime()),
            );
        }
    }
    out
}

/// Runs `path report` as uid/gid 65534 without groups. `Some(euid)` if it ran.
/// Through `sh`: setpriv itself still holds root's capabilities (permitted
/// and effective, kept across its setresuid) when it execs, which would let it
/// through a 0700 directory; `sh` runs without any, as a plain user's shell.
fn euid_as_nobody(path: &Path) -> Option<u64> {
    let out = run_cmd(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["/bin/sh", "-c", r#"exec "$0" report"#])
            .arg(path),
        T,
    )
    .unwrap();
    if !out.status.success() {
        return None;
    }
    let r = shim_support::parse_report(&out.stdout)?;
    r["uid"]["effective"].as_u64()
}

fn overlay_dir(env: &Env, id: &str) -> PathBuf {
    common::layout::rootfs_overlay_dir(&env.root.join(id))
}

fn run_unprivileged(env: &Env, id: &str, script: &str) {
    let rootfs = env.rootfs_arg();
    env.zctr(&support::run_args(
        id,
        &rootfs,
        &["--profile", "unprivileged"],
        &["/bin/busybox", "sh", "-c", script],
    ));
}

#[test]
fn a_container_cannot_plant_a_setuid_root_file_on_the_host() {
    let Some(env) = env_with_busybox() else {
        return;
    };
    // The check below does see a setuid-root file a host user can reach.
    let control = env.tmp.join("setuid-control");
    std::fs::copy(env.rootfs.path().join("bin/zctr-probe"), &control).unwrap();
    std::fs::set_permissions(&control, std::fs::Permissions::from_mode(0o4755)).unwrap();
    assert_eq!(
        euid_as_nobody(&control),
        Some(0),
        "the setuid check sees nothing"
    );
    std::fs::remove_file(&control).unwrap();

    let before = snapshot(env.rootfs.path());
    // A new setuid file, a setuid copy-up of an image binary, and both
    // chowned to the container's root.
    let script = "set -e; b=/bin/busybox; \
        $b cp /bin/zctr-probe /planted; $b chown 0:0 /planted; $b chmod 4755 /planted; \
        $b chown 0:0 /bin/zctr-probe; $b chmod 4755 /bin/zctr-probe; \
        $b mkdir -p /usr/local/bin; $b cp /planted /usr/local/bin/planted; \
        $b chmod 6755 /usr/local/bin/planted; $b ls -ln /planted";
    run_unprivileged(&env, "plant", script);
    assert_eq!(
        env.zctr(&["wait", "plant"]).trim(),
        "0",
        "{}",
        env.logs("plant")
    );
    // Inside, the container did see its setuid file.
    assert!(
        env.logs("plant").contains("-rwsr-xr-x"),
        "{}",
        env.logs("plant")
    );

    // The image directory is exactly as it was.
    assert_eq!(
        snapshot(env.rootfs.path()),
        before,
        "the image directory changed"
    );

    // Wherever the files are on the host, none runs as root for a host user:
    // not in the image directory (where the old code left them, setuid host
    // root), and the upper dir is out of reach altogether.
    let upper = overlay_dir(&env, "plant").join("upper");
    for rel in ["planted", "bin/zctr-probe", "usr/local/bin/planted"] {
        let in_image = env.rootfs.path().join(rel);
        if in_image.exists() {
            let euid = euid_as_nobody(&in_image);
            assert_ne!(
                euid,
                Some(0),
                "{} runs with euid 0 for uid 65534",
                in_image.display()
            );
        }
        let in_upper = upper.join(rel);
        assert!(in_upper.exists(), "{} not written", in_upper.display());
        assert_eq!(
            euid_as_nobody(&in_upper),
            None,
            "{} can be run by uid 65534",
            in_upper.display()
        );
    }
    // The writes are in the upper dir, owned by the container's unprivileged
    // host ids, below a directory only root can enter.
    let planted = std::fs::metadata(upper.join("planted")).unwrap();
    assert_ne!(planted.uid(), 0, "planted file owned by host root");
    assert_ne!(planted.gid(), 0, "planted file owned by host group root");
    assert_eq!(planted.mode() & 0o7777, 0o4755);
    let dir = std::fs::metadata(overlay_dir(&env, "plant")).unwrap();
    assert_eq!((dir.uid(), dir.mode() & 0o777), (0, 0o700));
    for entry in snapshot(&upper).keys() {
        let m = std::fs::symlink_metadata(upper.join(entry)).unwrap();
        assert_ne!(
            m.uid(),
            0,
            "{} in the upper dir is owned by host root",
            entry.display()
        );
    }
    env.zctr(&["delete", "plant"]);
}

#[test]
fn containers_on_one_read_only_image_see_only_their_own_writes() {
    let Some(env) = env_with_busybox() else {
        return;
    };
    // The image directory itself is read-only on the host (a read-only bind,
    // unmounted with the scratch directory).
    let image = env.rootfs.path().display().to_string();
    for args in [
        vec!["--bind", image.as_str(), image.as_str()],
        vec!["-o", "remount,bind,ro", image.as_str()],
    ] {
        let out = run_cmd(Command::new("mount").args(&args), T).unwrap();
        assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    }
    let before = snapshot(env.rootfs.path());
    // Both write at once, then read after the other has written too.
    let script = |me: &str| {
        format!(
            "set -e; b=/bin/busybox; echo {me} > /mine; $b touch /only-{me}; \
             echo {me} >> /etc/passwd; $b sleep 2; \
             $b cat /mine; $b ls / | $b grep only-; $b tail -n 1 /etc/passwd"
        )
    };
    run_unprivileged(&env, "one", &script("one"));
    run_unprivileged(&env, "two", &script("two"));
    for (id, other) in [("one", "two"), ("two", "one")] {
        assert_eq!(env.zctr(&["wait", id]).trim(), "0", "{}", env.logs(id));
        let logs = env.logs(id);
        assert_eq!(
            logs,
            format!("{id}\nonly-{id}\n{id}\n"),
            "{id} saw other writes than its own ({other})"
        );
    }
    assert_eq!(
        snapshot(env.rootfs.path()),
        before,
        "the image directory changed"
    );
    for id in ["one", "two"] {
        env.zctr(&["delete", id]);
    }
}

#[test]
fn the_upper_dir_goes_with_the_container_and_nothing_is_mounted_on_the_host() {
    let Some(env) = env_with_busybox() else {
        return;
    };
    let mounts_before = zctr_tests::mounts_below(&env.tmp.join("")).unwrap();
    run_unprivileged(
        &env,
        "gone",
        "echo data > /written; exec /bin/busybox sleep 1000",
    );
    let upper = overlay_dir(&env, "gone").join("upper");
    assert!(
        zctr_tests::wait_until(T, || upper.join("written").is_file()),
        "the write did not land in {}",
        upper.display()
    );
    // Nothing is mounted on the host for the container's root.
    assert_eq!(
        zctr_tests::mounts_below(&env.tmp.join("")).unwrap(),
        mounts_before
    );
    assert!(!overlay_mount_on_host(&env.root));
    env.zctr(&["delete", "--force", "gone"]);
    assert!(!env.root.join("gone").exists(), "state dir left");
    assert!(!upper.exists(), "upper dir left");
    assert_eq!(
        zctr_tests::mounts_below(&env.tmp.join("")).unwrap(),
        mounts_before
    );
    assert!(!overlay_mount_on_host(&env.root));
}

/// Whether the host's mount table holds an overlay naming `dir` in its options.
fn overlay_mount_on_host(dir: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let needle = dir.display().to_string();
    text.lines()
        .any(|l| l.contains(" overlay ") && l.contains(&needle))
}

#[test]
fn a_hostile_config_json_fails_fast_with_a_clear_error() {
    if !shim_support::root_or_skip("hostile config.json") {
        return;
    }
    type Make = fn(&Path);
    let cases: [(&str, Make, &str); 4] = [
        (
            "fifo",
            |p| assert!(Command::new("mkfifo").arg(p).status().unwrap().success()),
            "a FIFO, not a regular file",
        ),
        (
            "dev-zero",
            |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
            "No such file",
        ),
        (
            "huge",
            |p| std::fs::File::create(p).unwrap().set_len(8 << 30).unwrap(),
            "more than the",
        ),
        (
            "directory",
            |p| std::fs::create_dir(p).unwrap(),
            "a directory, not a regular file",
        ),
    ];
    for (name, make, needle) in cases {
        let c = shim_support::Ctr::unprivileged(&[]);
        let config = common::layout::config_file(&c.bundle);
        let _ = std::fs::remove_file(&config);
        make(&config);
        let procs: Vec<String> = c
            .shim_cg
            .dirs()
            .iter()
            .map(|d| d.path.join("cgroup.procs").display().to_string())
            .collect();
        let overlay = c.overlay.clone().unwrap();
        let started = Instant::now();
        let out = run_cmd(
            Command::new("sh")
                .arg("-c")
                .arg(r#"for f in $ZCTR_PROCS; do echo $$ > "$f" || exit 99; done; exec "$@""#)
                .arg("sh")
                .arg(&c.shim_bin)
                .args(["create", "--bundle"])
                .arg(&c.bundle)
                .args(["--id", &c.id, "--state-dir"])
                .arg(&c.state)
                .arg("--rootfs-overlay")
                .arg(&overlay)
                .env("ZCTR_PROCS", procs.join(" ")),
            Duration::from_secs(10),
        )
        .unwrap_or_else(|e| panic!("{name}: zctr-shim create did not fail fast: {e}"));
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {err}");
        assert!(took < Duration::from_secs(5), "{name}: took {took:?}");
        assert!(
            err.contains(&config.display().to_string()) && err.contains(needle),
            "{name}: unclear error: {err}"
        );
        assert!(
            zctr_tests::wait_until(T, || c.no_processes()),
            "{name}: processes left"
        );
        assert!(!overlay.exists(), "{name}: overlay dir made");
        assert!(zctr_tests::mounts_below(&c.tmp.join(""))
            .unwrap()
            .is_empty());
        let status: Option<Value> = c.status();
        assert!(status.is_none(), "{name}: status.json written: {status:?}");
    }
}
