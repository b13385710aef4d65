//! `linux.seccomp` of the OCI runtime spec compiled to a classic BPF program
//! for `seccomp(SECCOMP_SET_MODE_FILTER)`: a pure function, run by the shim in
//! its plan phase (before clone) so the child only hands a ready program to the
//! kernel.
//!
//! Why a small compiler of our own and not the `seccompiler` crate (rust-vmm):
//! seccompiler gives one filter a single match action for all its rules, while
//! an OCI profile gives every rule its own action (`ALLOW` for most,
//! `ERRNO(ENOSYS)` for clone3, `ERRNO(EPERM)` elsewhere) and wants `NOTIFY`,
//! `TRACE` and `LOG`, which it lacks; stacking one seccompiler filter per action
//! would not give the OCI meaning (the kernel takes the most restrictive result
//! over all filters). libseccomp is C and would break the static musl build.
//! The program below is a linear list of comparisons (a few hundred
//! instructions for the default profile; the kernel's per-syscall cache of
//! constant results skips it for most calls), each sequence unit-tested through
//! the interpreter in the tests.
//!
//! Layout of the program:
//! 1. architecture: `AUDIT_ARCH_X86_64` goes on; `AUDIT_ARCH_I386` jumps to
//!    the i386 section (6.) when the profile lists `SCMP_ARCH_X86`, any other
//!    architecture is killed (`KILL_PROCESS`, like libseccomp's bad-arch action).
//! 2. x32 calls (number with `__X32_SYSCALL_BIT`): the default action when the
//!    profile lists `SCMP_ARCH_X32`, else killed.
//!
//!    zctr carries the full x86_64 syscall table and only a short i386 one
//!    (the calls the privileged default denies): on i386, the unconditional
//!    rules apply to the calls of that table and every other call gets the
//!    default action. Listing `SCMP_ARCH_X86` with an allowing default action
//!    (`ALLOW`, `LOG`) is refused when a rule that does not allow names a
//!    call outside that table, or has conditions: its i386 calls would
//!    escape the rule. x32 rules are never applied, so listing `SCMP_ARCH_X32`
//!    with an allowing default is refused. Other architectures (ARM, ...)
//!    cannot occur on an x86_64 kernel: listing them has no effect.
//! 3. when the default action does not allow: numbers above the highest known
//!    syscall return `ENOSYS` (as runc does), so a libc probing a newer call
//!    falls back instead of failing with `EPERM`.
//! 4. the rules, in the profile's order; the first rule that matches a call
//!    gives its action (libseccomp resolves overlapping rules by its own
//!    priorities; profiles whose rules do not overlap, like zctr's defaults,
//!    mean the same in both). Several conditions in one rule must all hold.
//! 5. the default action.
//! 6. with `SCMP_ARCH_X86` listed and a rule that applies there, the i386
//!    section: its rules (i386 numbers), then the default action.
//!
//! Syscall names unknown to the x86_64 table are skipped, as runc does with
//! libseccomp: profiles list calls of other architectures and newer kernels.
//!
//! `SCMP_ACT_NOTIFY` returns `SECCOMP_RET_USER_NOTIF`, and the program's
//! flags then ask for a listener (`FLAG_NEW_LISTENER`), which the shim hands
//! to the seccomp agent at `listenerPath` (see `check_notify` for what is
//! refused with it, and why).

mod option;
mod profiles;
mod table;

pub use option::SeccompOption;
pub use profiles::{default_profile, NAMESPACE_FLAGS, PRIVILEGED_DENIED, UNPRIVILEGED_REFUSED};

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};
use thiserror::Error;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A compiled filter: the instructions and the `seccomp()` flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub insns: Vec<Insn>,
    pub flags: u32,
}

/// Why a profile cannot be compiled; each names what it refuses.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SeccompError {
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY is refused (as runc does): the init's own calls after the filter is installed, among them the hand-off of the listener, would wait for an agent that has no listener yet; notify chosen calls in syscalls[] instead")]
    NotifyDefault,
    #[error("linux.seccomp.syscalls[{rule}]: SCMP_ACT_NOTIFY on {HANDOFF_SYSCALL} is refused: the init hands the listener to the shim with {HANDOFF_SYSCALL} right after installing the filter, so it would wait for itself")]
    NotifyHandoff { rule: usize },
    #[error("linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath (the seccomp agent's Unix socket)")]
    NoListener,
    #[error("linux.seccomp.listenerMetadata: set without listenerPath")]
    MetadataWithoutPath,
    #[error("linux.seccomp.listenerPath: {0}")]
    ListenerPath(String),
    #[error("linux.seccomp.flags: {0} needs SCMP_ACT_NOTIFY")]
    Flag(&'static str),
    #[error("linux.seccomp.architectures: {arch} is listed with an allowing default action; zctr has no syscall table for it, so its calls would escape every rule")]
    ForeignArchAllowed { arch: &'static str },
    #[error("linux.seccomp.syscalls[{rule}]: {name} {why} on i386, and SCMP_ARCH_X86 is listed with an allowing default action, so its i386 calls would escape the rule")]
    I386Unruled {
        rule: usize,
        name: String,
        why: &'static str,
    },
    #[error("linux.seccomp.syscalls[{rule}]: no syscall names")]
    NoNames { rule: usize },
    #[error("linux.seccomp.syscalls[{rule}]: argument index {index} (at most 5)")]
    ArgIndex { rule: usize, index: usize },
    #[error("linux.seccomp.syscalls[{rule}]: {op} needs valueTwo")]
    ValueTwo { rule: usize, op: &'static str },
    #[error("{field}: errno {value} out of range (ERRNO: 1..=4095, TRACE: 0..=65535)")]
    ErrnoRange { field: String, value: u32 },
    #[error("{field}: errnoRet given for {action}, which returns no errno")]
    ErrnoUnused { field: String, action: &'static str },
    #[error("linux.seccomp.syscalls[{rule}]: too many conditions")]
    RuleTooLong { rule: usize },
    #[error("linux.seccomp: the filter has {0} instructions, more than the kernel's 4096")]
    TooLong(usize),
}

// Classic BPF opcodes.
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RET_K: u16 = 0x06;
const JA: u16 = 0x05; // BPF_JMP | BPF_JA: jump k forward

// seccomp return values.
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// seccomp() flags.
pub const FLAG_TSYNC: u32 = 1;
pub const FLAG_LOG: u32 = 2;
pub const FLAG_SPEC_ALLOW: u32 = 4;
/// Set by the compiler when a rule notifies: `seccomp()` returns a listener fd.
pub const FLAG_NEW_LISTENER: u32 = 8;
/// With TSYNC and a listener (which the kernel refuses together otherwise).
pub const FLAG_TSYNC_ESRCH: u32 = 16;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// The call with which the container's init hands the listener fd to the
/// shim, right after the filter is installed: it must not be notified.
pub const HANDOFF_SYSCALL: &str = "sendmsg";
/// `sun_path` holds 108 bytes with the terminating NUL.
const SUN_PATH_MAX: usize = 107;

const ENOSYS: u32 = 38;
const EPERM: u32 = 1;
const MAX_INSNS: usize = 4096;
/// `struct seccomp_data`: nr at 0, arch at 4, args at 16 + 8 * i (little endian).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

fn off_arg(index: usize, high: bool) -> u32 {
    16 + 8 * index as u32 + if high { 4 } else { 0 }
}

/// The i386 number of a syscall name: `Some(None)` when it does not exist on
/// i386, `None` when zctr does not know it.
pub fn syscall_nr_i386(name: &str) -> Option<Option<u32>> {
    table::I386
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, nr)| nr)
}

/// The x86_64 number of a syscall name, None when unknown.
pub fn syscall_nr(name: &str) -> Option<u32> {
    table::X86_64
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, nr)| nr)
}

fn max_nr() -> u32 {
    table::X86_64.iter().map(|&(_, nr)| nr).max().unwrap_or(0)
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

fn action_name(a: LinuxSeccompAction) -> &'static str {
    use LinuxSeccompAction::*;
    match a {
        ScmpActKill => "SCMP_ACT_KILL",
        ScmpActKillThread => "SCMP_ACT_KILL_THREAD",
        ScmpActKillProcess => "SCMP_ACT_KILL_PROCESS",
        ScmpActTrap => "SCMP_ACT_TRAP",
        ScmpActErrno => "SCMP_ACT_ERRNO",
        ScmpActNotify => "SCMP_ACT_NOTIFY",
        ScmpActTrace => "SCMP_ACT_TRACE",
        ScmpActLog => "SCMP_ACT_LOG",
        ScmpActAllow => "SCMP_ACT_ALLOW",
    }
}

/// The seccomp return value of `action` (ERRNO and TRACE default to EPERM, as
/// in runc); `field` names the rule in errors.
fn ret_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<u32, SeccompError> {
    use LinuxSeccompAction::*;
    let data = |max: u32| -> Result<u32, SeccompError> {
        let v = errno_ret.unwrap_or(EPERM);
        if v > max {
            return Err(SeccompError::ErrnoRange {
                field: field.to_string(),
                value: v,
            });
        }
        Ok(v)
    };
    if errno_ret.is_some() && !matches!(action, ScmpActErrno | ScmpActTrace) {
        return Err(SeccompError::ErrnoUnused {
            field: field.to_string(),
            action: action_name(action),
        });
    }
    Ok(match action {
        ScmpActKill | ScmpActKillThread => RET_KILL_THREAD,
        ScmpActKillProcess => RET_KILL_PROCESS,
        ScmpActTrap => RET_TRAP,
        ScmpActErrno => RET_ERRNO | data(4095)?,
        ScmpActTrace => RET_TRACE | data(0xffff)?,
        ScmpActLog => RET_LOG,
        ScmpActAllow => RET_ALLOW,
        ScmpActNotify => RET_USER_NOTIF,
    })
}

/// A jump target inside one rule block: relative, or the block's fail exit.
#[derive(Clone, Copy)]
enum J {
    Rel(u8),
    Fail,
}

struct Pending {
    code: u16,
    k: u32,
    jt: J,
    jf: J,
}

fn ld(off: u32) -> Pending {
    Pending {
        code: LD_W_ABS,
        k: off,
        jt: J::Rel(0),
        jf: J::Rel(0),
    }
}

fn jmp(code: u16, k: u32, jt: J, jf: J) -> Pending {
    Pending { code, k, jt, jf }
}

fn and(k: u32) -> Pending {
    Pending {
        code: AND_K,
        k,
        jt: J::Rel(0),
        jf: J::Rel(0),
    }
}

/// The instructions that fall through when `arg` holds and jump to the block's
/// fail exit when it does not (64-bit comparisons, high word first).
fn condition(rule: usize, arg: &LinuxSeccompArg) -> Result<Vec<Pending>, SeccompError> {
    use LinuxSeccompOperator::*;
    let i = arg.index();
    if i > 5 {
        return Err(SeccompError::ArgIndex { rule, index: i });
    }
    let (hi, lo) = (off_arg(i, true), off_arg(i, false));
    let v = arg.value();
    let (vh, vl) = ((v >> 32) as u32, v as u32);
    let ok = J::Rel(0);
    let fail = J::Fail;
    Ok(match arg.op() {
        ScmpCmpEq => vec![
            ld(hi),
            jmp(JEQ_K, vh, ok, fail),
            ld(lo),
            jmp(JEQ_K, vl, ok, fail),
        ],
        // Holds when either word differs.
        ScmpCmpNe => vec![
            ld(hi),
            jmp(JEQ_K, vh, ok, J::Rel(2)),
            ld(lo),
            jmp(JEQ_K, vl, fail, ok),
        ],
        ScmpCmpGt | ScmpCmpGe => {
            let last = if arg.op() == ScmpCmpGt { JGT_K } else { JGE_K };
            vec![
                ld(hi),
                jmp(JGT_K, vh, J::Rel(3), ok),
                jmp(JEQ_K, vh, ok, fail),
                ld(lo),
                jmp(last, vl, ok, fail),
            ]
        }
        // LT = not GE, LE = not GT.
        ScmpCmpLt | ScmpCmpLe => {
            let last = if arg.op() == ScmpCmpLe { JGT_K } else { JGE_K };
            vec![
                ld(hi),
                jmp(JGT_K, vh, fail, ok),
                jmp(JEQ_K, vh, ok, J::Rel(2)),
                ld(lo),
                jmp(last, vl, fail, ok),
            ]
        }
        ScmpCmpMaskedEq => {
            let want = arg.value_two().ok_or(SeccompError::ValueTwo {
                rule,
                op: "SCMP_CMP_MASKED_EQ",
            })?;
            vec![
                ld(hi),
                and(vh),
                jmp(JEQ_K, (want >> 32) as u32, ok, fail),
                ld(lo),
                and(vl),
                jmp(JEQ_K, want as u32, ok, fail),
            ]
        }
    })
}

/// One syscall number with conditions: `jeq nr`, the conditions, `ret`, and a
/// reload of the number that failed conditions land on.
fn conditional_block(
    out: &mut Vec<Insn>,
    rule: usize,
    nr: u32,
    conds: &[Pending],
    ret: u32,
) -> Result<(), SeccompError> {
    let body = conds.len() + 2; // conditions, ret, reload
    if body > 255 {
        return Err(SeccompError::RuleTooLong { rule });
    }
    out.push(jump(JEQ_K, nr, 0, body as u8));
    let fail_at = conds.len() + 1; // index of the reload within the body
    for (i, p) in conds.iter().enumerate() {
        let resolve = |j: J| match j {
            J::Rel(r) => r,
            J::Fail => (fail_at - i - 1) as u8,
        };
        out.push(jump(p.code, p.k, resolve(p.jt), resolve(p.jf)));
    }
    out.push(stmt(RET_K, ret));
    out.push(stmt(LD_W_ABS, OFF_NR));
    Ok(())
}

/// Unconditional rule: `jeq n1 → ret; jeq n2 → ret; ...; ret`, in chunks that
/// keep every jump within 255.
fn unconditional_block(out: &mut Vec<Insn>, nrs: &[u32], ret: u32) {
    for chunk in nrs.chunks(200) {
        let k = chunk.len();
        for (i, &nr) in chunk.iter().enumerate() {
            if i + 1 == k {
                out.push(jump(JEQ_K, nr, 0, 1));
            } else {
                out.push(jump(JEQ_K, nr, (k - 1 - i) as u8, 0));
            }
        }
        out.push(stmt(RET_K, ret));
    }
}

/// The program's i386 part (empty when no rule applies there): each
/// unconditional rule, for the names of the i386 table, then the default.
/// Under an allowing default, a rule that does not allow must not be
/// escaped by i386 calls: every name it lists must be in the table (with its
/// number, or known not to exist on i386) and it must have no conditions.
fn i386_section(
    profile: &LinuxSeccomp,
    default: u32,
    default_allows: bool,
) -> Result<Vec<Insn>, SeccompError> {
    let mut out = vec![stmt(LD_W_ABS, OFF_NR)];
    for (rule, sc) in profile.syscalls().iter().flatten().enumerate() {
        let allows = matches!(
            sc.action(),
            LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
        );
        let conditional = sc.args().as_ref().is_some_and(|a| !a.is_empty());
        let must_hold = default_allows && !allows;
        let mut nrs = Vec::new();
        for name in sc.names() {
            match syscall_nr_i386(name) {
                Some(Some(_)) if conditional && must_hold => {
                    return Err(SeccompError::I386Unruled {
                        rule,
                        name: name.clone(),
                        why: "has argument conditions, which zctr does not apply",
                    })
                }
                Some(Some(nr)) => nrs.push(nr),
                Some(None) => {}
                // Also a name x86_64 lacks (`socketcall`, ...): it may
                // exist on i386.
                None if must_hold => {
                    return Err(SeccompError::I386Unruled {
                        rule,
                        name: name.clone(),
                        why: "has no number known to zctr",
                    })
                }
                None => {}
            }
        }
        // A conditional rule is left out: its calls get the default, which
        // does not allow, or the rule allows too (checked above).
        if !conditional && !nrs.is_empty() {
            let ret = ret_value(
                sc.action(),
                sc.errno_ret(),
                &format!("linux.seccomp.syscalls[{rule}].errnoRet"),
            )?;
            unconditional_block(&mut out, &nrs, ret);
        }
    }
    if out.len() == 1 {
        return Ok(Vec::new());
    }
    out.push(stmt(RET_K, default));
    Ok(out)
}

fn foreign_arch_name(a: Arch) -> Option<&'static str> {
    match a {
        Arch::ScmpArchX86 => Some("SCMP_ARCH_X86"),
        Arch::ScmpArchX32 => Some("SCMP_ARCH_X32"),
        _ => None,
    }
}

/// Whether `profile` notifies (`SCMP_ACT_NOTIFY` in a rule), after checking
/// what goes with it: a `listenerPath` (absolute, fits `sun_path`), never the
/// default action, never [`HANDOFF_SYSCALL`]; `listenerMetadata` only with a
/// path. A `listenerPath` without a notifying rule is ignored, as the runtime
/// spec says (nothing is sent).
fn check_notify(profile: &LinuxSeccomp) -> Result<bool, SeccompError> {
    let path = profile.listener_path().as_ref();
    if profile.listener_metadata().is_some() && path.is_none() {
        return Err(SeccompError::MetadataWithoutPath);
    }
    if let Some(p) = path {
        crate::rules::check_host_path(p).map_err(|v| SeccompError::ListenerPath(v.to_string()))?;
        if p.as_os_str().len() > SUN_PATH_MAX {
            return Err(SeccompError::ListenerPath(format!(
                "longer than {SUN_PATH_MAX} bytes (a Unix socket address)"
            )));
        }
    }
    if profile.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let mut notify = false;
    for (rule, sc) in profile.syscalls().iter().flatten().enumerate() {
        if sc.action() == LinuxSeccompAction::ScmpActNotify {
            notify = true;
            if sc.names().iter().any(|n| n == HANDOFF_SYSCALL) {
                return Err(SeccompError::NotifyHandoff { rule });
            }
        }
    }
    if notify && path.is_none() {
        return Err(SeccompError::NoListener);
    }
    Ok(notify)
}

/// Compiles `profile` for x86_64. See the module doc for the program's layout.
pub fn compile(profile: &LinuxSeccomp) -> Result<Program, SeccompError> {
    let notify = check_notify(profile)?;
    let default = ret_value(
        profile.default_action(),
        profile.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    let default_allows = matches!(
        profile.default_action(),
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
    );

    let mut flags = 0;
    for f in profile.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if notify => {
                FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::Flag("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"))
            }
        };
    }
    if notify {
        flags |= FLAG_NEW_LISTENER;
        if flags & FLAG_TSYNC != 0 {
            flags |= FLAG_TSYNC_ESRCH;
        }
    }

    let (mut x86, mut x32) = (false, false);
    for &a in profile.architectures().iter().flatten() {
        match a {
            Arch::ScmpArchNative | Arch::ScmpArchX86_64 => {}
            Arch::ScmpArchX86 => x86 = true,
            Arch::ScmpArchX32 => x32 = true,
            // Never reported by an x86_64 kernel: their calls cannot occur
            // (and would be killed by the architecture check).
            _ => {}
        }
        // i386 calls are ruled by the short i386 table (see `i386_section`).
        if default_allows && a != Arch::ScmpArchX86 {
            if let Some(arch) = foreign_arch_name(a) {
                return Err(SeccompError::ForeignArchAllowed { arch });
            }
        }
    }
    let i386 = if x86 {
        i386_section(profile, default, default_allows)?
    } else {
        Vec::new()
    };

    let mut out = vec![
        stmt(LD_W_ABS, OFF_ARCH),
        jump(JEQ_K, AUDIT_ARCH_X86_64, 3, 0),
        jump(JEQ_K, AUDIT_ARCH_I386, 0, 1),
        // Patched into a jump to the i386 section when there is one.
        stmt(RET_K, if x86 { default } else { RET_KILL_PROCESS }),
        stmt(RET_K, RET_KILL_PROCESS),
        stmt(LD_W_ABS, OFF_NR),
        jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(RET_K, if x32 { default } else { RET_KILL_PROCESS }),
    ];
    if !default_allows {
        out.push(jump(JGT_K, max_nr(), 0, 1));
        out.push(stmt(RET_K, RET_ERRNO | ENOSYS));
    }

    for (rule, sc) in profile.syscalls().iter().flatten().enumerate() {
        if sc.names().is_empty() {
            return Err(SeccompError::NoNames { rule });
        }
        let ret = ret_value(
            sc.action(),
            sc.errno_ret(),
            &format!("linux.seccomp.syscalls[{rule}].errnoRet"),
        )?;
        let mut conds = Vec::new();
        for a in sc.args().iter().flatten() {
            conds.extend(condition(rule, a)?);
        }
        let nrs: Vec<u32> = sc.names().iter().filter_map(|n| syscall_nr(n)).collect();
        if conds.is_empty() {
            unconditional_block(&mut out, &nrs, ret);
        } else {
            for nr in nrs {
                conditional_block(&mut out, rule, nr, &conds, ret)?;
            }
        }
    }
    out.push(stmt(RET_K, default));
    if !i386.is_empty() {
        out[3] = stmt(JA, (out.len() - 4) as u32);
        out.extend(i386);
    }
    if out.len() > MAX_INSNS {
        return Err(SeccompError::TooLong(out.len()));
    }
    Ok(Program { insns: out, flags })
}

#[cfg(test)]
mod tests;
