//! The two `bpf(2)` calls zctr makes: load a cgroup device program
//! (`BPF_PROG_LOAD`, with the verifier's log when it is refused) and attach it
//! to a cgroup2 directory (`BPF_PROG_ATTACH`, `BPF_F_ALLOW_MULTI`).
//!
//! The one module of `cgroups` that needs `unsafe`: the syscall takes a
//! pointer to a `union bpf_attr` that the kernel reads, and a log buffer it
//! writes. Only the leading fields of the union are declared; the kernel
//! zero-fills the rest up to its own size.
#![allow(unsafe_code)]

use super::devices::Insn;
use nix::errno::Errno;
use std::ffi::{c_int, c_uint, CStr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

// enum bpf_cmd, bpf_prog_type, bpf_attach_type and the attach flags (linux/bpf.h).
const BPF_PROG_LOAD: c_int = 5;
const BPF_PROG_ATTACH: c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;

/// Device programs call no helper, so the license only has to be a string.
const LICENSE: &CStr = c"Apache-2.0";
/// Shown by `bpftool prog` (at most 15 bytes and a NUL).
const PROG_NAME: [u8; 16] = *b"zctr_devices\0\0\0\0";
/// Room for the verifier's log of a refused program.
const LOG_SIZE: usize = 64 * 1024;
/// How often a load is retried when the kernel says EAGAIN (as libbpf does).
const EAGAIN_RETRIES: usize = 5;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

const _: () = assert!(std::mem::size_of::<ProgLoadAttr>() == 72);
const _: () = assert!(std::mem::size_of::<ProgAttachAttr>() == 20);

/// A refused load: the errno of the first attempt and the verifier's log of
/// the second (empty when it said nothing, e.g. for EPERM).
#[derive(Debug)]
pub struct LoadFailure {
    pub errno: Errno,
    pub log: String,
}

/// `bpf(cmd, attr, sizeof attr)`; a non-negative result or the errno.
fn sys_bpf<T>(cmd: c_int, attr: &mut T) -> Result<i64, Errno> {
    // SAFETY: `attr` is an initialised `#[repr(C)]` prefix of `union bpf_attr`
    // (no padding bytes) that lives across the call, and its exact size is
    // passed; any pointer inside it refers to memory the caller keeps alive
    // (and, for the log, writable) until the call returns.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as c_uint,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn prog_load(insns: &[Insn], log: Option<&mut [u8]>) -> Result<OwnedFd, Errno> {
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| Errno::E2BIG)?,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        prog_name: PROG_NAME,
        ..Default::default()
    };
    if let Some(buf) = log {
        attr.log_level = 1;
        attr.log_size = u32::try_from(buf.len()).map_err(|_| Errno::E2BIG)?;
        attr.log_buf = buf.as_mut_ptr() as u64;
    }
    let mut tries = 0;
    let fd = loop {
        match sys_bpf(BPF_PROG_LOAD, &mut attr) {
            Err(Errno::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            r => break r?,
        }
    };
    // SAFETY: a successful BPF_PROG_LOAD returns a new fd (close-on-exec)
    // that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Loads `insns` as a `BPF_PROG_TYPE_CGROUP_DEVICE` program. The first try
/// is without a log (a too small log buffer would fail a good program); a
/// refused program is loaded again with one, to say why.
pub fn load_device_program(insns: &[Insn]) -> Result<OwnedFd, LoadFailure> {
    let errno = match prog_load(insns, None) {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut buf = vec![0u8; LOG_SIZE];
    match prog_load(insns, Some(&mut buf)) {
        Ok(fd) => Ok(fd),
        Err(_) => {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            Err(LoadFailure {
                errno,
                log: String::from_utf8_lossy(&buf[..end]).trim().to_string(),
            })
        }
    }
}

/// Attaches the device program `prog` to the cgroup2 directory `cgroup`
/// (opened `O_DIRECTORY`), beside any other program there. The attachment
/// holds the program: `prog` may be closed afterwards; removing the cgroup
/// detaches it.
pub fn attach_device_program(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut attr = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    sys_bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}
