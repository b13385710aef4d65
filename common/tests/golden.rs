//! The config.json of each profile for a fixed demo input, pinned in
//! `docs/profiles.md`. `ZCTR_BLESS=1 cargo test -p zctr-common --test golden`
//! rewrites the doc's blocks from the code instead of comparing.

use common::config::{ContainerConfig, Profile};
use common::id::ContainerId;
use common::meta::ImageMeta;
use common::spec;
use std::path::PathBuf;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/profiles.md")
}

/// The demo input the doc describes.
fn demo_json(profile: Profile) -> String {
    let id = ContainerId::new("demo").unwrap();
    let mut config = ContainerConfig::new("/var/lib/zctr/demo/rootfs");
    config.args = Some(vec!["/bin/sh".into()]);
    config.profile = profile;
    let spec = spec::generate(&id, &config, &ImageMeta::default(), "zctr/demo").unwrap();
    spec::to_json(&spec)
}

/// Byte range of the text between `<!-- golden:NAME -->` and `<!-- /golden:NAME -->`.
fn block_range(doc: &str, name: &str) -> std::ops::Range<usize> {
    let open = format!("<!-- golden:{name} -->\n");
    let close = format!("<!-- /golden:{name} -->");
    let start = doc
        .find(&open)
        .unwrap_or_else(|| panic!("docs/profiles.md lacks the marker line {open:?}"))
        + open.len();
    let end = start
        + doc[start..]
            .find(&close)
            .unwrap_or_else(|| panic!("docs/profiles.md lacks the marker line {close:?}"));
    start..end
}

fn rendered(json: &str) -> String {
    format!("```json\n{json}\n```\n")
}

#[test]
fn profiles_doc_matches_generated_specs() {
    let path = doc_path();
    let mut doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let bless = std::env::var("ZCTR_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, profile) in [
        ("unprivileged", Profile::Unprivileged),
        ("privileged", Profile::Privileged),
    ] {
        let want = rendered(&demo_json(profile));
        let range = block_range(&doc, name);
        if doc[range.clone()] != want {
            if bless {
                doc.replace_range(range, &want);
            } else {
                stale.push(format!(
                    "--- golden:{name} in docs/profiles.md differs; generated:\n{want}"
                ));
            }
        }
    }
    if bless {
        std::fs::write(&path, &doc).unwrap();
    }
    assert!(
        stale.is_empty(),
        "{}\nRun `ZCTR_BLESS=1 cargo test -p zctr-common --test golden` if the change is intended.",
        stale.join("\n")
    );
}

#[test]
fn generation_is_deterministic() {
    for profile in [Profile::Unprivileged, Profile::Privileged] {
        assert_eq!(demo_json(profile), demo_json(profile));
    }
}
