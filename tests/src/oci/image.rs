//! An OCI image layout (oci-layout, index.json, blobs/sha256/...) with one
//! uncompressed layer made from a root filesystem directory, packed as a tar
//! that `ctr image import` (or `podman load`) reads.
//!
//! The layer and the layout are packed by `tar`, digests computed by
//! `sha256sum` (both on every Debian machine): no extra crate.

use super::check;
use crate::error::Context;
use crate::{run_cmd, Error};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// The annotation `ctr image import` names the image after.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content-addressed blob: `sha256:<hex>` and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub digest: String,
    pub size: u64,
}

/// The image built by [`build`].
#[derive(Debug, Clone)]
pub struct ImageTar {
    /// The image tar (the layout directory packed).
    pub tar: PathBuf,
    /// The unpacked layout directory.
    pub layout: PathBuf,
    /// The name given in the index (`REF_NAME`), e.g. `zctr-test/busybox:latest`.
    pub reference: String,
    pub manifest: Descriptor,
}

/// The image config: `cmd` as the default command, `PATH=/bin:/sbin`, the
/// layer as the one diff id (an uncompressed layer's diff id is its digest).
pub fn config_json(layer: &Descriptor, cmd: &[&str]) -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Env": ["PATH=/bin:/sbin"], "Cmd": cmd, "WorkingDir": "/" },
        "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
    })
}

/// The manifest naming the config and the layer blobs.
pub fn manifest_json(config: &Descriptor, layer: &Descriptor) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": { "mediaType": CONFIG, "digest": config.digest, "size": config.size },
        "layers": [{ "mediaType": LAYER, "digest": layer.digest, "size": layer.size }],
    })
}

/// The index pointing at the manifest under the name `reference`.
pub fn index_json(manifest: &Descriptor, reference: &str) -> Value {
    json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST,
            "digest": manifest.digest,
            "size": manifest.size,
            "platform": { "architecture": "amd64", "os": "linux" },
            "annotations": { REF_NAME: reference },
        }],
    })
}

/// Builds the image of `rootfs` (files owned by root in the layer) under
/// `work` (created; holds `layout/` and `image.tar`), named `reference`,
/// with `cmd` as its default command.
pub fn build(rootfs: &Path, work: &Path, reference: &str, cmd: &[&str]) -> Result<ImageTar, Error> {
    let layout = work.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).ctx(|| format!("mkdir {}", blobs.display()))?;

    let layer_tmp = work.join("layer.tar");
    check(
        "pack the layer",
        run_cmd(
            Command::new("tar")
                .args(["--numeric-owner", "--owner=0", "--group=0", "--sort=name"])
                .args(["--mtime=@0", "-C"])
                .arg(rootfs)
                .arg("-cf")
                .arg(&layer_tmp)
                .arg("."),
            TOOL_TIMEOUT,
        )?,
    )?;
    let layer = add_blob_file(&blobs, &layer_tmp)?;
    let config = add_blob(&blobs, &config_json(&layer, cmd))?;
    let manifest = add_blob(&blobs, &manifest_json(&config, &layer))?;
    write(
        &layout.join("index.json"),
        &index_json(&manifest, reference),
    )?;
    write(
        &layout.join("oci-layout"),
        &json!({ "imageLayoutVersion": "1.0.0" }),
    )?;

    let tar = work.join("image.tar");
    check(
        "pack the image layout",
        run_cmd(
            Command::new("tar")
                .args(["--numeric-owner", "--owner=0", "--group=0", "--sort=name"])
                .arg("-C")
                .arg(&layout)
                .arg("-cf")
                .arg(&tar)
                .args(["oci-layout", "index.json", "blobs"]),
            TOOL_TIMEOUT,
        )?,
    )?;
    Ok(ImageTar {
        tar,
        layout,
        reference: reference.to_string(),
        manifest,
    })
}

/// `sha256:<hex>` of a file, by `sha256sum`.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let out = check(
        "sha256sum",
        run_cmd(Command::new("sha256sum").arg(path), TOOL_TIMEOUT)?,
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(format!("sha256:{hex}"))
        }
        _ => Err(Error::Io {
            context: format!("sha256sum {}: unexpected output {text:?}", path.display()),
            source: std::io::Error::from(std::io::ErrorKind::InvalidData),
        }),
    }
}

fn write(path: &Path, v: &Value) -> Result<(), Error> {
    fs::write(path, v.to_string()).ctx(|| format!("write {}", path.display()))
}

/// Moves `file` into `blobs` under its digest.
fn add_blob_file(blobs: &Path, file: &Path) -> Result<Descriptor, Error> {
    let digest = sha256_file(file)?;
    let size = fs::metadata(file)
        .ctx(|| format!("stat {}", file.display()))?
        .len();
    let dest = blobs.join(digest.trim_start_matches("sha256:"));
    fs::rename(file, &dest).ctx(|| format!("rename {} to {}", file.display(), dest.display()))?;
    Ok(Descriptor { digest, size })
}

/// Writes the JSON `v` as a blob.
fn add_blob(blobs: &Path, v: &Value) -> Result<Descriptor, Error> {
    let tmp = blobs.join("incoming.json");
    write(&tmp, v)?;
    add_blob_file(blobs, &tmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_json(p: &Path) -> Value {
        serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
    }

    #[test]
    fn every_blob_is_stored_under_its_digest_and_referenced_by_size() {
        let work = crate::TempDir::new("zctr-oci-image").unwrap();
        let root = work.join("rootfs");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("bin/hello"), "hi\n").unwrap();
        let img = build(&root, &work.join("img"), "zctr-test/x:1", &["/bin/hello"]).unwrap();
        let blob = |d: &Descriptor| {
            let p = img.layout.join("blobs/sha256").join(&d.digest[7..]);
            assert_eq!(sha256_file(&p).unwrap(), d.digest);
            assert_eq!(fs::metadata(&p).unwrap().len(), d.size);
            p
        };
        let index = read_json(&img.layout.join("index.json"));
        assert_eq!(index["manifests"][0]["digest"], img.manifest.digest);
        assert_eq!(
            index["manifests"][0]["annotations"][REF_NAME],
            "zctr-test/x:1"
        );
        let manifest = read_json(&blob(&img.manifest));
        let desc = |v: &Value| Descriptor {
            digest: v["digest"].as_str().unwrap().to_string(),
            size: v["size"].as_u64().unwrap(),
        };
        let config = read_json(&blob(&desc(&manifest["config"])));
        let layer = desc(&manifest["layers"][0]);
        let layer_path = blob(&layer);
        assert_eq!(config["rootfs"]["diff_ids"][0], layer.digest);
        assert_eq!(config["config"]["Cmd"][0], "/bin/hello");
        let listing = run_cmd(
            Command::new("tar").arg("-tvf").arg(&layer_path),
            TOOL_TIMEOUT,
        )
        .unwrap();
        let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
        assert!(
            listing.contains("0/0") && listing.contains("./bin/hello"),
            "{listing}"
        );
        assert!(img.tar.is_file());
        assert!(!work.join("img/layer.tar").exists());
    }
}
