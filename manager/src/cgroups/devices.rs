//! OCI device cgroup rules (`linux.resources.devices`) compiled to the
//! instructions of a `BPF_PROG_TYPE_CGROUP_DEVICE` program, for cgroup2,
//! which has no devices controller. Pure: no syscalls (loading is `bpf`'s job).
//!
//! The kernel runs the program for every device access with
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`,
//! `access_type = (access << 16) | type`; it returns 1 to allow, 0 to deny.
//!
//! The rules are evaluated like the spec and runc do: the last matching rule
//! wins, and nothing matching means deny. So the program tests the rules from
//! the last to the first and returns at the first match:
//!
//! ```text
//!     r2 = type; r3 = access; r4 = major; r5 = minor      (prologue)
//!     per rule, last first:
//!         if r2 != TYPE goto next                         (unless type a)
//!         if r4 != MAJOR goto next                        (unless major *)
//!         if r5 != MINOR goto next                        (unless minor *)
//!         r1 = r3 & MASK; if r1 ... goto next             (unless access rwm)
//!         r0 = ALLOW; exit
//!     next: ...
//!     r0 = 0; exit                                        (default deny)
//! ```
//!
//! Access: an allow rule matches when it grants every requested access (the
//! kernel asks for `rw` at once for `O_RDWR`); a deny rule matches when it
//! names any requested access. That is what the v1 devices controller does
//! with the same rules, so a hybrid host gets the same answer from both. A
//! rule that matches everything ends the program: the verifier rejects
//! unreachable instructions, and the rules before it could never decide.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// One eBPF instruction, laid out like the kernel's `struct bpf_insn`
/// (`code`, `dst_reg:4` in the low and `src_reg:4` in the high nibble, `off`, `imm`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const _: () = assert!(std::mem::size_of::<Insn>() == 8);

// Instruction classes, sizes, modes, operations and sources (linux/bpf_common.h, linux/bpf.h).
const BPF_LDX: u8 = 0x01;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R4: u8 = 4;
pub const R5: u8 = 5;

// enum bpf_devcg_dev_type / bpf_devcg_acc_type.
pub const DEV_BLOCK: u32 = 1;
pub const DEV_CHAR: u32 = 2;
pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;
pub const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Self {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }

    /// `dst = *(u32 *)(src + off)` (zero-extended).
    pub const fn ldx_w(dst: u8, src: u8, off: i16) -> Self {
        Self::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }

    /// `dst &= imm`.
    pub const fn and_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm)
    }

    /// `dst >>= imm` (logical).
    pub const fn rsh_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm)
    }

    /// `dst = imm`.
    pub const fn mov_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
    }

    /// `dst = src`.
    pub const fn mov_reg(dst: u8, src: u8) -> Self {
        Self::new(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
    }

    /// `if dst == imm goto pc + 1 + off`.
    pub const fn jeq_imm(dst: u8, imm: i32, off: i16) -> Self {
        Self::new(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, off, imm)
    }

    /// `if dst != imm goto pc + 1 + off`.
    pub const fn jne_imm(dst: u8, imm: i32, off: i16) -> Self {
        Self::new(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm)
    }

    /// Return `r0`.
    pub const fn exit() -> Self {
        Self::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }

    const fn is_cond_jump(self) -> bool {
        self.code == BPF_JMP | BPF_JEQ | BPF_K || self.code == BPF_JMP | BPF_JNE | BPF_K
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeviceRuleError {
    #[error("linux.resources.devices[{index}]: type {typ:?} is not a, b, c or u")]
    Type { index: usize, typ: &'static str },
    #[error("linux.resources.devices[{index}]: access {access:?} has letters other than r, w, m")]
    Access { index: usize, access: String },
    #[error(
        "linux.resources.devices[{index}]: {field} {value} is neither -1 (any) nor 0..=2147483647"
    )]
    Number {
        index: usize,
        field: &'static str,
        value: i64,
    },
}

/// One device rule, checked and in the kernel's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// `DEV_BLOCK` or `DEV_CHAR`; `None` is every type (`a`).
    pub dev_type: Option<u32>,
    /// `None` is any major (`*`).
    pub major: Option<u32>,
    /// `None` is any minor (`*`).
    pub minor: Option<u32>,
    /// `ACC_*` bits; a missing access is `rwm`.
    pub access: u32,
}

impl Rule {
    pub fn parse(index: usize, d: &LinuxDeviceCgroup) -> Result<Self, DeviceRuleError> {
        let dev_type = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
            LinuxDeviceType::P => return Err(DeviceRuleError::Type { index, typ: "p" }),
        };
        let number = |field, v: Option<i64>| match v {
            None | Some(-1) => Ok(None),
            // The immediate of a BPF compare is a sign-extended i32.
            Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
            Some(value) => Err(DeviceRuleError::Number {
                index,
                field,
                value,
            }),
        };
        let access = match d.access().as_deref() {
            None => ACC_ALL,
            Some(s) => s.chars().try_fold(0, |acc, c| match c {
                'r' => Ok(acc | ACC_READ),
                'w' => Ok(acc | ACC_WRITE),
                'm' => Ok(acc | ACC_MKNOD),
                _ => Err(DeviceRuleError::Access {
                    index,
                    access: s.to_string(),
                }),
            })?,
        };
        Ok(Self {
            allow: d.allow(),
            dev_type,
            major: number("major", d.major())?,
            minor: number("minor", d.minor())?,
            access,
        })
    }
}

/// Checks every rule, in order.
pub fn parse(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, DeviceRuleError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| Rule::parse(i, r))
        .collect()
}

/// The program for `rules` (see the module documentation).
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        Insn::ldx_w(R2, R1, 0),
        Insn::and_imm(R2, 0xffff),
        Insn::ldx_w(R3, R1, 0),
        Insn::rsh_imm(R3, 16),
        Insn::ldx_w(R4, R1, 4),
        Insn::ldx_w(R5, R1, 8),
    ];
    for rule in rules.iter().rev() {
        if rule.access == 0 {
            continue; // grants or denies nothing: never matches
        }
        let mut block = checks(rule);
        let unconditional = block.is_empty();
        block.push(Insn::mov_imm(R0, i32::from(rule.allow)));
        block.push(Insn::exit());
        // Every check jumps past the end of its block, to the next rule.
        let len = block.len();
        for (i, insn) in block.iter_mut().enumerate() {
            if insn.is_cond_jump() {
                insn.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
        if unconditional {
            return p;
        }
    }
    p.push(Insn::mov_imm(R0, 0));
    p.push(Insn::exit());
    p
}

/// The tests of one rule, each a jump to the next rule (offset patched later).
fn checks(rule: &Rule) -> Vec<Insn> {
    let mut c = Vec::new();
    if let Some(t) = rule.dev_type {
        c.push(Insn::jne_imm(R2, t as i32, 0));
    }
    if let Some(m) = rule.major {
        c.push(Insn::jne_imm(R4, m as i32, 0));
    }
    if let Some(m) = rule.minor {
        c.push(Insn::jne_imm(R5, m as i32, 0));
    }
    if rule.access != ACC_ALL {
        c.push(Insn::mov_reg(R1, R3));
        if rule.allow {
            // Anything asked for beyond what the rule grants: not this rule.
            c.push(Insn::and_imm(R1, (ACC_ALL & !rule.access) as i32));
            c.push(Insn::jne_imm(R1, 0, 0));
        } else {
            // Nothing asked for that the rule denies: not this rule.
            c.push(Insn::and_imm(R1, rule.access as i32));
            c.push(Insn::jeq_imm(R1, 0, 0));
        }
    }
    c
}

/// Checks `rules` and compiles them.
pub fn compile(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Insn>, DeviceRuleError> {
    Ok(program(&parse(rules)?))
}

#[cfg(test)]
mod tests {
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
}
