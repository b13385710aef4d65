//! End-to-end: the default seccomp profiles and 32-bit calls (`int 0x80`,
//! the i386 entry an x86_64 kernel with IA32 emulation keeps), and `kcmp`
//! only with CAP_SYS_PTRACE. Checked from inside with `zctr-probe syscalls`.
//! Run as root after `scripts/build-static.sh`.

mod shim_support;

use common::config::{ContainerConfig, NetworkMode, Profile};
use serde_json::{json, Value};
use shim_support::*;

fn ctr(profile: Profile, names: &[&str], add_caps: &[&str]) -> Ctr {
    let mut args = vec![PROBE, "syscalls"];
    args.extend_from_slice(names);
    let mut c = Ctr::new(profile, NetworkMode::Private, &args);
    let mut config = ContainerConfig::new(c.rootfs.path());
    config.profile = profile;
    config.args = Some(args.iter().map(|s| s.to_string()).collect());
    config.capabilities.add = add_caps.iter().map(|s| s.to_string()).collect();
    c.spec = generate(&c.id, &config, c.cg.relative_path());
    drop_caps_we_lack(&mut c.spec);
    c
}

fn result(r: &Value, name: &str) -> String {
    let v = &r["syscalls"][name];
    if v["ok"] == json!(true) {
        "ok".into()
    } else if let Some(s) = v["signal"].as_i64() {
        format!("signal {s}")
    } else {
        v["errno"].as_str().unwrap_or("?").to_string()
    }
}

#[test]
fn the_privileged_default_runs_i386_calls_and_denies_kernel_loading_there() {
    if !root_or_skip("seccomp i386") {
        return;
    }
    let names = ["int80_getpid", "int80_kexec_load", "kexec_load"];
    // Without a filter: the kernel's own answers (kexec_load: EINVAL, or
    // ENOSYS where the kernel has no kexec). No IA32 emulation: nothing to test.
    let mut free = ctr(Profile::Privileged, &names, &[]);
    free.spec["linux"]
        .as_object_mut()
        .unwrap()
        .remove("seccomp");
    let r = free.report();
    if result(&r, "int80_getpid") != "ok" {
        zctr_tests::skip::skip(format!(
            "int 0x80 does not work here (no IA32 emulation): {r}"
        ));
        return;
    }
    assert_ne!(result(&r, "int80_kexec_load"), "EPERM", "{r}");
    let r = ctr(Profile::Privileged, &names, &[]).report();
    assert_eq!(result(&r, "int80_getpid"), "ok", "{r}");
    // EPERM comes from the filter: the kernel would say EINVAL or ENOSYS.
    assert_eq!(result(&r, "int80_kexec_load"), "EPERM", "{r}");
    assert_eq!(result(&r, "kexec_load"), "EPERM", "{r}");
    // The unprivileged default lists x86_64 only: an i386 call kills.
    let r = ctr(Profile::Unprivileged, &["int80_getpid", "getppid"], &[]).report();
    assert_eq!(result(&r, "int80_getpid"), "signal 31", "{r}");
    assert_eq!(result(&r, "getppid"), "ok", "{r}");
}

#[test]
fn kcmp_needs_cap_sys_ptrace() {
    if !root_or_skip("seccomp kcmp") {
        return;
    }
    let r = ctr(Profile::Unprivileged, &["kcmp"], &[]).report();
    assert_eq!(result(&r, "kcmp"), "EPERM", "{r}");
    let r = ctr(Profile::Unprivileged, &["kcmp"], &["CAP_SYS_PTRACE"]).report();
    assert_eq!(result(&r, "kcmp"), "ok", "{r}");
}
