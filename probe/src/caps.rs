//! Capability sets: hex masks as shown in /proc/self/status, decoded to names.

use serde::Serialize;

/// Capability names indexed by bit number, spelled as in the OCI spec.
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Name of capability bit `bit` ("CAP_SYS_ADMIN"), `CAP_<n>` for bits newer than this table.
pub fn name(bit: u32) -> String {
    NAMES
        .get(bit as usize)
        .map_or_else(|| format!("CAP_{bit}"), |n| (*n).to_string())
}

/// Parse a status-file mask ("000001ffffffffff") into its bits.
pub fn parse_hex(hex: &str) -> Option<u64> {
    let hex = hex.trim();
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Names of all bits set in `mask`, lowest bit first.
pub fn decode(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|b| mask & (1u64 << b) != 0)
        .map(name)
        .collect()
}

/// One capability set in the report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CapSet {
    /// The mask exactly as printed by the kernel.
    pub hex: String,
    /// Decoded names, lowest bit first.
    pub names: Vec<String>,
}

impl CapSet {
    /// Build from the kernel's hex text; `None` if it is not a valid mask.
    pub fn from_hex(hex: &str) -> Option<CapSet> {
        let mask = parse_hex(hex)?;
        Some(CapSet {
            hex: hex.trim().to_string(),
            names: decode(mask),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_masks() {
        assert_eq!(decode(0), Vec::<String>::new());
        assert_eq!(decode(1), vec!["CAP_CHOWN"]);
        assert_eq!(
            decode(parse_hex("00000000a80425fb").unwrap()),
            vec![
                "CAP_CHOWN",
                "CAP_DAC_OVERRIDE",
                "CAP_FOWNER",
                "CAP_FSETID",
                "CAP_KILL",
                "CAP_SETGID",
                "CAP_SETUID",
                "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
                "CAP_SYS_CHROOT",
                "CAP_MKNOD",
                "CAP_AUDIT_WRITE",
                "CAP_SETFCAP",
            ]
        );
        let full = decode(parse_hex("000001ffffffffff").unwrap());
        assert_eq!(full.len(), 41);
        assert_eq!(full.last().unwrap(), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(decode(1 << 45), vec!["CAP_45"]);
    }

    #[test]
    fn rejects_bad_hex() {
        assert_eq!(parse_hex(""), None);
        assert_eq!(parse_hex("xyz"), None);
        assert_eq!(parse_hex("00000000000000000"), None);
        let set = CapSet::from_hex(" 0000000000200000\n").unwrap();
        assert_eq!(set.hex, "0000000000200000");
        assert_eq!(set.names, vec!["CAP_SYS_ADMIN"]);
    }
}
