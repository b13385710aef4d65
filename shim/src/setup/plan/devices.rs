//! `linux.devices`: the device nodes of a /dev the shim fills (a tmpfs
//! mounted there), the standard ones first.

use super::{container_path, cstr, err, PlanError};
use oci_spec::runtime::LinuxDevice;
use std::ffi::CString;

/// A device node to provide in the container's /dev.
#[derive(Debug)]
pub struct DeviceStep {
    /// Path relative to the rootfs ("dev/null").
    pub dest: CString,
    /// Host node bound there when a user namespace forbids mknod.
    pub host: CString,
    pub kind: u32,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The standard device nodes every container with its own /dev gets.
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// The default devices, then the config's (one of the same path replaces it).
pub fn plan<'d>(
    devices: impl Iterator<Item = &'d LinuxDevice>,
) -> Result<Vec<DeviceStep>, PlanError> {
    let mut out = Vec::new();
    for (path, major, minor) in DEFAULT_DEVICES {
        out.push(DeviceStep {
            dest: cstr("devices", &path[1..])?,
            host: cstr("devices", path)?,
            kind: libc::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        });
    }
    for (i, d) in devices.enumerate() {
        let field = format!("linux.devices[{i}]");
        let p = d.path().to_string_lossy();
        let rel = container_path(&field, &p)?;
        if !rel.starts_with("dev/") {
            return Err(err(field, format!("{p:?} is not below /dev")));
        }
        let kind = match d.typ().as_str() {
            "c" | "u" => libc::S_IFCHR,
            "b" => libc::S_IFBLK,
            "p" => libc::S_IFIFO,
            t => return Err(err(field, format!("unsupported device type {t:?}"))),
        };
        out.retain(|x: &DeviceStep| x.dest.to_bytes() != rel.as_bytes());
        out.push(DeviceStep {
            dest: cstr(&field, &rel)?,
            host: cstr(&field, &p)?,
            kind,
            major: d.major() as u64,
            minor: d.minor() as u64,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devices(json: &str) -> Result<Vec<DeviceStep>, PlanError> {
        let list: Vec<LinuxDevice> = serde_json::from_str(json).unwrap();
        plan(list.iter())
    }

    #[test]
    fn config_devices_replace_defaults_and_stay_below_dev() {
        let d = devices(
            r#"[{"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":8630},
                {"path":"/dev/sda","type":"b","major":8,"minor":0}]"#,
        )
        .unwrap();
        assert_eq!(d.len(), 7);
        let null = d.iter().find(|x| x.dest.to_bytes() == b"dev/null").unwrap();
        assert_eq!(null.mode, 8630 & 0o7777);
        assert_eq!(d.last().unwrap().kind, libc::S_IFBLK);
        let e = devices(r#"[{"path":"/etc/x","type":"c","major":1,"minor":3}]"#).unwrap_err();
        assert!(e.reason.ends_with("is not below /dev"), "{e}");
        let e = devices(r#"[{"path":"/dev/../x","type":"c","major":1,"minor":3}]"#).unwrap_err();
        assert_eq!(e.field, "linux.devices[0]");
    }
}
