use super::*;
use crate::config::Profile;
use oci_spec::runtime::Capability;

/// Runs `prog` on one call as the kernel would; panics on anything the
/// kernel's checker would refuse (jump out of range, unknown opcode, falling
/// off the end).
fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog[pc];
        pc += 1;
        let cond = |c: bool| if c { i.jt as usize } else { i.jf as usize };
        match i.code {
            LD_W_ABS => {
                let k = i.k as usize;
                assert!(k.is_multiple_of(4) && k + 4 <= 64);
                a = u32::from_le_bytes(data[k..k + 4].try_into().unwrap());
            }
            JEQ_K => pc += cond(a == i.k),
            JGT_K => pc += cond(a > i.k),
            JGE_K => pc += cond(a >= i.k),
            AND_K => a &= i.k,
            RET_K => return i.k,
            JA => pc += i.k as usize,
            c => panic!("unknown opcode {c:#x}"),
        }
        assert!(pc < prog.len(), "ran off the end");
    }
}

fn nr(name: &str) -> u32 {
    syscall_nr(name).unwrap()
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

fn call(p: &Program, name: &str, args: [u64; 6]) -> u32 {
    run(&p.insns, AUDIT_ARCH_X86_64, nr(name), args)
}

const EPERM_RET: u32 = RET_ERRNO | 1;

#[test]
fn every_operator_compares_all_64_bits() {
    type Op = (&'static str, fn(u64, u64) -> bool);
    let ops: [Op; 6] = [
        ("SCMP_CMP_EQ", |a: u64, v: u64| a == v),
        ("SCMP_CMP_NE", |a: u64, v: u64| a != v),
        ("SCMP_CMP_LT", |a: u64, v: u64| a < v),
        ("SCMP_CMP_LE", |a: u64, v: u64| a <= v),
        ("SCMP_CMP_GE", |a: u64, v: u64| a >= v),
        ("SCMP_CMP_GT", |a: u64, v: u64| a > v),
    ];
    let values = [
        0u64,
        1,
        5,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0005,
        0x2_0000_0000,
        u64::MAX,
    ];
    for (op, f) in ops {
        for v in values {
            let p = compile(&profile(&format!(
                r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["read"],
                "action":"SCMP_ACT_ERRNO","errnoRet":7,
                "args":[{{"index":2,"value":{v},"op":"{op}"}}]}}]}}"#
            )))
            .unwrap();
            for a in values {
                let want = if f(a, v) { RET_ERRNO | 7 } else { RET_ALLOW };
                assert_eq!(
                    call(&p, "read", [0, 0, a, 0, 0, 0]),
                    want,
                    "{op} arg {a:#x} value {v:#x}"
                );
            }
            // Other calls are not concerned.
            assert_eq!(call(&p, "write", [0, 0, v, 0, 0, 0]), RET_ALLOW);
        }
    }
}

#[test]
fn masked_eq_and_several_conditions_must_all_hold() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["socket"],
        "action":"SCMP_ACT_ALLOW","args":[
          {"index":0,"value":2,"op":"SCMP_CMP_EQ"},
          {"index":1,"value":15,"valueTwo":1,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
    ))
    .unwrap();
    assert_eq!(call(&p, "socket", [2, 1, 0, 0, 0, 0]), RET_ALLOW);
    // SOCK_STREAM | SOCK_CLOEXEC
    assert_eq!(call(&p, "socket", [2, 0x80001, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call(&p, "socket", [2, 3, 0, 0, 0, 0]), EPERM_RET);
    assert_eq!(call(&p, "socket", [10, 1, 0, 0, 0, 0]), EPERM_RET);
    assert_eq!(call(&p, "socket", [2 | 1 << 32, 1, 0, 0, 0, 0]), EPERM_RET);
}

#[test]
fn masked_eq_without_value_two_is_refused() {
    let e = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
        "action":"SCMP_ACT_KILL","args":[{"index":0,"value":1,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("valueTwo"), "{e}");
}

#[test]
fn every_action_has_its_return_value() {
    for (action, extra, want) in [
        ("SCMP_ACT_ALLOW", "", RET_ALLOW),
        ("SCMP_ACT_ERRNO", "", RET_ERRNO | 1),
        ("SCMP_ACT_ERRNO", r#","errnoRet":95"#, RET_ERRNO | 95),
        ("SCMP_ACT_KILL", "", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", "", RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", "", RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", "", RET_TRAP),
        ("SCMP_ACT_LOG", "", RET_LOG),
        ("SCMP_ACT_TRACE", r#","errnoRet":3"#, RET_TRACE | 3),
    ] {
        let p = compile(&profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":22,
            "syscalls":[{{"names":["getpid","gettid"],"action":"{action}"{extra}}}]}}"#
        )))
        .unwrap();
        assert_eq!(call(&p, "getpid", [0; 6]), want, "{action}");
        assert_eq!(call(&p, "gettid", [0; 6]), want, "{action}");
        assert_eq!(call(&p, "getppid", [0; 6]), RET_ERRNO | 22, "{action}");
    }
}

#[test]
fn notify_returns_user_notif_and_asks_for_a_listener() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock",
        "listenerMetadata":"m","flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert_eq!(call(&p, "mkdir", [0; 6]), RET_USER_NOTIF);
    assert_eq!(call(&p, "mkdirat", [0; 6]), RET_USER_NOTIF);
    assert_eq!(call(&p, "getpid", [0; 6]), RET_ALLOW);
    assert_eq!(
        p.flags,
        FLAG_TSYNC | FLAG_TSYNC_ESRCH | FLAG_WAIT_KILLABLE_RECV | FLAG_NEW_LISTENER
    );
    // A listenerPath without a notifying rule is ignored (runtime spec):
    // no listener is asked for, nothing will be sent.
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock"}"#,
    ))
    .unwrap();
    assert_eq!(p.flags, 0);
}

#[test]
fn notify_without_what_it_needs_is_refused_by_name() {
    for (json, want) in [
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
            SeccompError::NoListener,
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_NOTIFY","listenerPath":"/run/a.sock"}"#,
            SeccompError::NotifyDefault,
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/a.sock","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ERRNO"},
            {"names":["mkdir","sendmsg"],"action":"SCMP_ACT_NOTIFY"}]}"#,
            SeccompError::NotifyHandoff { rule: 1 },
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerMetadata":"m"}"#,
            SeccompError::MetadataWithoutPath,
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
            SeccompError::Flag("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
        ),
    ] {
        assert_eq!(compile(&profile(json)).unwrap_err(), want, "{json}");
    }
    for (path, want) in [
        ("agent.sock", "absolute"),
        ("/run/../agent.sock", ".."),
        (&format!("/{}", "a".repeat(107)), "longer than 107"),
    ] {
        let e = compile(&profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"{path}",
            "syscalls":[{{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}}]}}"#
        )))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("listenerPath") && e.contains(want),
            "{path}: {e}"
        );
    }
    let e = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/a.sock","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY","errnoRet":1}]}"#,
    ))
    .unwrap_err();
    assert!(e.to_string().contains("returns no errno"), "{e}");
}

#[test]
fn unknown_actions_and_operators_are_refused_by_serde_by_name() {
    let e =
        serde_json::from_str::<LinuxSeccomp>(r#"{"defaultAction":"SCMP_ACT_FOO"}"#).unwrap_err();
    assert!(e.to_string().contains("SCMP_ACT_FOO"), "{e}");
    let e = serde_json::from_str::<LinuxSeccomp>(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],
        "action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_BAR"}]}]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("SCMP_CMP_BAR"), "{e}");
}

#[test]
fn bad_values_are_refused() {
    for (json, want) in [
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            "argument index 6",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}"#,
            "no syscall names",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":5000}"#,
            "errno 5000",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}"#,
            "SCMP_ACT_ALLOW",
        ),
    ] {
        let e = compile(&profile(json)).unwrap_err().to_string();
        assert!(e.contains(want), "{json}: {e}");
    }
}

#[test]
fn flags_are_passed_on() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"]}"#,
    ))
    .unwrap();
    assert_eq!(p.flags, FLAG_LOG | FLAG_SPEC_ALLOW | FLAG_TSYNC);
}

#[test]
fn architectures_other_than_x86_64_get_the_default_or_die() {
    let listed = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64"],
        "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    // i386 getpid is 20, x86_64's 20 is writev: the rule must not apply.
    assert_eq!(run(&listed.insns, AUDIT_ARCH_I386, 20, [0; 6]), EPERM_RET);
    assert_eq!(
        run(
            &listed.insns,
            AUDIT_ARCH_X86_64,
            nr("getpid") | X32_SYSCALL_BIT,
            [0; 6]
        ),
        EPERM_RET
    );
    assert_eq!(
        run(&listed.insns, 0xc00000b7, 172, [0; 6]),
        RET_KILL_PROCESS
    );
    let native = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    assert_eq!(
        run(&native.insns, AUDIT_ARCH_I386, 20, [0; 6]),
        RET_KILL_PROCESS
    );
    assert_eq!(
        run(
            &native.insns,
            AUDIT_ARCH_X86_64,
            nr("getpid") | X32_SYSCALL_BIT,
            [0; 6]
        ),
        RET_KILL_PROCESS
    );
    assert_eq!(call(&native, "getpid", [0; 6]), RET_ALLOW);
}

#[test]
fn unknown_names_are_skipped_and_unknown_numbers_get_enosys() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["no_such_call","getpid","socketcall"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    assert_eq!(call(&p, "getpid", [0; 6]), RET_ALLOW);
    assert_eq!(
        run(&p.insns, AUDIT_ARCH_X86_64, 1000, [0; 6]),
        RET_ERRNO | 38
    );
    // An allowing default lets unknown numbers through like everything else.
    let allow = compile(&profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#)).unwrap();
    assert_eq!(
        run(&allow.insns, AUDIT_ARCH_X86_64, 1000, [0; 6]),
        RET_ALLOW
    );
}

#[test]
fn the_first_matching_rule_wins() {
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
        {"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":5,"args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"}]},
        {"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":6}]}"#,
    ))
    .unwrap();
    assert_eq!(call(&p, "read", [3, 0, 0, 0, 0, 0]), RET_ERRNO | 5);
    assert_eq!(call(&p, "read", [4, 0, 0, 0, 0, 0]), RET_ERRNO | 6);
}

#[test]
fn long_allowlists_keep_jumps_in_range() {
    let names: Vec<String> = table::X86_64
        .iter()
        .map(|(n, _)| format!("\"{n}\""))
        .collect();
    let p = compile(&profile(&format!(
        r#"{{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[{{"names":[{}],"action":"SCMP_ACT_ALLOW"}}]}}"#,
        names.join(",")
    )))
    .unwrap();
    for &(_, n) in table::X86_64 {
        assert_eq!(run(&p.insns, AUDIT_ARCH_X86_64, n, [0; 6]), RET_ALLOW);
    }
    assert_eq!(
        run(&p.insns, AUDIT_ARCH_X86_64, 400, [0; 6]),
        RET_KILL_PROCESS
    );
}

fn default_unprivileged() -> Program {
    let caps = crate::capability::UNPRIVILEGED;
    compile(&default_profile(Profile::Unprivileged, &caps).unwrap()).unwrap()
}

#[test]
fn the_unprivileged_default_refuses_the_dangerous_calls() {
    let p = default_unprivileged();
    assert!(p.insns.len() < 1000, "{} instructions", p.insns.len());
    for name in UNPRIVILEGED_REFUSED {
        assert_eq!(call(&p, name, [0; 6]), EPERM_RET, "{name}");
    }
    assert_eq!(call(&p, "clone3", [0; 6]), RET_ERRNO | 38);
    // clone/unshare: plain fork and thread flags pass, namespaces do not.
    assert_eq!(call(&p, "clone", [0x11, 0, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call(&p, "clone", [0x3d0f00, 0, 0, 0, 0, 0]), RET_ALLOW);
    for flag in [0x1000_0000u64, 0x0002_0000, 0x4000_0000, 0x2000_0000] {
        assert_eq!(call(&p, "clone", [flag | 0x11, 0, 0, 0, 0, 0]), EPERM_RET);
        assert_eq!(call(&p, "unshare", [flag, 0, 0, 0, 0, 0]), EPERM_RET);
    }
    assert_eq!(call(&p, "unshare", [0x400, 0, 0, 0, 0, 0]), RET_ALLOW);
    // sockets: AF_PACKET and raw inet refused although NET_RAW is held.
    assert_eq!(call(&p, "socket", [17, 3, 0, 0, 0, 0]), EPERM_RET);
    assert_eq!(call(&p, "socket", [2, 3, 0, 0, 0, 0]), EPERM_RET);
    assert_eq!(call(&p, "socket", [10, 0x80003, 0, 0, 0, 0]), EPERM_RET);
    assert_eq!(call(&p, "socket", [2, 1, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call(&p, "socket", [2, 0x80002, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call(&p, "socket", [1, 1, 0, 0, 0, 0]), RET_ALLOW);
    assert_eq!(call(&p, "socket", [16, 3, 0, 0, 0, 0]), RET_ALLOW);
    for name in [
        "read", "write", "execve", "openat", "mmap", "chroot", "ptrace",
    ] {
        assert_eq!(call(&p, name, [0; 6]), RET_ALLOW, "{name}");
    }
    assert_eq!(
        call(&p, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        call(&p, "personality", [0x0040_0000, 0, 0, 0, 0, 0]),
        EPERM_RET
    );
}

#[test]
fn capabilities_open_their_groups() {
    let without_chroot: Vec<Capability> = crate::capability::UNPRIVILEGED
        .into_iter()
        .filter(|c| *c != Capability::SysChroot)
        .collect();
    let p = compile(&default_profile(Profile::Unprivileged, &without_chroot).unwrap()).unwrap();
    assert_eq!(call(&p, "chroot", [0; 6]), EPERM_RET);

    let mut admin = crate::capability::UNPRIVILEGED.to_vec();
    admin.push(Capability::SysAdmin);
    let p = compile(&default_profile(Profile::Unprivileged, &admin).unwrap()).unwrap();
    for name in [
        "mount",
        "setns",
        "unshare",
        "clone3",
        "bpf",
        "perf_event_open",
    ] {
        assert_eq!(
            call(&p, name, [0x1000_0000, 0, 0, 0, 0, 0]),
            RET_ALLOW,
            "{name}"
        );
    }
    assert_eq!(call(&p, "kexec_load", [0; 6]), EPERM_RET);
}

#[test]
fn the_privileged_default_refuses_only_kernel_loading() {
    let p =
        compile(&default_profile(Profile::Privileged, &crate::capability::ALL).unwrap()).unwrap();
    for name in PRIVILEGED_DENIED {
        assert_eq!(call(&p, name, [0; 6]), EPERM_RET, "{name}");
    }
    for name in ["mount", "unshare", "io_uring_setup", "reboot", "bpf"] {
        assert_eq!(call(&p, name, [0; 6]), RET_ALLOW, "{name}");
    }
    // i386 programs run: everything is allowed but the same calls, by their
    // i386 numbers (getpid 20, write 4, socketcall 102, ...).
    for nr in [1, 3, 4, 11, 20, 102, 120, 127 + 500, 243, 400] {
        assert_eq!(
            run(&p.insns, AUDIT_ARCH_I386, nr, [0; 6]),
            RET_ALLOW,
            "{nr}"
        );
    }
    for nr in [127, 128, 129, 283, 350] {
        assert_eq!(
            run(&p.insns, AUDIT_ARCH_I386, nr, [0; 6]),
            EPERM_RET,
            "{nr}"
        );
    }
    // x32 is not listed: killed.
    assert_eq!(
        run(&p.insns, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 39, [0; 6]),
        RET_KILL_PROCESS
    );
}

#[test]
fn kcmp_needs_cap_sys_ptrace() {
    assert_eq!(call(&default_unprivileged(), "kcmp", [0; 6]), EPERM_RET);
    let mut caps = crate::capability::UNPRIVILEGED.to_vec();
    caps.push(Capability::SysPtrace);
    let p = compile(&default_profile(Profile::Unprivileged, &caps).unwrap()).unwrap();
    assert_eq!(call(&p, "kcmp", [0; 6]), RET_ALLOW);
    assert_eq!(call(&p, "ptrace", [0; 6]), RET_ALLOW);
}

#[test]
fn an_allowing_default_with_x86_listed_needs_i386_numbers_for_its_denials() {
    // Known i386 numbers (or known absent there): compiled, applied on i386.
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
        "syscalls":[{"names":["init_module","kexec_file_load"],"action":"SCMP_ACT_ERRNO","errnoRet":13},
                    {"names":["getpid","socketcall"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    assert_eq!(run(&p.insns, AUDIT_ARCH_I386, 128, [0; 6]), RET_ERRNO | 13);
    assert_eq!(run(&p.insns, AUDIT_ARCH_I386, 129, [0; 6]), RET_ALLOW);
    assert_eq!(call(&p, "init_module", [0; 6]), RET_ERRNO | 13);
    assert_eq!(call(&p, "kexec_file_load", [0; 6]), RET_ERRNO | 13);
    assert_eq!(call(&p, "getpid", [0; 6]), RET_ALLOW);
    // A denial zctr cannot place on i386 is refused, naming the call.
    for (json, want) in [
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],
            "syscalls":[{"names":["init_module","mount"],"action":"SCMP_ACT_ERRNO"}]}"#,
            "syscalls[0]: mount has no number known to zctr on i386",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_LOG","architectures":["SCMP_ARCH_X86"],
            "syscalls":[{"names":["socketcall"],"action":"SCMP_ACT_KILL"}]}"#,
            "socketcall has no number",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86"],
            "syscalls":[{"names":["getpid"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["kexec_load"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            "syscalls[1]: kexec_load has argument conditions",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32"]}"#,
            "SCMP_ARCH_X32",
        ),
    ] {
        let e = compile(&profile(json)).unwrap_err().to_string();
        assert!(e.contains(want), "{json}: {e}");
    }
    // With a refusing default, i386 calls outside the table get the default.
    let p = compile(&profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],
        "syscalls":[{"names":["mount","finit_module"],"action":"SCMP_ACT_ALLOW"}]}"#,
    ))
    .unwrap();
    assert_eq!(run(&p.insns, AUDIT_ARCH_I386, 350, [0; 6]), RET_ALLOW);
    assert_eq!(run(&p.insns, AUDIT_ARCH_I386, 21, [0; 6]), EPERM_RET);
    assert_eq!(call(&p, "mount", [0; 6]), RET_ALLOW);
}

#[test]
fn the_table_is_sorted_and_unique() {
    for w in table::X86_64.windows(2) {
        assert!(w[0].1 < w[1].1, "{:?} {:?}", w[0], w[1]);
    }
    assert_eq!(syscall_nr("read"), Some(0));
    assert_eq!(syscall_nr("clone3"), Some(435));
    assert_eq!(syscall_nr("io_uring_setup"), Some(425));
    assert_eq!(syscall_nr("fchmodat2"), Some(452));
}
