//! End-to-end: idmapped volumes and the idmap fallback. A host directory owned
//! by host root, bound with the `idmap` option into an unprivileged container
//! (user namespace, ids 100000+), appears owned by the container's root and
//! what the container writes lands on disk as host root's; without the option
//! it stays out of reach. A rootfs on a filesystem that cannot be idmapped
//! falls back to a plain bind; a volume whose idmap was asked for fails.
//! Run as root after `scripts/build-static.sh`.

mod shim_support;

use serde_json::{json, Value};
use shim_support::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A host-root-owned volume source below the fixture's scratch dir, holding
/// `secret` (root, 0600) and mode 0755 itself.
/// A host directory for a volume, below a root-only (0700) directory: a
/// writable idmapped volume must be out of reach of unprivileged host users.
fn host_volume(c: &Ctr, name: &str) -> PathBuf {
    let private = c.tmp.join("private");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let dir = private.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    fill_volume(&dir);
    dir
}

fn fill_volume(dir: &Path) {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "host data\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(std::fs::metadata(dir).unwrap().uid(), 0);
}

fn add_volume(c: &mut Ctr, source: &Path, dest: &str, options: &[&str]) {
    c.spec["mounts"].as_array_mut().unwrap().push(json!({
        "destination": dest,
        "type": "bind",
        "source": source,
        "options": options,
    }));
}

fn probe_volume(c: &mut Ctr, dest: &str) {
    let secret = format!("{dest}/secret");
    let new = format!("{dest}/from-container");
    c.set_args(&[PROBE, "report", "--read", &secret, "--write", &new]);
}

fn mount_options(r: &Value, dest: &str) -> Vec<String> {
    r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|m| m["mount_point"] == dest)
        .unwrap_or_else(|| panic!("{dest} is not a mount: {r}"))["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn host_owned_volume_is_idmapped_for_an_unprivileged_container() {
    if !root_or_skip("idmapped volume") {
        return;
    }
    let mut c = Ctr::unprivileged(&[]);
    let src = host_volume(&c, "vol");
    add_volume(&mut c, &src, "/data", &["rbind", "rw", "idmap"]);
    probe_volume(&mut c, "/data");
    let r = c.report();
    assert!(
        mount_options(&r, "/data").contains(&"idmapped".to_string()),
        "{r}"
    );
    // Readable only if it appears owned by the container's root.
    let read = check(&r, "read", "/data/secret");
    assert_eq!(read["ok"], true, "{read}");
    assert_eq!(read["content"], "host data\n");
    let write = check(&r, "write", "/data/from-container");
    assert_eq!(write["ok"], true, "{write}");
    let md = std::fs::metadata(src.join("from-container")).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0), "written through the idmap");
}

#[test]
fn without_the_idmap_the_volume_stays_out_of_reach() {
    if !root_or_skip("volume without idmap") {
        return;
    }
    let mut c = Ctr::unprivileged(&[]);
    // Where the container's user namespace can reach it (it binds the source
    // itself, with its own credentials).
    let src = c.tmp.join("vol");
    std::fs::create_dir_all(&src).unwrap();
    fill_volume(&src);
    add_volume(&mut c, &src, "/data", &["rbind", "rw"]);
    probe_volume(&mut c, "/data");
    let r = c.report();
    assert!(!mount_options(&r, "/data").contains(&"idmapped".to_string()));
    // Host root is unmapped: no DAC override applies to its files.
    assert_eq!(check(&r, "read", "/data/secret")["ok"], false, "{r}");
    assert_eq!(check(&r, "write", "/data/from-container")["ok"], false);
    assert!(!src.join("from-container").exists());
}

#[test]
fn ridmap_option_is_honoured_and_read_only_still_holds() {
    if !root_or_skip("ridmap volume") {
        return;
    }
    // `ridmap` idmaps the volume's submounts too, `idmap` only the volume.
    for (option, submount_idmapped) in [("ridmap", true), ("idmap", false)] {
        let mut c = Ctr::unprivileged(&[]);
        let src = host_volume(&c, "vol");
        let sub = src.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let out = zctr_tests::run_cmd(
            std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "mode=0755", "zctr-test-sub"])
                .arg(&sub),
            T,
        )
        .unwrap();
        assert!(out.status.success(), "{}", zctr_tests::describe(&out));
        fill_volume(&sub);
        add_volume(&mut c, &src, "/ro", &["rbind", "ro", option]);
        c.set_args(&[
            PROBE,
            "report",
            "--read",
            "/ro/secret",
            "--read",
            "/ro/sub/secret",
            "--write",
            "/ro/from-container",
            "--write",
            "/ro/sub/from-container",
        ]);
        let r = c.report();
        let opts = mount_options(&r, "/ro");
        assert!(opts.contains(&"idmapped".to_string()), "{option}: {opts:?}");
        assert!(opts.contains(&"ro".to_string()), "{option}: {opts:?}");
        assert_eq!(check(&r, "read", "/ro/secret")["ok"], true, "{option}");
        assert_eq!(
            check(&r, "read", "/ro/sub/secret")["ok"],
            submount_idmapped,
            "{option}: {r}"
        );
        assert_eq!(check(&r, "write", "/ro/from-container")["error"], "EROFS");
        if submount_idmapped {
            // Read-only too: through the idmap a write there would be host
            // root's, and the submount's source was never checked.
            assert_eq!(
                check(&r, "write", "/ro/sub/from-container")["error"],
                "EROFS",
                "{r}"
            );
        }
    }
}

/// A ramfs mounted below the scratch dir (TempDir unmounts it on drop).
/// ramfs has no idmap support.
fn ramfs(c: &Ctr) -> PathBuf {
    let dir = c.tmp.join("ramfs");
    std::fs::create_dir_all(&dir).unwrap();
    let out = zctr_tests::run_cmd(
        std::process::Command::new("mount")
            .args(["-t", "ramfs", "zctr-test-ramfs"])
            .arg(&dir),
        T,
    )
    .unwrap();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    dir
}

#[test]
fn a_rootfs_without_idmap_support_falls_back_to_a_plain_bind() {
    if !root_or_skip("idmap fallback") {
        return;
    }
    let mut c = Ctr::unprivileged(&[PROBE, "report", "--open", "/root"]);
    let dir = ramfs(&c);
    let rootfs = zctr_tests::Rootfs::new(dir.join("rootfs")).unwrap();
    c.spec["root"]["path"] = json!(rootfs.path());
    let r = c.report();
    assert!(
        !mount_options(&r, "/").contains(&"idmapped".to_string()),
        "{r}"
    );
    // Host-root-owned 0700 /root stays closed without the idmap.
    assert_eq!(check(&r, "open", "/root")["ok"], false, "{r}");
}

#[test]
fn a_requested_idmap_that_cannot_be_made_fails_cleanly() {
    if !root_or_skip("required idmap") {
        return;
    }
    let mut c = Ctr::unprivileged(&[]);
    let src = ramfs(&c);
    fill_volume(&src);
    add_volume(&mut c, &src, "/data", &["rbind", "idmap"]);
    let out = c.run();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("idmap mount"), "{err}");
    assert!(err.contains("/data"), "{err}");
    assert!(c.no_processes());
    assert!(host_mounts_below(c.rootfs.path()).is_empty());
}

/// Makes the fixture's scratch dir a shared mount, as every mount is under
/// systemd (TempDir unmounts it on drop).
fn make_scratch_shared(c: &Ctr) {
    for args in [
        vec![
            "--bind".to_string(),
            c.tmp.path().display().to_string(),
            c.tmp.path().display().to_string(),
        ],
        vec![
            "--make-shared".to_string(),
            c.tmp.path().display().to_string(),
        ],
    ] {
        let out = zctr_tests::run_cmd(std::process::Command::new("mount").args(&args), T).unwrap();
        assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    }
}

#[test]
fn idmapped_trees_from_a_shared_mount_do_not_propagate_to_the_host() {
    if !root_or_skip("idmapped trees from a shared mount") {
        return;
    }
    let mut c = Ctr::unprivileged(&[]);
    let src = host_volume(&c, "vol");
    add_volume(&mut c, &src, "/data", &["rbind", "rw", "idmap"]);
    make_scratch_shared(&c);
    c.set_args(&[PROBE, "sleep", "inf"]);
    c.create_ok();
    // The container's mounts (proc, dev, sys, ...) stay in its namespace.
    let leaked = host_mounts_below(c.rootfs.path());
    assert!(
        leaked.is_empty(),
        "container mounts on the host: {leaked:?}"
    );
    c.ctl_ok("start", &[]);
    c.ctl_ok("kill", &["KILL"]);
    c.wait_status("stopped", |s| s["state"] == "stopped");
    assert!(host_mounts_below(c.rootfs.path()).is_empty());
}

#[test]
fn a_writable_idmapped_volume_reachable_by_host_users_is_refused() {
    if !root_or_skip("idmapped volume reachable by host users") {
        return;
    }
    // Every directory on the way is searchable by others: a setuid-root file
    // the container's root wrote there would serve any host user.
    let mut c = Ctr::unprivileged(&[]);
    let open = c.tmp.join("open-vol");
    std::fs::create_dir_all(&open).unwrap();
    fill_volume(&open);
    add_volume(&mut c, &open, "/data", &["rbind", "rw", "idmap"]);
    c.set_args(&[PROBE, "exit", "0"]);
    let out = c.run();
    assert!(!out.status.success(), "{}", zctr_tests::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("idmap mount") && err.contains("not be reachable by unprivileged host users"),
        "{err}"
    );
    // Read-only, the same source is fine: the container cannot write there.
    let mut c = Ctr::unprivileged(&[]);
    let open = c.tmp.join("open-vol");
    std::fs::create_dir_all(&open).unwrap();
    fill_volume(&open);
    add_volume(&mut c, &open, "/data", &["rbind", "ro", "idmap"]);
    c.set_args(&[PROBE, "exit", "0"]);
    let out = c.run();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
}

#[test]
fn a_writable_ridmap_volume_with_a_submount_is_refused() {
    if !root_or_skip("writable ridmap volume with a submount") {
        return;
    }
    // The source is root-only, but a directory host users can reach is bound
    // below it: idmapped recursively, the container's root would be host root
    // in that directory too.
    let mut c = Ctr::unprivileged(&[]);
    let src = host_volume(&c, "vol");
    let public = c.tmp.join("public");
    std::fs::create_dir_all(&public).unwrap();
    fill_volume(&public);
    let sub = src.join("pub");
    std::fs::create_dir(&sub).unwrap();
    // Unmounted by the fixture's TempDir on drop, even on failure.
    let out = zctr_tests::run_cmd(
        std::process::Command::new("mount")
            .arg("--bind")
            .arg(&public)
            .arg(&sub),
        T,
    )
    .unwrap();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    add_volume(&mut c, &src, "/data", &["rbind", "rw", "ridmap"]);
    c.set_args(&[PROBE, "report", "--write", "/data/pub/from-container"]);
    let out = c.run();
    assert!(!out.status.success(), "{}", zctr_tests::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("idmap mount") && err.contains("recursively idmapped") && err.contains("/pub"),
        "{err}"
    );
    assert!(!public.join("from-container").exists());
    assert!(c.no_processes());
    // Only the volume idmapped (`idmap`), the same source is fine: the
    // submount is a plain bind there, written as the container's own ids.
    let mut c2 = Ctr::unprivileged(&[]);
    add_volume(&mut c2, &src, "/data", &["rbind", "rw", "idmap"]);
    c2.set_args(&[PROBE, "exit", "0"]);
    let out = c2.run();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
}
