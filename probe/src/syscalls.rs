//! `zctr-probe syscalls NAME...`: tries each named call with harmless
//! arguments, each in a forked child (so a call that succeeds, such as
//! unshare, or a filter that kills, leaves the probe as it was), and prints
//! `{"syscalls":{NAME:{"ok":true}|{"errno":"EPERM","errno_num":1}|{"signal":31}}}`.
//! The arguments are chosen so that an allowed call fails on its own
//! arguments (EBADF, EINVAL, EFAULT) or succeeds without effect outside the
//! forked child; a filter's refusal shows as its own errno (EPERM, ENOSYS).
//! This module holds the probe's raw syscalls for it (unsafe).

use serde_json::{json, Map, Value};
use std::io;

/// The calls the probe knows, for `--help` and argument checking.
pub const NAMES: &[&str] = &[
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "perf_event_open",
    "userfaultfd",
    "add_key",
    "keyctl",
    "request_key",
    "socket_packet",
    "socket_raw",
    "socket_inet",
    "socket_unix",
    "name_to_handle_at",
    "unshare_user",
    "unshare_mount",
    "unshare_net",
    "clone_newuser",
    "clone_newns",
    "clone3",
    "kexec_load",
    "init_module",
    "bpf",
    "mount",
    "setns",
    "getppid",
    "getpriority_process",
    "getpriority_pgrp",
    "kcmp",
    "int80_getpid",
    "int80_kexec_load",
];

/// An i386 system call through `int 0x80` (the 32-bit entry, which x86_64
/// kernels with IA32 emulation keep for 64-bit processes too): the raw
/// return value (negative errno on failure). Arguments must fit 32 bits.
fn int80(nr: u32, a: u32, b: u32, c: u32, d: u32) -> i64 {
    let mut ret: u64 = nr as u64;
    // SAFETY: the call's arguments are plain integers (no pointers into our
    // memory); rbx is reserved by the compiler, so it is swapped in and out.
    unsafe {
        std::arch::asm!(
            "xchg {a:r}, rbx",
            "int 0x80",
            "xchg {a:r}, rbx",
            a = inout(reg) a as u64 => _,
            inout("rax") ret,
            in("rcx") b as u64,
            in("rdx") c as u64,
            in("rsi") d as u64,
        );
    }
    // The 32-bit entry returns a 32-bit value.
    ret as u32 as i32 as i64
}

fn int80_ret(r: i64) -> libc::c_long {
    if r < 0 {
        // SAFETY: sets errno for `ret` to read, as a libc call would.
        unsafe { *libc::__errno_location() = -r as i32 };
        -1
    } else {
        0
    }
}

fn ret(r: libc::c_long) -> i32 {
    if r < 0 {
        io::Error::last_os_error().raw_os_error().unwrap_or(255)
    } else {
        0
    }
}

/// Runs `name` in the calling (forked) process: 0 on success, else the errno.
fn call(name: &str) -> i32 {
    use libc::*;
    let none = std::ptr::null::<c_void>();
    // SAFETY: each call gets valid pointers to local buffers or NULL; none of
    // them touches memory the probe relies on (this is a forked child that exits).
    unsafe {
        let mut buf = [0u8; 512];
        let b = buf.as_mut_ptr() as *mut c_void;
        let r: c_long = match name {
            "io_uring_setup" => syscall(SYS_io_uring_setup, 1u32, b),
            "io_uring_enter" => syscall(SYS_io_uring_enter, -1, 0, 0, 0, none, 0),
            "io_uring_register" => syscall(SYS_io_uring_register, -1, 0, none, 0),
            "perf_event_open" => {
                // attr.size = PERF_ATTR_SIZE_VER0, type = software, config = cpu clock.
                buf[0..4].copy_from_slice(&1u32.to_ne_bytes());
                buf[4..8].copy_from_slice(&64u32.to_ne_bytes());
                syscall(SYS_perf_event_open, b, 0, -1, -1, 0)
            }
            // UFFD_USER_MODE_ONLY: allowed to unprivileged users by the kernel.
            "userfaultfd" => syscall(SYS_userfaultfd, O_CLOEXEC | 1),
            "add_key" => syscall(
                SYS_add_key,
                c"user".as_ptr(),
                c"zctr-probe".as_ptr(),
                c"x".as_ptr(),
                1usize,
                -2, // KEY_SPEC_PROCESS_KEYRING
            ),
            // KEYCTL_GET_KEYRING_ID of KEY_SPEC_PROCESS_KEYRING, without creating it.
            "keyctl" => syscall(SYS_keyctl, 0, -2, 0),
            "request_key" => syscall(
                SYS_request_key,
                c"user".as_ptr(),
                c"zctr-probe-none".as_ptr(),
                none,
                0,
            ),
            "socket_packet" => socket(AF_PACKET, SOCK_RAW, 0) as c_long,
            "socket_raw" => socket(AF_INET, SOCK_RAW, IPPROTO_ICMP) as c_long,
            "socket_inet" => socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) as c_long,
            "socket_unix" => socket(AF_UNIX, SOCK_DGRAM, 0) as c_long,
            "name_to_handle_at" => {
                // handle_bytes = 128 in the first word of a file_handle.
                buf[0..4].copy_from_slice(&128u32.to_ne_bytes());
                let mut mount_id: c_int = 0;
                syscall(
                    SYS_name_to_handle_at,
                    AT_FDCWD,
                    c"/".as_ptr(),
                    b,
                    &mut mount_id as *mut c_int,
                    0,
                )
            }
            "unshare_user" => syscall(SYS_unshare, CLONE_NEWUSER),
            "unshare_mount" => syscall(SYS_unshare, CLONE_NEWNS),
            "unshare_net" => syscall(SYS_unshare, CLONE_NEWNET),
            "clone_newuser" | "clone_newns" => {
                let flag = if name == "clone_newuser" {
                    CLONE_NEWUSER
                } else {
                    CLONE_NEWNS
                };
                let r = syscall(SYS_clone, (flag | SIGCHLD) as c_long, 0, 0, 0, 0);
                if r == 0 {
                    _exit(0);
                }
                if r > 0 {
                    let mut st = 0;
                    waitpid(r as pid_t, &mut st, 0);
                }
                r
            }
            "clone3" => {
                // struct clone_args: flags = 0, exit_signal (offset 32) = SIGCHLD.
                buf[32..40].copy_from_slice(&(SIGCHLD as u64).to_ne_bytes());
                let r = syscall(SYS_clone3, b, 88usize);
                if r == 0 {
                    _exit(0);
                }
                if r > 0 {
                    let mut st = 0;
                    waitpid(r as pid_t, &mut st, 0);
                }
                r
            }
            // A foreign architecture in the flags: EINVAL after the permission checks.
            "kexec_load" => syscall(SYS_kexec_load, 0, 0, none, 0x1234_0000u64),
            // An empty image: EFAULT/ENOEXEC after the permission checks.
            "init_module" => syscall(SYS_init_module, none, 0, c"".as_ptr()),
            "bpf" => syscall(SYS_bpf, -1, none, 0),
            // No target: EFAULT after the filter.
            "mount" => syscall(SYS_mount, none, none, none, 0, none),
            "setns" => syscall(SYS_setns, -1, 0),
            "getppid" => syscall(SYS_getppid),
            "getpriority_process" => syscall(SYS_getpriority, PRIO_PROCESS, 0),
            "getpriority_pgrp" => syscall(SYS_getpriority, PRIO_PGRP, 0),
            // KCMP_FILE of fd 0 with itself in the probe: 0 when allowed.
            "kcmp" => syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0),
            // i386 getpid (20).
            "int80_getpid" => int80_ret(int80(20, 0, 0, 0, 0)),
            // i386 kexec_load (283), foreign architecture in the flags as above.
            "int80_kexec_load" => int80_ret(int80(283, 0, 0, 0, 0x1234_0000)),
            _ => return 255,
        };
        ret(r)
    }
}

/// Forks, runs `name` in the child, and describes how it ended.
fn try_one(name: &str) -> io::Result<Value> {
    // SAFETY: the probe is single-threaded; the child only calls and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        let code = call(name);
        // SAFETY: leave the forked child without running destructors.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    loop {
        // SAFETY: valid out-pointer.
        if unsafe { libc::waitpid(pid, &mut status, 0) } >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    Ok(if libc::WIFSIGNALED(status) {
        json!({"signal": libc::WTERMSIG(status)})
    } else {
        match libc::WEXITSTATUS(status) {
            0 => json!({"ok": true}),
            e => json!({"errno": crate::errno::name(e).unwrap_or("?"), "errno_num": e}),
        }
    })
}

/// `syscalls NAME...` (all known calls when none is named).
pub fn run(names: &[String]) -> io::Result<()> {
    let list: Vec<&str> = if names.is_empty() {
        NAMES.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    let mut out = Map::new();
    for n in list {
        if !NAMES.contains(&n) {
            return Err(io::Error::other(format!("syscalls: unknown call {n:?}")));
        }
        out.insert(n.to_string(), try_one(n)?);
    }
    crate::actions::out(&json!({"syscalls": out}).to_string())
}
