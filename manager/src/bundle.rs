//! From a create request to an OCI bundle in the container's state directory:
//! check what only the host can tell (paths exist and have the right type),
//! read the image meta, generate `config.json` with `common::spec` and write
//! it atomically.

use crate::safe_open::{self, SafeOpenError, META_MAX};
use crate::store::{self, StoreError};
use common::config::{ConfigError, ContainerConfig, MountKind};
use common::id::ContainerId;
use common::layout;
use common::meta::{ImageMeta, MetaError};
use common::spec::SpecError;
use oci_spec::runtime::LinuxResources;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("rootfs {0} does not exist")]
    RootfsMissing(PathBuf),
    #[error("rootfs {0} is not a directory")]
    RootfsNotDir(PathBuf),
    #[error("{field}: source {path} does not exist")]
    SourceMissing { field: String, path: PathBuf },
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The meta file is not a regular file of at most [`META_MAX`] bytes.
    #[error("image meta {0}")]
    MetaFile(#[from] SafeOpenError),
    #[error("spec generation: {0}")]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the manager keeps from a prepared bundle.
#[derive(Debug)]
pub struct Prepared {
    #[cfg_attr(not(test), allow(dead_code))]
    pub bundle: PathBuf,
    pub resources: Option<LinuxResources>,
    pub exposed_ports: Vec<String>,
}

/// Checks the host side of `config` (the values themselves are checked by
/// `ContainerConfig::validate`).
pub fn check_host_paths(config: &ContainerConfig) -> Result<(), BundleError> {
    match fs::metadata(&config.rootfs) {
        Err(_) => return Err(BundleError::RootfsMissing(config.rootfs.clone())),
        Ok(m) if !m.is_dir() => return Err(BundleError::RootfsNotDir(config.rootfs.clone())),
        Ok(_) => {}
    }
    for (i, v) in config.volumes.iter().enumerate() {
        if fs::symlink_metadata(&v.source).is_err() {
            return Err(BundleError::SourceMissing {
                field: format!("volumes[{i}].source"),
                path: v.source.clone(),
            });
        }
    }
    for (i, m) in config.mounts.iter().enumerate() {
        if let (MountKind::Bind, Some(src)) = (m.kind, &m.source) {
            if fs::symlink_metadata(src).is_err() {
                return Err(BundleError::SourceMissing {
                    field: format!("mounts[{i}].source"),
                    path: src.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Reads the meta file named by the config, or an empty meta when there is
/// none. The client names the path: it is read with
/// [`safe_open::read_host_file`] (regular files of at most [`META_MAX`]
/// bytes; a FIFO or a device is refused without being opened).
pub fn load_meta(config: &ContainerConfig) -> Result<ImageMeta, BundleError> {
    Ok(match &config.meta {
        Some(path) => {
            ImageMeta::from_file_bytes(&safe_open::read_host_file(path, META_MAX)?, path)?
        }
        None => ImageMeta::default(),
    })
}

/// The capabilities in this process's bounding set: all a container without a
/// user namespace can get from the shims this daemon starts. Read once: a
/// process's bounding set can only shrink, and the daemon never drops any.
fn held_capabilities() -> &'static [oci_spec::runtime::Capability] {
    static HELD: std::sync::OnceLock<Vec<oci_spec::runtime::Capability>> =
        std::sync::OnceLock::new();
    HELD.get_or_init(|| {
        caps::read(None, caps::CapSet::Bounding)
            .map(|set| {
                set.iter()
                    .filter_map(|c| common::capability::parse(&c.to_string()))
                    .collect()
            })
            .unwrap_or_else(|_| common::capability::ALL.to_vec())
    })
}

/// Validates `config`, generates the spec and writes `<state_dir>/bundle/config.json`.
pub fn prepare(
    state_dir: &Path,
    id: &ContainerId,
    config: &ContainerConfig,
    cgroups_path: &str,
) -> Result<Prepared, BundleError> {
    config.validate()?;
    check_host_paths(config)?;
    let meta = load_meta(config)?;
    let mut spec = common::spec::generate(id, config, &meta, cgroups_path)?;
    common::spec::profile::limit_to_held(&mut spec, config, held_capabilities())?;
    let bundle = layout::bundle_dir(state_dir);
    fs::create_dir_all(&bundle).map_err(|source| StoreError::Io {
        path: bundle.clone(),
        source,
    })?;
    // Not fsync'd: every launch (a restart after a host crash included)
    // writes the bundle again from the record, which is.
    store::write_replace(
        &layout::config_file(&bundle),
        common::spec::to_json(&spec).as_bytes(),
        false,
    )?;
    Ok(Prepared {
        bundle,
        resources: spec.linux().as_ref().and_then(|l| l.resources().clone()),
        exposed_ports: meta.exposed_ports.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn config(rootfs: &Path) -> ContainerConfig {
        ContainerConfig::new(rootfs)
    }

    #[test]
    fn host_paths_are_checked() {
        let t = TempDir::new("bundle-paths");
        let missing = t.path().join("nope");
        assert!(matches!(
            check_host_paths(&config(&missing)),
            Err(BundleError::RootfsMissing(_))
        ));
        let file = t.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(matches!(
            check_host_paths(&config(&file)),
            Err(BundleError::RootfsNotDir(_))
        ));
        let mut c = config(t.path());
        check_host_paths(&c).unwrap();
        c.volumes
            .push(common::config::Volume::new("/data", &missing, false));
        match check_host_paths(&c) {
            Err(BundleError::SourceMissing { field, .. }) => {
                assert_eq!(field, "volumes[0].source")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_meta_file_is_an_error_and_no_meta_is_empty() {
        let t = TempDir::new("bundle-meta");
        let mut c = config(t.path());
        assert_eq!(load_meta(&c).unwrap(), ImageMeta::default());
        let meta = t.path().join("meta.json");
        fs::write(&meta, b"{not json").unwrap();
        c.meta = Some(meta.clone());
        let e = load_meta(&c).unwrap_err();
        assert!(matches!(e, BundleError::Meta(_)), "{e}");
        assert!(e.to_string().contains(&*meta.to_string_lossy()), "{e}");
        for (bad, what) in [
            ("/dev/zero", "not a regular file"),
            ("/", "not a regular file"),
        ] {
            c.meta = Some(bad.into());
            let e = load_meta(&c).unwrap_err();
            assert!(matches!(e, BundleError::MetaFile(_)), "{e}");
            assert!(e.to_string().contains(what), "{e}");
        }
        let big = t.path().join("big.json");
        fs::write(&big, vec![b' '; META_MAX as usize + 1]).unwrap();
        c.meta = Some(big);
        let e = load_meta(&c).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }

    #[test]
    fn prepare_writes_config_json_with_the_cgroups_path() {
        let t = TempDir::new("bundle-prepare");
        let rootfs = t.path().join("rootfs");
        fs::create_dir(&rootfs).unwrap();
        let mut c = config(&rootfs);
        c.args = Some(vec!["/bin/true".into()]);
        let id = ContainerId::new("web").unwrap();
        let p = prepare(t.path(), &id, &c, "zctr/web").unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(p.bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(json["linux"]["cgroupsPath"], "zctr/web");
    }
}
