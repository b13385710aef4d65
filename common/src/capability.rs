//! Capability names and the sets the profiles start from.

use oci_spec::runtime::Capability;

/// Every capability `oci-spec` knows: the privileged profile's set.
pub const ALL: [Capability; 41] = {
    use Capability::*;
    [
        AuditControl,
        AuditRead,
        AuditWrite,
        BlockSuspend,
        Bpf,
        CheckpointRestore,
        Chown,
        DacOverride,
        DacReadSearch,
        Fowner,
        Fsetid,
        IpcLock,
        IpcOwner,
        Kill,
        Lease,
        LinuxImmutable,
        MacAdmin,
        MacOverride,
        Mknod,
        NetAdmin,
        NetBindService,
        NetBroadcast,
        NetRaw,
        Perfmon,
        Setgid,
        Setfcap,
        Setpcap,
        Setuid,
        SysAdmin,
        SysBoot,
        SysChroot,
        SysModule,
        SysNice,
        SysPacct,
        SysPtrace,
        SysRawio,
        SysResource,
        SysTime,
        SysTtyConfig,
        Syslog,
        WakeAlarm,
    ]
};

/// Fails to compile when `oci-spec` gains a capability that [`ALL`] lacks.
#[allow(dead_code)]
const fn exhaustive(c: Capability) {
    use Capability::*;
    match c {
        AuditControl | AuditRead | AuditWrite | BlockSuspend | Bpf | CheckpointRestore | Chown
        | DacOverride | DacReadSearch | Fowner | Fsetid | IpcLock | IpcOwner | Kill | Lease
        | LinuxImmutable | MacAdmin | MacOverride | Mknod | NetAdmin | NetBindService
        | NetBroadcast | NetRaw | Perfmon | Setgid | Setfcap | Setpcap | Setuid | SysAdmin
        | SysBoot | SysChroot | SysModule | SysNice | SysPacct | SysPtrace | SysRawio
        | SysResource | SysTime | SysTtyConfig | Syslog | WakeAlarm => {}
    }
}

/// The unprivileged profile's set: Docker's default 14.
pub const UNPRIVILEGED: [Capability; 14] = {
    use Capability::*;
    [
        Chown,
        DacOverride,
        Fsetid,
        Fowner,
        Mknod,
        NetRaw,
        Setgid,
        Setuid,
        Setfcap,
        Setpcap,
        NetBindService,
        SysChroot,
        Kill,
        AuditWrite,
    ]
};

/// The kernel's name of `c`, e.g. `CAP_SYS_ADMIN`.
pub fn name(c: Capability) -> String {
    format!("CAP_{c}")
}

/// Parses a capability name, with or without the `CAP_` prefix, in any case
/// (`CAP_NET_ADMIN`, `net_admin`). None when unknown.
pub fn parse(s: &str) -> Option<Capability> {
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    ALL.iter().copied().find(|c| c.to_string() == bare)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_match_the_oci_serialization() {
        for c in ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", name(c)));
        }
    }

    #[test]
    fn sets_have_no_duplicates() {
        assert_eq!(ALL.iter().collect::<HashSet<_>>().len(), ALL.len());
        assert_eq!(
            UNPRIVILEGED.iter().collect::<HashSet<_>>().len(),
            UNPRIVILEGED.len()
        );
    }

    #[test]
    fn parse_accepts_prefix_and_case() {
        assert_eq!(parse("CAP_NET_ADMIN"), Some(Capability::NetAdmin));
        assert_eq!(parse("NET_ADMIN"), Some(Capability::NetAdmin));
        assert_eq!(parse("net_admin"), Some(Capability::NetAdmin));
        assert_eq!(parse("cap_sys_tty_config"), Some(Capability::SysTtyConfig));
        assert_eq!(parse("CAP_NOPE"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("CAP_"), None);
    }
}
