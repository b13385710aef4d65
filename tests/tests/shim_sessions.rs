//! Sessions of the shim's monitor (docs/protocol.md, "Sessions"), spoken
//! directly on `STATE/shim.sock` with `common::protocol` frames: `Exec`
//! (exit codes, stdout/stderr apart, stdin, a pty of the container's own
//! devpts and its size), refusals (created, paused, stopped), an exec'd
//! process outliving its client (its output then in the log, its end in
//! `status.json` and told to a later client), exec'd processes killed with
//! the init, and session 0: the init's terminal (`process.terminal`), its
//! `--stdin`, and several clients attached at once. Run as root after
//! `scripts/build-static.sh`.

mod shim_support;

use common::config::{NetworkMode, Profile};
use common::protocol::{self, ExitStatus, FrameBuffer, ManagerMsg, ShimMsg, Stream};
use serde_json::Value;
use shim_support::*;
use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use zctr_tests::{bins, wait_until, Error};

static FILES: AtomicU32 = AtomicU32::new(0);

/// One connection to a container's monitor: every frame it got, and the
/// output of each (session, stream) so far.
struct Conn {
    sock: UnixStream,
    frames: FrameBuffer,
    got: Vec<ShimMsg>,
    out: HashMap<(u32, bool), Vec<u8>>,
}

impl Conn {
    /// Connects and takes the `Hello`.
    fn open(c: &Ctr) -> Conn {
        let sock = UnixStream::connect(c.state.join(common::layout::SOCKET_FILE))
            .unwrap_or_else(|e| panic!("connect: {e}\nshim.log: {}", c.shim_log()));
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut conn = Conn {
            sock,
            frames: FrameBuffer::new(),
            got: Vec::new(),
            out: HashMap::new(),
        };
        conn.wait("Hello", |m| matches!(m, ShimMsg::Hello { .. }));
        conn
    }

    fn send(&mut self, msg: &ManagerMsg) {
        protocol::write_frame(&mut self.sock, msg).unwrap();
    }

    /// Reads until a frame matches `pred` (returned) or [`T`] passes (panic).
    fn wait(&mut self, what: &str, pred: impl Fn(&ShimMsg) -> bool) -> ShimMsg {
        self.try_wait(T, &pred)
            .unwrap_or_else(|| panic!("no {what} within {T:?}; got {:?}", self.summary()))
    }

    fn try_wait(&mut self, limit: Duration, pred: &dyn Fn(&ShimMsg) -> bool) -> Option<ShimMsg> {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 65536];
        loop {
            while let Some(m) = self.frames.next_frame::<ShimMsg>().unwrap() {
                if let ShimMsg::Output {
                    session,
                    stream,
                    data,
                } = &m
                {
                    assert!(data.len() <= protocol::MAX_CHUNK);
                    self.out
                        .entry((*session, is_err(*stream)))
                        .or_default()
                        .extend_from_slice(data);
                }
                self.got.push(m.clone());
                if pred(&m) {
                    return Some(m);
                }
            }
            if Instant::now() >= end {
                return None;
            }
            match self.sock.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.frames.extend(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Waits until `session`'s `stream` holds `needle`.
    fn wait_output(&mut self, session: u32, stream: Stream, needle: &str) {
        let key = (session, is_err(stream));
        let found = |c: &Conn| {
            c.out
                .get(&key)
                .is_some_and(|o| String::from_utf8_lossy(o).contains(needle))
        };
        let end = Instant::now() + T;
        while !found(self) && Instant::now() < end {
            self.try_wait(Duration::from_millis(100), &|_| false);
        }
        assert!(
            found(self),
            "session {session} {stream:?} never showed {needle:?}: {:?}",
            self.text(session, stream)
        );
    }

    fn text(&self, session: u32, stream: Stream) -> String {
        String::from_utf8_lossy(
            self.out
                .get(&(session, is_err(stream)))
                .map_or(&[][..], |v| v),
        )
        .into_owned()
    }

    fn summary(&self) -> Vec<String> {
        self.got
            .iter()
            .map(|m| match m {
                ShimMsg::Output {
                    session,
                    stream,
                    data,
                } => format!(
                    "Output({session}, {stream:?}, {:?})",
                    String::from_utf8_lossy(data)
                ),
                m => format!("{m:?}"),
            })
            .collect()
    }

    /// Sends `Exec`; `Ok((session, pid))` or the `CommandFailed` text.
    fn exec(&mut self, c: &Ctr, ex: &Exec) -> Result<(u32, i32), String> {
        let process = write_process(c, ex.args, ex.tty);
        self.send(&ManagerMsg::Exec {
            shim: ex
                .shim
                .map_or_else(bins::shim, Path::to_path_buf)
                .display()
                .to_string(),
            process: process.display().to_string(),
            tty: ex.tty,
            stdin: ex.stdin,
            detach: ex.detach,
            size: ex.size,
        });
        match self.wait("ExecStarted or CommandFailed", |m| {
            matches!(
                m,
                ShimMsg::ExecStarted { .. } | ShimMsg::CommandFailed { .. }
            )
        }) {
            ShimMsg::ExecStarted { session, pid } => Ok((session, pid)),
            ShimMsg::CommandFailed { message, .. } => Err(message),
            _ => unreachable!(),
        }
    }

    fn exec_ok(&mut self, c: &Ctr, ex: &Exec) -> (u32, i32) {
        self.exec(c, ex)
            .unwrap_or_else(|e| panic!("exec {:?}: {e}\nshim.log: {}", ex.args, c.shim_log()))
    }

    /// A frame matching `pred` already received, or the next one: for
    /// frames that come once (an exit), whatever came between.
    fn seen_or_wait(&mut self, what: &str, pred: impl Fn(&ShimMsg) -> bool) -> ShimMsg {
        match self.got.iter().find(|m| pred(m)) {
            Some(m) => m.clone(),
            None => self.wait(what, pred),
        }
    }

    /// `session`'s `ExecExited` (sent once); returns its status.
    fn exited(&mut self, session: u32) -> ExitStatus {
        match self.seen_or_wait(
            "ExecExited",
            |m| matches!(m, ShimMsg::ExecExited { session: s, .. } if *s == session),
        ) {
            ShimMsg::ExecExited { status, .. } => status,
            _ => unreachable!(),
        }
    }

    fn command_failed(&mut self) -> String {
        self.command_failed_within(T)
    }

    fn command_failed_within(&mut self, limit: Duration) -> String {
        match self
            .try_wait(limit, &|m| matches!(m, ShimMsg::CommandFailed { .. }))
            .unwrap_or_else(|| panic!("no CommandFailed; got {:?}", self.summary()))
        {
            ShimMsg::CommandFailed { message, .. } => message,
            _ => unreachable!(),
        }
    }
}

/// The key of a stream in [`Conn::out`].
fn is_err(stream: Stream) -> bool {
    stream == Stream::Stderr
}

#[derive(Default)]
struct Exec<'a> {
    args: &'a [&'a str],
    tty: bool,
    stdin: bool,
    detach: bool,
    size: Option<(u16, u16)>,
    /// Instead of the built `zctr-shim`.
    shim: Option<&'a Path>,
}

/// The config's process with `args` (and `terminal`), as a file for `Exec`.
fn write_process(c: &Ctr, args: &[&str], tty: bool) -> std::path::PathBuf {
    let mut p = c.spec["process"].clone();
    p["args"] = serde_json::json!(args);
    p["terminal"] = Value::Bool(tty);
    let path = c.tmp.join(format!(
        "process-{}.json",
        FILES.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
    path
}

/// A fixture with busybox in its rootfs, running `args`; `None` is a skip
/// (no static busybox on the host).
fn fixture(args: &[&str]) -> Option<Ctr> {
    fixture_as(Profile::Unprivileged, args)
}

fn fixture_as(profile: Profile, args: &[&str]) -> Option<Ctr> {
    let c = Ctr::new(profile, NetworkMode::Private, args);
    match c.rootfs.with_busybox() {
        Ok(()) => {
            // Beyond the fixture's applets: what the terminal tests run.
            for applet in ["tty", "stty"] {
                c.rootfs
                    .symlink(format!("bin/{applet}"), "busybox")
                    .unwrap();
            }
            Some(c)
        }
        Err(Error::BusyboxUnavailable(why)) => {
            zctr_tests::skip::skip(why);
            None
        }
        Err(e) => panic!("{e}"),
    }
}

/// `zctr-shim create` with `extra` flags (`--stdin`), in the shim's cgroup.
fn create(c: &Ctr, extra: &[&str]) {
    let out = c.create_with(extra);
    assert!(
        out.status.success(),
        "create failed\n{}\nshim.log: {}",
        zctr_tests::describe(&out),
        c.shim_log()
    );
}

/// A started container whose init sleeps.
fn running() -> Option<Ctr> {
    let c = fixture(&["sleep", "1000"])?;
    create(&c, &[]);
    c.ctl_ok("start", &[]);
    c.wait_status("running", |s| s["state"] == "running");
    Some(c)
}

/// The record of `session` in status.json, once `pred` holds for it.
fn exec_record(c: &Ctr, session: u32, pred: impl Fn(&Value) -> bool) -> Value {
    let s = c.wait_status("an exec record", |s| {
        s["execs"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["session"] == session))
            .is_some_and(&pred)
    });
    s["execs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["session"] == session)
        .unwrap()
        .clone()
}

fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| common::state::parse_proc_stat(&s).is_some_and(|st| st.state != 'Z'))
}

#[test]
fn exec_reports_its_exit_code_and_keeps_stdout_and_stderr_apart() {
    if !root_or_skip("exec_reports_its_exit_code") {
        return;
    }
    let Some(c) = running() else { return };
    let mut conn = Conn::open(&c);
    let (s1, pid) = conn.exec_ok(
        &c,
        &Exec {
            args: &["sh", "-c", "echo to-out; echo to-err >&2; exit 7"],
            ..Default::default()
        },
    );
    assert_eq!(s1, 1, "sessions are numbered from 1");
    assert!(pid > 0);
    assert_eq!(conn.exited(s1), ExitStatus::Code(7));
    assert_eq!(conn.text(s1, Stream::Stdout), "to-out\n");
    assert_eq!(conn.text(s1, Stream::Stderr), "to-err\n");
    let rec = exec_record(&c, s1, |r| !r["exit"].is_null());
    assert_eq!(rec["exit"]["code"], 7, "{rec}");
    assert_eq!(rec["pid"], pid);
    assert_eq!(rec["tty"], false);
    // A second one gets the next number; a missing executable is refused
    // with the exec library's message.
    let (s2, _) = conn.exec_ok(
        &c,
        &Exec {
            args: &["true"],
            ..Default::default()
        },
    );
    assert_eq!(s2, 2);
    assert_eq!(conn.exited(s2), ExitStatus::Code(0));
    let err = conn
        .exec(
            &c,
            &Exec {
                args: &["/no/such/thing"],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.contains("/no/such/thing"), "{err}");
    // Nothing of them is left in the container: the init alone.
    assert!(
        wait_until(T, || c.cg.pids().len() == 1),
        "{:?}",
        c.cg.pids()
    );
    // Input to an ended session, and to a session that never was.
    conn.send(&ManagerMsg::Input {
        session: s1,
        data: b"x".to_vec(),
    });
    assert!(conn.command_failed().contains("has ended"));
    conn.send(&ManagerMsg::Attach { session: 99 });
    assert!(conn.command_failed().contains("no session 99"));
}

#[test]
fn exec_stdin_takes_input_until_closed() {
    if !root_or_skip("exec_stdin_takes_input_until_closed") {
        return;
    }
    let Some(c) = running() else { return };
    let mut conn = Conn::open(&c);
    let (s, _) = conn.exec_ok(
        &c,
        &Exec {
            args: &["cat"],
            stdin: true,
            ..Default::default()
        },
    );
    conn.send(&ManagerMsg::Input {
        session: s,
        data: b"hello ".to_vec(),
    });
    conn.send(&ManagerMsg::Input {
        session: s,
        data: b"world\n".to_vec(),
    });
    conn.wait_output(s, Stream::Stdout, "hello world\n");
    conn.send(&ManagerMsg::CloseInput { session: s });
    assert_eq!(conn.exited(s), ExitStatus::Code(0));
    // Without `stdin`, it reads /dev/null and Input is refused.
    let (s2, _) = conn.exec_ok(
        &c,
        &Exec {
            args: &["sh", "-c", "cat; echo eof; sleep 1"],
            ..Default::default()
        },
    );
    conn.send(&ManagerMsg::Input {
        session: s2,
        data: b"x".to_vec(),
    });
    assert!(conn.command_failed().contains("no open input"));
    conn.wait_output(s2, Stream::Stdout, "eof\n");
    assert_eq!(conn.exited(s2), ExitStatus::Code(0));
}

/// The container owns its /dev: a FIFO (or anything else) in place of
/// /dev/ptmx is refused, and the monitor, which opens it, never blocks.
#[test]
fn exec_with_a_tty_refuses_a_dev_ptmx_that_is_not_the_multiplexer() {
    if !root_or_skip("exec_with_a_tty_refuses_a_fake_ptmx") {
        return;
    }
    let Some(c) = running() else { return };
    let mut conn = Conn::open(&c);
    let (s, _) = conn.exec_ok(
        &c,
        &Exec {
            args: &["sh", "-c", "rm -f /dev/ptmx && busybox mkfifo /dev/ptmx"],
            ..Default::default()
        },
    );
    assert_eq!(conn.exited(s), ExitStatus::Code(0));
    let err = conn
        .exec(
            &c,
            &Exec {
                args: &["true"],
                tty: true,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.contains("not the pty multiplexer"), "{err}");
    // The loop goes on.
    let (s, _) = conn.exec_ok(
        &c,
        &Exec {
            args: &["sh", "-c", "exit 5"],
            ..Default::default()
        },
    );
    assert_eq!(conn.exited(s), ExitStatus::Code(5));
}

#[test]
fn exec_with_a_tty_gets_a_pty_of_the_container_and_its_size() {
    if !root_or_skip("exec_with_a_tty") {
        return;
    }
    let Some(c) = running() else { return };
    let mut conn = Conn::open(&c);
    let (s, _) = conn.exec_ok(
        &c,
        &Exec {
            args: &[
                "sh",
                "-c",
                "tty; stty size; echo ready; read x; stty size; exit 3",
            ],
            tty: true,
            stdin: true,
            size: Some((30, 100)),
            ..Default::default()
        },
    );
    conn.wait_output(s, Stream::Stdout, "ready");
    let text = conn.text(s, Stream::Stdout);
    assert!(text.contains("/dev/pts/"), "tty: {text:?}");
    assert!(text.contains("30 100"), "initial size: {text:?}");
    conn.send(&ManagerMsg::Resize {
        session: s,
        rows: 40,
        cols: 120,
    });
    conn.send(&ManagerMsg::Input {
        session: s,
        data: b"go\n".to_vec(),
    });
    conn.wait_output(s, Stream::Stdout, "40 120");
    assert_eq!(conn.exited(s), ExitStatus::Code(3));
    assert!(
        conn.text(s, Stream::Stderr).is_empty(),
        "one stream on a tty"
    );
    assert_eq!(exec_record(&c, s, |r| !r["exit"].is_null())["tty"], true);
    // The pty is one of the container's devpts: the container sees it.
    let (s2, _) = conn.exec_ok(
        &c,
        &Exec {
            args: &["sh", "-c", "ls /dev/pts; tty"],
            tty: true,
            ..Default::default()
        },
    );
    assert_eq!(conn.exited(s2), ExitStatus::Code(0));
    let text = conn.text(s2, Stream::Stdout);
    let name = text
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("/dev/pts/"))
        .unwrap_or_else(|| panic!("no tty name: {text:?}"))
        .to_string();
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().any(|w| w == name)),
        "pts {name} not listed in the container's /dev/pts: {text:?}"
    );
    // A size without a terminal is refused, not ignored.
    let err = conn
        .exec(
            &c,
            &Exec {
                args: &["true"],
                size: Some((1, 1)),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.contains("needs tty"), "{err}");
}

#[test]
fn exec_is_refused_on_created_paused_and_stopped_containers() {
    if !root_or_skip("exec_is_refused") {
        return;
    }
    // No pid namespace of its own (privileged: /proc of the host's pid
    // namespace can be mounted): the orphan of the init keeps its stdout
    // open after the init's exit, so the monitor stays a while (draining).
    let Some(mut c) = fixture_as(
        Profile::Privileged,
        &["sh", "-c", "sleep 1000 & exec sleep 1000"],
    ) else {
        return;
    };
    let ns = c.spec["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "pid");
    create(&c, &[]);
    let mut conn = Conn::open(&c);
    let err = conn
        .exec(
            &c,
            &Exec {
                args: &["true"],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.contains("is not running"), "{err}");
    c.ctl_ok("start", &[]);
    c.wait_status("running", |s| s["state"] == "running");
    let freezer =
        c.cg.v1_dir("freezer")
            .map(|d| (d.join("freezer.state"), "FROZEN", "THAWED"))
            .or_else(|| c.cg.v2_dir().map(|d| (d.join("cgroup.freeze"), "1", "0")));
    if let Some((file, freeze, thaw)) = freezer {
        // The init and the sleep it forks (not there yet right after start).
        assert!(wait_until(Duration::from_secs(60), || c.cg.pids().len() == 2));
        let before = c.cg.pids().len();
        std::fs::write(&file, freeze).unwrap();
        let r = conn.exec(
            &c,
            &Exec {
                args: &["true"],
                ..Default::default()
            },
        );
        std::fs::write(&file, thaw).unwrap();
        let err = r.unwrap_err();
        assert!(err.contains("the container is paused"), "{err}");
        assert_eq!(
            c.cg.pids().len(),
            before,
            "nothing joined the frozen cgroup"
        );
    } else {
        zctr_tests::skip::skip("no freezer on this host");
    }
    let init = c.init_pid();
    c.ctl_ok("kill", &["KILL"]);
    conn.seen_or_wait("Exited", |m| matches!(m, ShimMsg::Exited { .. }));
    assert!(!pid_alive(init));
    let err = conn
        .exec(
            &c,
            &Exec {
                args: &["true"],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.contains("has stopped"), "{err}");
}

#[test]
fn an_exec_outlives_its_client_and_its_end_is_kept() {
    if !root_or_skip("an_exec_outlives_its_client") {
        return;
    }
    let Some(c) = running() else { return };
    let (s, pid) = {
        let mut conn = Conn::open(&c);
        conn.exec_ok(
            &c,
            &Exec {
                args: &["sh", "-c", "sleep 1; echo late-output; exit 5"],
                ..Default::default()
            },
        )
        // The client goes away here.
    };
    assert!(
        wait_until(T, || c.container_log().contains("late-output")),
        "log: {:?}",
        c.container_log()
    );
    let rec = exec_record(&c, s, |r| !r["exit"].is_null());
    assert_eq!(rec["exit"]["code"], 5, "{rec}");
    assert_eq!(rec["pid"], pid);
    // A later client attaching learns the end.
    let mut conn = Conn::open(&c);
    conn.send(&ManagerMsg::Attach { session: s });
    conn.wait(
        "Attached",
        |m| matches!(m, ShimMsg::Attached { session, tty: false } if *session == s),
    );
    assert_eq!(conn.exited(s), ExitStatus::Code(5));
    // Detached: its output goes to the log; another client may attach.
    let (d, _) = conn.exec_ok(
        &c,
        &Exec {
            args: &["sh", "-c", "echo detached-1; sleep 2; echo detached-2"],
            detach: true,
            ..Default::default()
        },
    );
    assert!(
        wait_until(T, || c.container_log().contains("detached-1")),
        "log: {:?}",
        c.container_log()
    );
    let mut other = Conn::open(&c);
    other.send(&ManagerMsg::Attach { session: d });
    other.wait_output(d, Stream::Stdout, "detached-2");
    assert_eq!(other.exited(d), ExitStatus::Code(0));
    // Every connection hears of it, attached or not.
    assert_eq!(conn.exited(d), ExitStatus::Code(0));
    assert!(!conn.text(d, Stream::Stdout).contains("detached"));
}

#[test]
fn exec_processes_die_with_the_init() {
    if !root_or_skip("exec_processes_die_with_the_init") {
        return;
    }
    let Some(c) = running() else { return };
    let mut conn = Conn::open(&c);
    let (s, pid) = conn.exec_ok(
        &c,
        &Exec {
            args: &["sleep", "1000"],
            ..Default::default()
        },
    );
    assert!(pid_alive(pid));
    conn.send(&ManagerMsg::Kill { signal: 9 });
    conn.seen_or_wait("Exited", |m| matches!(m, ShimMsg::Exited { .. }));
    assert_eq!(conn.exited(s), ExitStatus::Signal(9));
    assert!(!pid_alive(pid));
    let st = c.wait_status("stopped", |s| s["state"] == "stopped");
    let rec = st["execs"].as_array().unwrap()[0].clone();
    assert_eq!(rec["exit"]["signal"], 9, "{st}");
}

#[test]
fn the_init_gets_a_terminal_of_its_own_with_its_size() {
    if !root_or_skip("the_init_gets_a_terminal") {
        return;
    }
    let Some(mut c) = fixture(&[
        "sh",
        "-c",
        "tty; stty size; echo ready; read x; stty size; echo got-$x",
    ]) else {
        return;
    };
    c.spec["process"]["terminal"] = Value::Bool(true);
    c.spec["process"]["consoleSize"] = serde_json::json!({"height": 25, "width": 90});
    create(&c, &["--stdin"]);
    let mut conn = Conn::open(&c);
    conn.send(&ManagerMsg::Attach { session: 0 });
    conn.wait("Attached", |m| {
        matches!(
            m,
            ShimMsg::Attached {
                session: 0,
                tty: true
            }
        )
    });
    conn.send(&ManagerMsg::Start);
    conn.wait_output(0, Stream::Stdout, "ready");
    let text = conn.text(0, Stream::Stdout);
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("25 90"), "process.consoleSize: {text:?}");
    conn.send(&ManagerMsg::Resize {
        session: 0,
        rows: 50,
        cols: 132,
    });
    conn.send(&ManagerMsg::Input {
        session: 0,
        data: b"yes\n".to_vec(),
    });
    conn.wait_output(0, Stream::Stdout, "got-yes");
    assert!(conn.text(0, Stream::Stdout).contains("50 132"));
    conn.seen_or_wait("Exited", |m| {
        matches!(
            m,
            ShimMsg::Exited {
                status: ExitStatus::Code(0),
                ..
            }
        )
    });
    // Logged as stdout, like the init's pipe.
    assert!(
        wait_until(T, || c.container_log().contains("got-yes")),
        "{:?}",
        c.container_log()
    );
}

#[test]
fn two_clients_see_the_init_and_its_stdin_reads_input() {
    if !root_or_skip("two_clients_see_the_init") {
        return;
    }
    let Some(c) = fixture(&["sh", "-c", "read x; echo hello-$x; read y; echo bye-$y >&2"]) else {
        return;
    };
    create(&c, &["--stdin"]);
    let mut a = Conn::open(&c);
    let mut b = Conn::open(&c);
    for conn in [&mut a, &mut b] {
        conn.send(&ManagerMsg::Attach { session: 0 });
        conn.wait("Attached", |m| {
            matches!(
                m,
                ShimMsg::Attached {
                    session: 0,
                    tty: false
                }
            )
        });
    }
    a.send(&ManagerMsg::Start);
    a.send(&ManagerMsg::Input {
        session: 0,
        data: b"both\nlast\n".to_vec(),
    });
    a.send(&ManagerMsg::CloseInput { session: 0 });
    for conn in [&mut a, &mut b] {
        conn.wait_output(0, Stream::Stdout, "hello-both\n");
        conn.wait_output(0, Stream::Stderr, "bye-last\n");
        conn.seen_or_wait("Exited", |m| matches!(m, ShimMsg::Exited { .. }));
    }
    assert!(
        wait_until(T, || c.container_log().contains("hello-both")),
        "{:?}",
        c.container_log()
    );
}

#[test]
fn without_stdin_the_init_reads_dev_null_and_input_is_refused() {
    if !root_or_skip("without_stdin_the_init_reads_dev_null") {
        return;
    }
    let Some(c) = fixture(&["sh", "-c", "cat; echo cat-done; sleep 1000"]) else {
        return;
    };
    create(&c, &[]);
    let mut conn = Conn::open(&c);
    conn.send(&ManagerMsg::Attach { session: 0 });
    conn.send(&ManagerMsg::Start);
    conn.wait_output(0, Stream::Stdout, "cat-done");
    conn.send(&ManagerMsg::Input {
        session: 0,
        data: b"x".to_vec(),
    });
    assert!(conn.command_failed().contains("no open input"));
    conn.send(&ManagerMsg::Resize {
        session: 0,
        rows: 1,
        cols: 1,
    });
    assert!(conn.command_failed().contains("has no terminal"));
}

#[test]
fn a_client_that_does_not_read_holds_output_back_until_it_is_dropped() {
    if !root_or_skip("a_client_that_does_not_read") {
        return;
    }
    let Some(c) = running() else { return };
    let mut slow = Conn::open(&c);
    let started = Instant::now();
    let (s, _) = slow.exec_ok(
        &c,
        &Exec {
            args: &[
                "sh",
                "-c",
                "head -c 8000000 /dev/zero; echo end-of-flood >&2",
            ],
            ..Default::default()
        },
    );
    // `slow` reads nothing more. The monitor still serves others at once.
    std::thread::sleep(Duration::from_secs(1));
    let mut other = Conn::open(&c);
    other.send(&ManagerMsg::Status);
    other.wait("Hello", |m| matches!(m, ShimMsg::Hello { .. }));
    // Backpressure: the process is held back by the full client...
    std::thread::sleep(Duration::from_secs(1));
    let st = c.status().unwrap();
    let rec = st["execs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["session"] == s)
        .unwrap()
        .clone();
    assert!(rec["exit"].is_null(), "not held back: {rec}");
    // ...until the client is dropped (stalled for 5 s): the rest goes to
    // the log and the process ends.
    assert_eq!(other.exited(s), ExitStatus::Code(0));
    assert!(
        started.elapsed() >= Duration::from_millis(4500),
        "ended after {:?}",
        started.elapsed()
    );
    assert!(
        wait_until(T, || c.container_log().contains("end-of-flood")),
        "the output after the drop is not in the log"
    );
}

#[test]
fn a_helper_that_does_not_report_is_not_waited_for() {
    if !root_or_skip("a_helper_that_does_not_report") {
        return;
    }
    let Some(c) = running() else { return };
    let script = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt;
        let p = c.tmp.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    };
    let silent = script("silent-shim", "exit 3");
    let stuck = script("stuck-shim", "exec sleep 1000");
    let mut conn = Conn::open(&c);
    let err = conn
        .exec(
            &c,
            &Exec {
                args: &["true"],
                shim: Some(&silent),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(err.contains("without a report"), "{err}");
    let started = Instant::now();
    let ask = Exec {
        args: &["true"],
        shim: Some(&stuck),
        ..Default::default()
    };
    conn.send(&ManagerMsg::Exec {
        shim: stuck.display().to_string(),
        process: write_process(&c, ask.args, false).display().to_string(),
        tty: false,
        stdin: false,
        detach: false,
        size: None,
    });
    // The helper holds its stdio and the report pipe, nothing of the
    // monitor's (socket, log pipes, channel).
    let monitor = c.shim_pid() as u32;
    let mut helper = None;
    assert!(wait_until(T, || {
        helper = c.shim_cg.pids().into_iter().find(|&p| p != monitor);
        helper.is_some_and(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .is_ok_and(|e| e.to_string_lossy().contains("sleep") || e.ends_with("busybox"))
        })
    }));
    // Above stdio: the report pipe, and maybe the fake's own script file
    // (a shell may keep it open: busybox sh does); no socket, no other pipe.
    let dir = format!("/proc/{}/fd", helper.unwrap());
    let fds: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let to = std::fs::read_link(e.path()).unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                to.to_string_lossy().into_owned(),
            )
        })
        .filter(|(n, _)| n.parse::<u32>().is_ok_and(|n| n > 2))
        .collect();
    let pipes = fds.iter().filter(|(_, t)| t.starts_with("pipe:")).count();
    let others = fds
        .iter()
        .filter(|(_, t)| !t.starts_with("pipe:") && !t.ends_with("stuck-shim"))
        .count();
    assert_eq!((pipes, others), (1, 0), "the helper's fds: {fds:?}");
    // The loop goes on meanwhile: another exec starts and ends.
    let (s, _) = conn.exec_ok(
        &c,
        &Exec {
            args: &["sh", "-c", "exit 4"],
            ..Default::default()
        },
    );
    assert_eq!(conn.exited(s), ExitStatus::Code(4));
    let err = conn.command_failed_within(Duration::from_secs(90));
    assert!(err.contains("did not report"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(25));
    // The stuck helper was killed: the monitor alone is left in its cgroup.
    assert!(
        wait_until(T, || c.shim_cg.pids().len() == 1),
        "{:?}",
        c.shim_cg.pids()
    );
}
