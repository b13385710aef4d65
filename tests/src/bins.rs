//! Locating the static binaries the end-to-end tests run.
//!
//! Search order: `$ZCTR_BIN_DIR`, then `$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release`
//! if that variable is set, then `<workspace>/target/x86_64-unknown-linux-musl/release`.
//! Build them with `scripts/build-static.sh`.

use crate::Error;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The musl target the static binaries are built for.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// The workspace root (parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The directory binaries are looked up in (see the module docs for the order).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ZCTR_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join(TARGET).join("release")
}

/// Path of binary `name` in [`bin_dir`], or [`Error::BinaryMissing`].
pub fn find(name: &str) -> Result<PathBuf, Error> {
    let path = bin_dir().join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::BinaryMissing {
            name: name.to_string(),
            path,
        })
    }
}

fn require(name: &str) -> PathBuf {
    find(name).unwrap_or_else(|e| panic!("{e}"))
}

/// The static `zctr-probe`. Panics, naming `scripts/build-static.sh`, if missing.
pub fn probe() -> PathBuf {
    require("zctr-probe")
}

/// The static `zctr-shim`. Panics, naming `scripts/build-static.sh`, if missing.
pub fn shim() -> PathBuf {
    require("zctr-shim")
}

/// The static `zctr-oci` (the runc-compatible runtime). Panics, naming `scripts/build-static.sh`, if missing.
pub fn oci() -> PathBuf {
    require("zctr-oci")
}

/// The static `zctr` (manager/daemon). Panics, naming `scripts/build-static.sh`, if missing.
pub fn zctr() -> PathBuf {
    require("zctr")
}

/// Whether `path` is an ELF file without a program interpreter (PT_INTERP), i.e.
/// statically linked (static-pie included). `Ok(false)` for non-ELF files.
pub fn is_static_elf(path: &Path) -> std::io::Result<bool> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(64 * 1024)
        .read_to_end(&mut head)?;
    Ok(elf_is_static(&head))
}

/// [`is_static_elf`] on the first bytes of a file (ELF64 little-endian only).
pub(crate) fn elf_is_static(b: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap_or([0; 8])) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        match b.get(o..o + 4) {
            Some(t) => u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != PT_INTERP,
            None => false,
        }
    })
}
