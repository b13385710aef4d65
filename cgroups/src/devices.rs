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
#[path = "devices_tests.rs"]
mod tests;
