//! The default seccomp profile of each zctr profile (see docs/profiles.md).
//!
//! Unprivileged: an allowlist in the manner of the well-known container
//! default (Docker/containerd): everything an ordinary program needs, more
//! when the container holds the capability a group of calls needs, and
//! `EPERM` for the rest. zctr refuses a little more than that default:
//! `name_to_handle_at` (file handles are the first half of the "shocker"
//! escape), `socket` only for the unix, inet, inet6 and netlink families
//! and, without `CAP_NET_RAW`, no raw inet sockets; `clone`/`unshare` never
//! create namespaces without `CAP_SYS_ADMIN`, and `clone3` (whose flags sit in
//! memory a filter cannot read) returns `ENOSYS` so libc falls back to clone.
//!
//! Privileged: everything but what no container needs and that reaches the
//! whole host whatever namespace it runs in: loading kernels and modules.

use crate::config::Profile;
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};
use oci_spec::OciSpecError;

/// Allowed in every unprivileged container.
const BASE_ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_adjtime",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_requeue",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
    // Safe since Linux 4.8 (seccomp runs again after a tracer changes a call).
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
];

/// Calls allowed only with a capability, as in the container default.
const BY_CAPABILITY: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "listmount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "open_tree_attr",
            "perf_event_open",
            "statmount",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::DacReadSearch, &["open_by_handle_at"]),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &["kcmp", "pidfd_getfd", "process_madvise"],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (Capability::SysTime, &["settimeofday", "clock_settime"]),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
];

/// Every namespace flag of clone/unshare (CLONE_NEWTIME, NEWNS, NEWCGROUP,
/// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET).
pub const NAMESPACE_FLAGS: u64 = 0x80
    | 0x0002_0000
    | 0x0200_0000
    | 0x0400_0000
    | 0x0800_0000
    | 0x1000_0000
    | 0x2000_0000
    | 0x4000_0000;

/// Reached from inside an unprivileged container with the default profile,
/// each must fail with EPERM (clone3 with ENOSYS); the e2e tests try them.
pub const UNPRIVILEGED_REFUSED: &[&str] = &[
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "perf_event_open",
    "userfaultfd",
    "add_key",
    "keyctl",
    "request_key",
    "name_to_handle_at",
    "bpf",
    "kexec_load",
    "init_module",
    "mount",
    "setns",
];

/// What the privileged profile refuses (EPERM): kernel and module loading.
pub const PRIVILEGED_DENIED: &[&str] = &[
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
];

const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
const AF_NETLINK: u64 = 16;
const SOCK_TYPE_MASK: u64 = 0xf;
const SOCK_STREAM: u64 = 1;
const SOCK_DGRAM: u64 = 2;
const SOCK_SEQPACKET: u64 = 5;
/// personality(2) values the container default allows: PER_LINUX,
/// PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the 0xffffffff query.
const PERSONALITIES: [u64; 5] = [0, 8, 0x20000, 0x20008, 0xffff_ffff];

fn arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
) -> Result<LinuxSeccompArg, OciSpecError> {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value)
        .build()
}

fn masked(index: usize, mask: u64, want: u64) -> Result<LinuxSeccompArg, OciSpecError> {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .value(mask)
        .value_two(want)
        .build()
}

fn rule(
    names: &[&str],
    action: LinuxSeccompAction,
    errno: Option<u32>,
    args: Vec<LinuxSeccompArg>,
) -> Result<LinuxSyscall, OciSpecError> {
    let mut b = LinuxSyscallBuilder::default()
        .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(action);
    if let Some(e) = errno {
        b = b.errno_ret(e);
    }
    if !args.is_empty() {
        b = b.args(args);
    }
    b.build()
}

fn allow(names: &[&str], args: Vec<LinuxSeccompArg>) -> Result<LinuxSyscall, OciSpecError> {
    rule(names, LinuxSeccompAction::ScmpActAllow, None, args)
}

fn unprivileged(caps: &[Capability]) -> Result<LinuxSeccomp, OciSpecError> {
    use LinuxSeccompOperator::*;
    let has = |c: Capability| caps.contains(&c);
    let mut rules = vec![allow(BASE_ALLOWED, vec![])?];
    for p in PERSONALITIES {
        rules.push(allow(&["personality"], vec![arg(0, ScmpCmpEq, p)?])?);
    }
    for family in [AF_UNIX, AF_NETLINK] {
        rules.push(allow(&["socket"], vec![arg(0, ScmpCmpEq, family)?])?);
    }
    // No packet sockets and no raw inet sockets, even with CAP_NET_RAW (which
    // the profile keeps, like the container default, and which a private
    // network namespace owned by the container's user namespace would honour).
    for family in [AF_INET, AF_INET6] {
        for typ in [SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET] {
            rules.push(allow(
                &["socket"],
                vec![arg(0, ScmpCmpEq, family)?, masked(1, SOCK_TYPE_MASK, typ)?],
            )?);
        }
    }
    let mut granted: Vec<&str> = Vec::new();
    for (cap, names) in BY_CAPABILITY {
        if has(*cap) {
            for n in names.iter() {
                if !granted.contains(n) {
                    granted.push(n);
                }
            }
        }
    }
    if !granted.is_empty() {
        rules.push(allow(&granted, vec![])?);
    }
    if !has(Capability::SysAdmin) {
        rules.push(allow(
            &["clone", "unshare"],
            vec![masked(0, NAMESPACE_FLAGS, 0)?],
        )?);
        rules.push(rule(
            &["clone3"],
            LinuxSeccompAction::ScmpActErrno,
            Some(38), // ENOSYS
            vec![],
        )?);
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(1u32) // EPERM
        .architectures(vec![Arch::ScmpArchX86_64])
        .syscalls(rules)
        .build()
}

fn privileged() -> Result<LinuxSeccomp, OciSpecError> {
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        // i386 programs run; the denied calls have i386 numbers (or none)
        // the compiler knows. x32 is not listed: its calls are killed
        // (distribution kernels rarely enable the x32 ABI).
        .architectures(vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86])
        .syscalls(vec![rule(
            PRIVILEGED_DENIED,
            LinuxSeccompAction::ScmpActErrno,
            Some(1), // EPERM
            vec![],
        )?])
        .build()
}

/// The default profile of `profile` for a container holding `caps`
/// (its bounding set).
pub fn default_profile(
    profile: Profile,
    caps: &[Capability],
) -> Result<LinuxSeccomp, OciSpecError> {
    match profile {
        Profile::Unprivileged => unprivileged(caps),
        Profile::Privileged => privileged(),
    }
}
