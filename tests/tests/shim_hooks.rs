//! End-to-end: the six kinds of hooks of config.json through `zctr-shim
//! create` + `start` (and `run`): order, namespaces, the state JSON on stdin,
//! argv and env, timeouts, failures. Each hook is a static busybox `sh -c`
//! script writing what it got to a scratch directory.
//! Run as root after `scripts/build-static.sh`.

mod shim_support;

use common::config::{NetworkMode, Profile};
use serde_json::{json, Value};
use shim_support::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zctr_tests::Error;

/// Where the container sees the scratch directory (a bind mount).
const IN_CTR: &str = "/hooks";

struct Fixture {
    c: Ctr,
    /// The scratch directory on the host.
    dir: PathBuf,
    /// The host's static busybox.
    busybox: PathBuf,
}

/// A privileged container (no user namespace: the hooks write to the
/// scratch directory as root) with busybox, and the scratch dir bound at /hooks.
fn fixture() -> Option<Fixture> {
    let c = Ctr::new(Profile::Privileged, NetworkMode::Private, &[]);
    match c.rootfs.with_busybox() {
        Ok(()) => {}
        Err(Error::BusyboxUnavailable(why)) => {
            zctr_tests::skip::skip(why);
            return None;
        }
        Err(e) => panic!("{e}"),
    }
    let busybox = zctr_tests::rootfs::busybox_path().unwrap();
    let dir = c.tmp.join("hooks");
    std::fs::create_dir(&dir).unwrap();
    let mut f = Fixture { c, dir, busybox };
    f.c.set_args(&["sh", "-c", "echo container-ran >> /hooks/order"]);
    f.c.spec["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": IN_CTR, "type": "bind",
                     "source": f.dir, "options": ["rbind"]}));
    Some(f)
}

impl Fixture {
    /// A hook that saves its stdin as `<kind>.state`, its argv and $HOOK_ENV
    /// as `<kind>.argv`, and appends `<kind>` to `order`, in `dir` (as the
    /// hook sees it), then runs `then`.
    fn hook(&self, kind: &str, busybox: &Path, dir: &str, then: &str) -> Value {
        json!({
            "path": busybox,
            "args": ["sh", "-c",
                format!("cat > {dir}/{kind}.state; echo \"$0 $1 $HOOK_ENV\" > {dir}/{kind}.argv; \
                         echo {kind} >> {dir}/order; {then}"),
                "arg-zero", "arg-one"],
            "env": [format!("HOOK_ENV={kind}-env")],
        })
    }

    /// The hook of `kind`, run where `kind` runs: the runtime namespace and
    /// createContainer (before pivot_root) see the host's paths, startContainer
    /// the container's.
    fn hook_for(&self, kind: &str, then: &str) -> Value {
        if kind == "startContainer" {
            self.hook(kind, Path::new("/bin/busybox"), IN_CTR, then)
        } else {
            let dir = self.dir.display().to_string();
            self.hook(kind, &self.busybox, &dir, then)
        }
    }

    fn set_hooks(&mut self, kinds: &[(&str, &str)]) {
        let mut hooks = serde_json::Map::new();
        for (kind, then) in kinds {
            hooks.insert(kind.to_string(), json!([self.hook_for(kind, then)]));
        }
        self.c.spec["hooks"] = Value::Object(hooks);
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn state(&self, kind: &str) -> Value {
        serde_json::from_str(&self.read(&format!("{kind}.state"))).unwrap_or_else(|e| {
            panic!(
                "{kind}.state: {e}: {:?}",
                self.read(&format!("{kind}.state"))
            )
        })
    }
}

const ALL_BUT_POSTSTOP: [&str; 5] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
];

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    if !root_or_skip("hooks_run_in_order_with_the_state_on_stdin") {
        return;
    }
    let Some(mut f) = fixture() else { return };
    f.set_hooks(&ALL_BUT_POSTSTOP.map(|k| (k, "true")));
    f.c.spec["annotations"] = json!({"org.example.hook": "yes"});
    f.c.create_ok();
    let pid = f.c.init_pid();
    // Created: the create-time hooks ran, the start-time ones not yet.
    assert_eq!(
        f.read("order"),
        "prestart\ncreateRuntime\ncreateContainer\n"
    );
    f.c.ctl_ok("start", &[]);
    f.c.wait_status("stopped", |s| s["state"] == "stopped");
    let order = f.read("order");
    let head: Vec<&str> = order.lines().take(4).collect();
    assert_eq!(
        head,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer"
        ],
        "order: {order}"
    );
    order_tail(&order);
    let bundle = std::fs::canonicalize(&f.c.bundle).unwrap();
    for (kind, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
    ] {
        let s = f.state(kind);
        assert_eq!(s["status"], status, "{kind}: {s}");
        assert_eq!(s["id"], f.c.id.as_str(), "{kind}: {s}");
        assert_eq!(s["pid"], pid, "{kind}: {s}");
        assert_eq!(
            std::fs::canonicalize(s["bundle"].as_str().unwrap()).unwrap(),
            bundle,
            "{kind}: {s}"
        );
        assert_eq!(s["annotations"]["org.example.hook"], "yes", "{kind}: {s}");
        assert!(s["ociVersion"].as_str().unwrap().starts_with("1."), "{s}");
        assert_eq!(
            f.read(&format!("{kind}.argv")),
            format!("arg-zero arg-one {kind}-env\n"),
            "{kind}"
        );
    }
}

/// The order's end after startContainer: the container and poststart run
/// concurrently (poststart follows `start`, not the container's exit).
fn order_tail(order: &str) {
    let mut tail: Vec<&str> = order.lines().skip(4).collect();
    tail.sort();
    assert_eq!(tail, ["container-ran", "poststart"], "order: {order}");
}

#[test]
fn a_failing_create_hook_fails_create_and_leaves_nothing() {
    if !root_or_skip("a_failing_create_hook_fails_create_and_leaves_nothing") {
        return;
    }
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let Some(mut f) = fixture() else { return };
        f.set_hooks(&[(kind, "exit 3")]);
        let out = f.c.create();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{kind}: {}",
            zctr_tests::describe(&out)
        );
        assert!(
            err.contains(&format!("hook {kind}[0]")) && err.contains("exited with status 3"),
            "{kind}: {err}"
        );
        assert!(wait_until_empty(&f.c), "{kind}: processes left");
        assert!(!f.read("order").contains("container-ran"));
    }
}

fn wait_until_empty(c: &Ctr) -> bool {
    zctr_tests::wait_until(T, || c.no_processes())
}

#[test]
fn hooks_outliving_their_timeout_are_killed() {
    if !root_or_skip("hooks_outliving_their_timeout_are_killed") {
        return;
    }
    for kind in ["createRuntime", "createContainer"] {
        let Some(mut f) = fixture() else { return };
        f.set_hooks(&[(kind, "sleep 30")]);
        f.c.spec["hooks"][kind][0]["timeout"] = json!(1);
        let t = Instant::now();
        let out = f.c.create();
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{kind}: {}",
            zctr_tests::describe(&out)
        );
        assert!(
            err.contains(&format!("hook {kind}[0]")) && err.contains("timed out after 1 s"),
            "{kind}: {err}"
        );
        assert!(took < Duration::from_secs(10), "{kind}: took {took:?}");
        assert!(wait_until_empty(&f.c), "{kind}: processes left");
    }
}

#[test]
fn a_failing_start_container_hook_fails_start() {
    if !root_or_skip("a_failing_start_container_hook_fails_start") {
        return;
    }
    let Some(mut f) = fixture() else { return };
    f.set_hooks(&[("startContainer", "exit 4")]);
    f.c.create_ok();
    let out = f.c.ctl("start", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    assert!(
        err.contains("hook startContainer[0]") && err.contains("exited with status 4"),
        "{err}"
    );
    assert!(!f.read("order").contains("container-ran"));
}

#[test]
fn a_failing_poststart_hook_is_a_warning() {
    if !root_or_skip("a_failing_poststart_hook_is_a_warning") {
        return;
    }
    let Some(mut f) = fixture() else { return };
    f.set_hooks(&[("poststart", "exit 5")]);
    f.c.create_ok();
    let out = f.c.ctl("start", &[]);
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hook poststart[0]") && err.contains("exited with status 5"),
        "{err}"
    );
    f.c.wait_status("stopped", |s| s["state"] == "stopped");
    assert!(f.read("order").contains("container-ran"));
}

#[test]
fn what_zctr_shim_cannot_run_is_refused() {
    if !root_or_skip("what_zctr_shim_cannot_run_is_refused") {
        return;
    }
    // poststop: the monitor runs no programs.
    let Some(mut f) = fixture() else { return };
    f.set_hooks(&[("poststop", "true")]);
    let out = f.c.create();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    assert!(err.contains("hooks.poststop: "), "{err}");
    // poststart with run: run starts the container itself.
    let Some(mut f) = fixture() else { return };
    f.set_hooks(&[("poststart", "true")]);
    let out = f.c.run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
    assert!(err.contains("hooks.poststart: "), "{err}");
    // A relative path and a zero timeout, by name.
    for (hook, want) in [
        (json!({"path": "busybox"}), "hooks.createRuntime[0].path"),
        (
            json!({"path": "/bin/true", "timeout": 0}),
            "hooks.createRuntime[0].timeout",
        ),
    ] {
        let Some(mut f) = fixture() else { return };
        f.c.spec["hooks"] = json!({"createRuntime": [hook]});
        let out = f.c.run();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}", zctr_tests::describe(&out));
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[test]
fn run_runs_the_create_and_start_hooks() {
    if !root_or_skip("run_runs_the_create_and_start_hooks") {
        return;
    }
    let Some(mut f) = fixture() else { return };
    f.set_hooks(
        &ALL_BUT_POSTSTOP[..4]
            .iter()
            .map(|k| (*k, "true"))
            .collect::<Vec<_>>(),
    );
    let out = f.c.run();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    assert_eq!(
        f.read("order"),
        "prestart\ncreateRuntime\ncreateContainer\nstartContainer\ncontainer-ran\n"
    );
}
