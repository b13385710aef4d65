//! `linux.sysctl`: each key as its file below /proc/sys, in a stable order.

use super::{cstr, err, PlanError};
use std::collections::HashMap;
use std::ffi::CString;

/// (path below /proc/sys, value), sorted.
pub fn plan(
    sysctl: Option<&HashMap<String, String>>,
) -> Result<Vec<(CString, CString)>, PlanError> {
    let mut sysctls = Vec::new();
    for (k, v) in sysctl.into_iter().flatten() {
        let field = format!("linux.sysctl.{k}");
        if k.is_empty() || k.contains("..") || k.contains('/') && k.contains('.') {
            return Err(err(field, "not a sysctl name"));
        }
        let rel = k.replace('.', "/");
        sysctls.push((cstr(&field, &format!("/proc/sys/{rel}"))?, cstr(&field, v)?));
    }
    sysctls.sort();
    Ok(sysctls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_paths_and_bad_names_are_refused() {
        let m: HashMap<String, String> = [("net.ipv4.ip_forward", "1"), ("kernel/msgmax", "9")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        let s = plan(Some(&m)).unwrap();
        assert_eq!(s[0].0.to_bytes(), b"/proc/sys/kernel/msgmax");
        assert_eq!(s[1].0.to_bytes(), b"/proc/sys/net/ipv4/ip_forward");
        for bad in ["", "net..x", "net/ipv4.x"] {
            let m: HashMap<String, String> = [(bad.to_string(), "1".to_string())].into();
            assert_eq!(plan(Some(&m)).unwrap_err().reason, "not a sysctl name");
        }
    }
}
