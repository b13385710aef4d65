//! OCI bundle directories.

use crate::error::Context;
use crate::Error;
use std::path::{Path, PathBuf};

/// Write `spec` as `<dir>/config.json` (pretty-printed; `dir` created if missing).
/// Accepts a `serde_json::Value` or any serializable spec type. Returns the file's path.
pub fn write<T: serde::Serialize + ?Sized>(
    dir: impl AsRef<Path>,
    spec: &T,
) -> Result<PathBuf, Error> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).ctx(|| format!("mkdir {}", dir.display()))?;
    let text = serde_json::to_vec_pretty(spec).map_err(Error::Json)?;
    let path = common::layout::config_file(dir);
    std::fs::write(&path, text).ctx(|| format!("write {}", path.display()))?;
    Ok(path)
}
