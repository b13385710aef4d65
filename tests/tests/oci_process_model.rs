//! zctr-oci's process model, as runc's: once `create` returns no zctr
//! process stays; the init is reparented to the caller's subreaper, keeps
//! the stdio `create` was given (separate stdout and stderr) or a pty sent
//! over --console-socket, and waits for `start` on the exec FIFO.

mod oci_support;

use oci_support::{exists, stat, wait_timeout, zctr_children_of, Oci, T};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn create_returns_leaving_only_the_init_reparented_to_the_subreaper() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&["sh", "-c", "echo to-out; echo to-err >&2; exec sleep 1000"]);
    let id = o.id();
    let pid_file = o.tmp.join("pid");
    // A small subreaper (sh with PR_SET_CHILD_SUBREAPER) runs create, says
    // "created", then waits for its stdin to close.
    let script = r#""$@" >"$OUT" 2>"$ERR" </dev/null; echo "created $?"; read _"#;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg("sh")
        .arg(zctr_tests::bins::oci())
        .arg("--root")
        .arg(&o.root)
        .args(["create", "--bundle"])
        .arg(&o.bundle)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg(&id)
        .env("OUT", o.tmp.join("out"))
        .env("ERR", o.tmp.join("err"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    zctr_tests::subreaper_before_exec(&mut cmd);
    let mut reaper = cmd.spawn().unwrap();
    let mut line = [0u8; 9];
    reaper
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut line)
        .unwrap();
    assert_eq!(
        &line,
        b"created 0",
        "err: {:?}",
        std::fs::read_to_string(o.tmp.join("err"))
    );

    // --pid-file written before create returned; the init is the reaper's child now.
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (_, ppid) = stat(pid).expect("the init is alive");
    assert_eq!(ppid, reaper.id() as i32, "init reparented to the subreaper");
    // No zctr process besides the waiting init itself: nothing else below the reaper.
    assert_eq!(zctr_children_of(reaper.id() as i32), vec![pid]);
    assert_eq!(o.status(&id), "created");
    assert_eq!(o.state(&id)["pid"], pid);
    assert!(exists(&o.state_dir(&id).join("exec.fifo")));
    assert!(std::fs::read_to_string(o.tmp.join("out"))
        .unwrap()
        .is_empty());

    o.ok(&["start", &id]);
    assert_eq!(o.status(&id), "running");
    assert!(!exists(&o.state_dir(&id).join("exec.fifo")));
    assert!(zctr_tests::wait_until(Duration::from_secs(5), || {
        std::fs::read_to_string(o.tmp.join("err")).unwrap_or_default() == "to-err\n"
    }));
    assert_eq!(
        std::fs::read_to_string(o.tmp.join("out")).unwrap(),
        "to-out\n"
    );
    // The init now runs busybox, not zctr-oci.
    assert!(zctr_children_of(reaper.id() as i32).is_empty());
    // Starting twice is refused.
    o.fails(&["start", &id]);

    o.ok(&["kill", &id, "KILL"]);
    // The reaper has not reaped it: a zombie counts as stopped.
    o.wait_status(&id, "stopped");
    assert_eq!(stat(pid).map(|s| s.0), Some('Z'));
    o.ok(&["delete", &id]);
    assert!(!exists(&o.state_dir(&id)));
    for d in o.cgroup_dirs(&id) {
        assert!(!exists(&d), "{} left behind", d.display());
    }
    drop(reaper.stdin.take());
    wait_timeout(reaper, T);
}

#[test]
fn separate_stdout_and_stderr_pipes_reach_the_caller() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&["sh", "-c", "echo out-line; echo err-line >&2; exit 0"]);
    let id = o.id();
    let mut child = o
        .cmd()
        .args(["create", "--bundle"])
        .arg(&o.bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let st = wait_timeout(child, T);
    assert!(st.success());
    o.ok(&["start", &id]);
    // EOF once the init (the last holder of the write ends) exits.
    let (mut a, mut b) = (String::new(), String::new());
    out.read_to_string(&mut a).unwrap();
    err.read_to_string(&mut b).unwrap();
    assert_eq!(a, "out-line\n");
    assert_eq!(b, "err-line\n");
    o.wait_status(&id, "stopped");
    o.ok(&["delete", &id]);
}

#[test]
fn a_terminal_goes_over_the_console_socket() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&[
        "sh",
        "-c",
        "echo on-the-tty; echo name=$(tty); stty size; [ -t 0 ] && echo stdin-is-a-tty; sleep 100",
    ]);
    o.spec["process"]["terminal"] = true.into();
    o.spec["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
    let id = o.id();
    // Without --console-socket a terminal is refused, and nothing is left.
    let (st, err) = o.create(&id, &[]);
    assert!(!st.success());
    assert!(err.contains("console socket"), "{err}");
    assert!(!exists(&o.state_dir(&id)));

    let sock_path = o.tmp.join("console.sock");
    let listener = UnixListener::bind(&sock_path).unwrap();
    let sock = sock_path.display().to_string();
    o.create_ok(&id, &["--console-socket", &sock]);
    let (conn, _) = listener.accept().unwrap();
    let (name, master) = zctr_tests::recv_fd(&conn).unwrap();
    assert!(String::from_utf8_lossy(&name).starts_with("/dev/pts/"));
    o.ok(&["start", &id]);
    let mut master = std::fs::File::from(master);
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("stdin-is-a-tty") {
        let n = master.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // The line discipline of a terminal: \r\n; the pty is the container's
    // own (its devpts names it), sized by consoleSize.
    assert!(seen.contains("on-the-tty\r\n"), "{seen:?}");
    assert!(seen.contains("name=/dev/pts/0\r\n"), "{seen:?}");
    assert!(seen.contains("30 100\r\n"), "{seen:?}");
    o.ok(&["delete", "--force", &id]);
}

#[test]
fn a_duplicate_id_is_refused_and_the_first_container_untouched() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&["sleep", "1000"]);
    let id = o.id();
    o.create_ok(&id, &[]);
    let pid = o.state(&id)["pid"].clone();
    let (st, err) = o.create(&id, &[]);
    assert_eq!(st.code(), Some(1));
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(o.status(&id), "created");
    assert_eq!(o.state(&id)["pid"], pid);
    o.ok(&["start", &id]);
    assert_eq!(o.status(&id), "running");
    o.ok(&["delete", "--force", &id]);
    assert!(!exists(&o.state_dir(&id)));
}

#[test]
fn a_bad_config_leaves_nothing_behind() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&["/no/such/binary"]);
    let id = o.id();
    let (st, err) = o.create(&id, &[]);
    assert_eq!(st.code(), Some(1));
    assert!(
        err.contains("process.args[0]") || err.contains("/no/such/binary"),
        "{err}"
    );
    assert!(!exists(&o.state_dir(&id)));
    for d in o.cgroup_dirs(&id) {
        assert!(!exists(&d), "{} left behind", d.display());
    }
    o.spec["mounts"][0]["destination"] = "../escape".into();
    o.spec["process"]["args"] = serde_json::json!(["true"]);
    o.write_spec();
    let (st, _) = o.create(&id, &[]);
    assert_eq!(st.code(), Some(1));
    assert!(!exists(&o.state_dir(&id)));
}

#[test]
fn preserved_fds_reach_the_container() {
    if !oci_support::ready() {
        return;
    }
    let mut o = Oci::new(&["sh", "-c", "echo via-fd3 >&3"]);
    let id = o.id();
    let target = o.tmp.join("fd3.txt");
    let script = r#"exec 3>"$TARGET"; exec "$@""#;
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(script)
        .arg("sh")
        .arg(zctr_tests::bins::oci())
        .arg("--root")
        .arg(&o.root)
        .args(["run", "--preserve-fds", "1", "--bundle"])
        .arg(&o.bundle)
        .arg(&id)
        .env("TARGET", &target);
    let out = zctr_tests::run_cmd(&mut c, T).unwrap();
    assert!(out.status.success(), "{}", zctr_tests::describe(&out));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "via-fd3\n");
}
