//! Which OCI runtime the client tests run: `$ZCTR_OCI_RUNTIME` if set (a path,
//! or a name looked up on `$PATH`, e.g. `runc` to check the harness against
//! the reference runtime), else the static `zctr-oci` of the build.

use crate::{bins, Error};
use std::path::{Path, PathBuf};

/// The variable naming the runtime to test instead of zctr-oci.
pub const RUNTIME_ENV: &str = "ZCTR_OCI_RUNTIME";

/// The runtime's absolute path (see the module docs), or why there is none.
pub fn runtime() -> Result<PathBuf, Error> {
    match std::env::var_os(RUNTIME_ENV).filter(|v| !v.is_empty()) {
        Some(v) => resolve(Path::new(&v)),
        None => bins::find("zctr-oci"),
    }
}

/// `name` as an absolute path of an existing file: a path with a `/` as it is
/// (made absolute), a bare name looked up on `$PATH`.
fn resolve(name: &Path) -> Result<PathBuf, Error> {
    let missing = |p: &Path| Error::Io {
        context: format!("{RUNTIME_ENV}={}: no such file", p.display()),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    if name.components().count() > 1 || name.is_absolute() {
        let abs = std::path::absolute(name).map_err(|_| missing(name))?;
        return if abs.is_file() {
            Ok(abs)
        } else {
            Err(missing(name))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file() && p.is_absolute())
        .ok_or_else(|| missing(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_found_on_path_and_a_path_is_kept() {
        let sh = resolve(Path::new("sh")).unwrap();
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(resolve(&sh).unwrap(), sh);
    }

    #[test]
    fn a_missing_runtime_is_an_error_naming_the_variable() {
        let e = resolve(Path::new("/nonexistent/zctr-oci")).unwrap_err();
        assert!(
            e.to_string()
                .contains("ZCTR_OCI_RUNTIME=/nonexistent/zctr-oci"),
            "{e}"
        );
        assert!(resolve(Path::new("no-such-runtime-name")).is_err());
    }
}
