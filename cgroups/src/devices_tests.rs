use super::*;
use oci_spec::runtime::LinuxDeviceCgroupBuilder;

impl Insn {
    fn dst(self) -> u8 {
        self.regs & 0x0f
    }

    fn src(self) -> u8 {
        self.regs >> 4
    }
}

/// Runs `prog` on one access the way the kernel would, for the
/// instructions `program` emits; panics on anything else, on a jump out
/// of the program and on a missing exit.
fn run(prog: &[Insn], dev_type: u32, major: u32, minor: u32, access: u32) -> bool {
    let ctx = [(access << 16) | dev_type, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..=prog.len() {
        let i = prog[pc];
        let (d, s) = (i.dst() as usize, i.src() as usize);
        let imm = i.imm as i64 as u64; // sign-extended, as the kernel does
        let target = (pc as isize + 1 + i.off as isize) as usize;
        pc += 1;
        match i.code {
            0x61 => {
                assert_eq!(s, 1, "loads only from the context (r1)");
                assert!(i.off >= 0 && i.off % 4 == 0 && i.off < 12, "{i:?}");
                r[d] = u64::from(ctx[i.off as usize / 4]);
            }
            0x57 => r[d] &= imm,
            0x77 => r[d] >>= imm,
            0xb7 => r[d] = imm,
            0xbf => r[d] = r[s],
            0x15 if r[d] == imm => pc = target,
            0x55 if r[d] != imm => pc = target,
            0x15 | 0x55 => {}
            0x95 => {
                assert!(r[0] <= 1, "returns 0 or 1");
                return r[0] == 1;
            }
            c => panic!("unexpected opcode {c:#x}"),
        }
        assert!(pc < prog.len(), "ran off the end of the program");
    }
    panic!("no exit (a loop?)");
}

/// What the verifier checks statically: no jump out of the program,
/// backwards or into nowhere, no unreachable instruction, ends in exit.
fn check_cfg(prog: &[Insn]) {
    let mut seen = vec![false; prog.len()];
    let mut todo = vec![0usize];
    while let Some(pc) = todo.pop() {
        if std::mem::replace(&mut seen[pc], true) {
            continue;
        }
        let i = prog[pc];
        if i == Insn::exit() {
            continue;
        }
        if i.is_cond_jump() {
            assert!(i.off >= 0, "backward jump at {pc}");
            let t = pc + 1 + i.off as usize;
            assert!(t < prog.len(), "jump out of the program at {pc}");
            todo.push(t);
        }
        assert!(pc + 1 < prog.len(), "falls off the end at {pc}");
        todo.push(pc + 1);
    }
    let unreachable: Vec<_> = (0..prog.len()).filter(|&i| !seen[i]).collect();
    assert!(unreachable.is_empty(), "unreachable: {unreachable:?}");
}

fn rule(
    allow: bool,
    typ: &str,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        "u" => LinuxDeviceType::U,
        _ => LinuxDeviceType::P,
    };
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().unwrap()
}

const C: u32 = DEV_CHAR;
const B: u32 = DEV_BLOCK;
const R: u32 = ACC_READ;
const W: u32 = ACC_WRITE;
const M: u32 = ACC_MKNOD;
const RW: u32 = ACC_READ | ACC_WRITE;

/// Compiles `rules`, checks the program's shape, and checks each
/// `(type, major, minor, access, allowed)` both against the program
/// and against a direct reading of the rules.
fn expect(rules: &[LinuxDeviceCgroup], cases: &[(u32, u32, u32, u32, bool)]) {
    let prog = compile(rules).unwrap();
    check_cfg(&prog);
    let parsed = parse(rules).unwrap();
    for &(t, maj, min, acc, want) in cases {
        let got = run(&prog, t, maj, min, acc);
        assert_eq!(got, want, "type {t} {maj}:{min} access {acc:#b}");
        assert_eq!(reference(&parsed, t, maj, min, acc), want, "reference");
    }
    // Beyond the hand-picked cases: every combination on a small grid.
    for t in [B, C] {
        for maj in [0, 1, 5, 8, 136] {
            for min in [0, 1, 2, 3, 5, 9] {
                for acc in 1..=ACC_ALL {
                    assert_eq!(
                        run(&prog, t, maj, min, acc),
                        reference(&parsed, t, maj, min, acc),
                        "grid: type {t} {maj}:{min} access {acc:#b}"
                    );
                }
            }
        }
    }
}

/// The rules read directly: last match wins, default deny.
fn reference(rules: &[Rule], t: u32, maj: u32, min: u32, acc: u32) -> bool {
    rules
        .iter()
        .rev()
        .find(|r| {
            r.dev_type.is_none_or(|x| x == t)
                && r.major.is_none_or(|x| x == maj)
                && r.minor.is_none_or(|x| x == min)
                && if r.allow {
                    acc & !r.access == 0
                } else {
                    acc & r.access != 0
                }
        })
        .is_some_and(|r| r.allow)
}

#[test]
fn instructions_encode_like_the_kernel_expects() {
    let bytes = |i: Insn| -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = i.code;
        b[1] = i.regs;
        b[2..4].copy_from_slice(&i.off.to_le_bytes());
        b[4..].copy_from_slice(&i.imm.to_le_bytes());
        b
    };
    assert_eq!(
        bytes(Insn::ldx_w(R2, R1, 4)),
        [0x61, 0x12, 4, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        bytes(Insn::and_imm(R2, 0xffff)),
        [0x57, 0x02, 0, 0, 0xff, 0xff, 0, 0]
    );
    assert_eq!(
        bytes(Insn::rsh_imm(R3, 16)),
        [0x77, 0x03, 0, 0, 16, 0, 0, 0]
    );
    assert_eq!(bytes(Insn::mov_imm(R0, 1)), [0xb7, 0x00, 0, 0, 1, 0, 0, 0]);
    assert_eq!(bytes(Insn::mov_reg(R1, R3)), [0xbf, 0x31, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        bytes(Insn::jne_imm(R4, 136, 3)),
        [0x55, 0x04, 3, 0, 136, 0, 0, 0]
    );
    assert_eq!(
        bytes(Insn::jeq_imm(R1, 0, 2)),
        [0x15, 0x01, 2, 0, 0, 0, 0, 0]
    );
    assert_eq!(bytes(Insn::exit()), [0x95, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn deny_all_then_allow_the_unprivileged_nodes() {
    let mut rules = vec![rule(false, "a", None, None, "rwm")];
    for (maj, min) in [(1, Some(3)), (1, Some(5)), (1, Some(7)), (1, Some(8))] {
        rules.push(rule(true, "c", Some(maj), min, "rwm"));
    }
    rules.push(rule(true, "c", Some(1), Some(9), "rwm"));
    rules.push(rule(true, "c", Some(5), Some(0), "rwm"));
    rules.push(rule(true, "c", Some(5), Some(2), "rwm"));
    rules.push(rule(true, "c", Some(136), None, "rwm"));
    expect(
        &rules,
        &[
            (C, 1, 3, RW, true), // null
            (C, 1, 3, M, true),  // mknod null
            (C, 1, 5, R, true),  // zero
            (C, 1, 7, W, true),  // full
            (C, 1, 8, R, true),  // random
            (C, 1, 9, R, true),  // urandom
            (C, 5, 0, RW, true), // tty
            (C, 5, 2, RW, true), // ptmx
            (C, 136, 0, RW, true),
            (C, 136, 4711, RW, true), // any pts
            (C, 1, 1, R, false),      // mem
            (C, 1, 2, R, false),
            (C, 5, 1, RW, false), // console
            (C, 10, 200, RW, false),
            (B, 1, 3, R, false), // a block device 1:3 is not /dev/null
            (B, 8, 0, RW, false),
            (B, 136, 0, R, false),
        ],
    );
}

#[test]
fn allow_all_is_one_unconditional_rule() {
    let rules = [rule(true, "a", None, None, "rwm")];
    let prog = compile(&rules).unwrap();
    assert_eq!(
        &prog[prog.len() - 2..],
        &[Insn::mov_imm(R0, 1), Insn::exit()]
    );
    assert_eq!(prog.len(), 8, "prologue + allow; no default deny after it");
    expect(
        &rules,
        &[
            (C, 1, 3, RW, true),
            (B, 8, 0, RW | M, true),
            (C, 4095, 1 << 19, M, true),
        ],
    );
}

#[test]
fn no_rules_deny_everything() {
    expect(&[], &[(C, 1, 3, R, false), (B, 8, 0, W, false)]);
}

#[test]
fn the_last_matching_rule_wins() {
    // allow all, deny c 1:*, allow c 1:3 again
    let rules = [
        rule(true, "a", None, None, "rwm"),
        rule(false, "c", Some(1), None, "rwm"),
        rule(true, "c", Some(1), Some(3), "rwm"),
    ];
    expect(
        &rules,
        &[
            (C, 1, 3, RW, true),
            (C, 1, 5, R, false),
            (C, 1, 9, M, false),
            (B, 1, 5, R, true),
            (C, 5, 0, RW, true),
        ],
    );
    // The same rules, the order of the last two swapped: the deny wins.
    let rules = [rules[0].clone(), rules[2].clone(), rules[1].clone()];
    expect(&rules, &[(C, 1, 3, RW, false), (C, 5, 0, RW, true)]);
    // A deny-all at the end overrides every earlier allow (and ends the program).
    let rules = [
        rule(true, "c", Some(1), Some(3), "rwm"),
        rule(false, "a", None, None, "rwm"),
    ];
    assert_eq!(compile(&rules).unwrap().len(), 8);
    expect(&rules, &[(C, 1, 3, R, false)]);
}

#[test]
fn wildcard_major_or_minor() {
    let rules = [
        rule(true, "c", None, Some(3), "rwm"),    // c *:3
        rule(true, "b", Some(8), None, "rwm"),    // b 8:*
        rule(true, "c", Some(-1), Some(-1), "r"), // c *:* r, -1 is a wildcard too
    ];
    expect(
        &rules,
        &[
            (C, 1, 3, RW, true),
            (C, 77, 3, M, true),
            (C, 77, 4, R, true),
            (C, 77, 4, W, false),
            (B, 8, 0, RW, true),
            (B, 8, 17, M, true),
            (B, 9, 0, R, false),
            (B, 1, 3, R, false),
        ],
    );
}

#[test]
fn partial_access() {
    // rw on /dev/null allows open for read and write, not mknod.
    let rules = [
        rule(false, "a", None, None, "rwm"),
        rule(true, "c", Some(1), Some(3), "rw"),
        rule(true, "c", Some(1), Some(5), "r"),
    ];
    expect(
        &rules,
        &[
            (C, 1, 3, R, true),
            (C, 1, 3, W, true),
            (C, 1, 3, RW, true),
            (C, 1, 3, M, false),
            (C, 1, 5, R, true),
            (C, 1, 5, W, false),
            (C, 1, 5, RW, false), // O_RDWR needs both
        ],
    );
    // A partial deny after allow-all: any overlap with the request denies.
    let rules = [
        rule(true, "a", None, None, "rwm"),
        rule(false, "c", Some(1), Some(3), "w"),
        rule(false, "b", None, None, "m"),
    ];
    expect(
        &rules,
        &[
            (C, 1, 3, R, true),
            (C, 1, 3, W, false),
            (C, 1, 3, RW, false),
            (C, 1, 3, M, true),
            (B, 8, 0, RW, true),
            (B, 8, 0, M, false),
        ],
    );
    // An empty access grants and denies nothing.
    let rules = [
        rule(true, "a", None, None, "rwm"),
        rule(false, "c", Some(1), Some(3), ""),
    ];
    expect(&rules, &[(C, 1, 3, RW | M, true)]);
}

#[test]
fn missing_type_and_access_mean_all() {
    let r = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .major(1)
        .build()
        .unwrap();
    let parsed = Rule::parse(0, &r).unwrap();
    assert_eq!(parsed.dev_type, None);
    assert_eq!(parsed.access, ACC_ALL);
    expect(
        &[r],
        &[
            (C, 1, 3, RW | M, true),
            (B, 1, 0, M, true),
            (C, 2, 0, R, false),
        ],
    );
    // u is a character device.
    let u = rule(true, "u", Some(1), Some(3), "r");
    expect(&[u], &[(C, 1, 3, R, true), (B, 1, 3, R, false)]);
}

#[test]
fn bad_rules_are_rejected_with_their_index() {
    let ok = rule(true, "c", Some(1), Some(3), "rwm");
    let cases = [
        rule(true, "p", None, None, "rwm"),
        rule(true, "c", Some(1), Some(3), "rwx"),
        rule(true, "c", Some(-2), None, "rwm"),
        rule(true, "c", Some(1), Some(1 << 31), "rwm"),
    ];
    for bad in cases {
        let e = compile(&[ok.clone(), bad.clone()]).unwrap_err();
        assert!(
            e.to_string().starts_with("linux.resources.devices[1]: "),
            "{e}"
        );
    }
    assert!(matches!(
        compile(&[rule(true, "c", Some(1), Some(1 << 31), "r")]),
        Err(DeviceRuleError::Number { index: 0, field: "minor", value }) if value == 1 << 31
    ));
}
