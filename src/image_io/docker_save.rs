//! `docker save` archives: `manifest.json` lists each image's config and layer
//! tars by their path inside the archive. The layers are plain (sometimes
//! gzip) tars; they are stored as plain OCI layers under a fresh OCI manifest,
//! and the config is kept byte for byte, so the image ID stays docker's.

use kiln_solver::Digest;
use oci_spec::image::Descriptor;
use serde::Deserialize;

use super::spool::{LoadedImage, Spool};
use super::{decompressed, layer_err, write_image, ImageIoError};
use crate::layer::compress::store_tar;
use crate::layer::Layer;
use crate::store::Store;

/// One image in `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Store every image `manifest.json` lists; name none of them (the caller does).
pub(super) fn load(store: &Store, spool: &Spool) -> Result<Vec<LoadedImage>, ImageIoError> {
    let bytes = spool.read("manifest.json", "manifest", "the archive")?;
    let saved: Vec<SavedImage> = serde_json::from_slice(&bytes).map_err(|source| ImageIoError::Json {
        what: "docker save manifest",
        path: "manifest.json".to_owned(),
        source,
    })?;
    // Check every name before storing anything.
    let mut names = Vec::with_capacity(saved.len());
    for image in &saved {
        let tags = image
            .repo_tags
            .iter()
            .flatten()
            .map(|tag| crate::store::reference::normalize(tag))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| ImageIoError::Name { listed_in: "manifest.json", source })?;
        if tags.is_empty() {
            return Err(ImageIoError::NoName { image: image.config.clone() });
        }
        names.push(tags);
    }
    saved
        .iter()
        .zip(names)
        .map(|(image, names)| {
            let (descriptor, layers) = load_image(store, spool, image)?;
            Ok(LoadedImage { names, descriptor, layers })
        })
        .collect()
}

/// Store one image; its manifest, and its layers with their paths in the archive.
fn load_image(
    store: &Store,
    spool: &Spool,
    image: &SavedImage,
) -> Result<(Descriptor, Vec<(String, Layer)>), ImageIoError> {
    let config = spool.read(&image.config, "image config", "manifest.json")?;
    if let Some(expected) = digest_in_path(&image.config) {
        let actual = Digest::of(&config);
        if actual != expected {
            return Err(ImageIoError::DigestMismatch { expected: expected.to_string(), actual: actual.to_string() });
        }
    }
    let parsed = Store::parse_image_config(&config).map_err(|source| ImageIoError::Json {
        what: "image config",
        path: image.config.clone(),
        source,
    })?;
    let diff_ids = parsed.rootfs().diff_ids();
    if diff_ids.len() != image.layers.len() {
        return Err(ImageIoError::LayerCount {
            image: image.config.clone(),
            layers: image.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (path, expected) in image.layers.iter().zip(diff_ids) {
        let file = spool.open(path, "layer", "manifest.json")?;
        let tar = decompressed(file, &format!("layer {path}"))?;
        let layer = store_tar(store, path, tar).map_err(layer_err(store))?;
        if layer.diff_id.as_str() != expected {
            return Err(ImageIoError::DiffIdMismatch {
                layer: path.clone(),
                expected: expected.clone(),
                actual: layer.diff_id.to_string(),
            });
        }
        layers.push(layer);
    }
    let descriptor = write_image(store, &config, &layers)?;
    Ok((descriptor, image.layers.iter().cloned().zip(layers).collect()))
}

/// The digest a file is named by: `<hex>.json` (docker before 25) or
/// `blobs/sha256/<hex>` (docker 25 on).
fn digest_in_path(path: &str) -> Option<Digest> {
    let name = path.rsplit('/').next()?;
    let hex = name.strip_suffix(".json").unwrap_or(name);
    format!("sha256:{hex}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{gzip, raw_tar, tar_of, verify_image};
    use super::super::{load_archive, ImageIoError};
    use super::*;
    use serde_json::json;

    fn config_for(diff_ids: &[&Digest]) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "test"}],
        }))
        .unwrap()
    }

    /// One image to save: its tags, its layer tar, whether to gzip the layer,
    /// and the diffID its config claims (the layer's own when `None`).
    type Saved<'a> = (&'a [&'a str], &'a [u8], bool, Option<&'a Digest>);

    /// A docker save archive of `images`.
    fn docker_save(images: &[Saved]) -> Vec<u8> {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut manifest = Vec::new();
        for (i, (tags, layer, gz, diff_id)) in images.iter().enumerate() {
            let diff_id = diff_id.cloned().unwrap_or_else(|| Digest::of(layer));
            let config = config_for(&[&diff_id]);
            let config_path = format!("{}.json", Digest::of(&config).hex());
            let layer_path = format!("{i}/layer.tar");
            let layer = if *gz { gzip(layer) } else { layer.to_vec() };
            manifest.push(json!({"Config": config_path, "RepoTags": tags, "Layers": [layer_path]}));
            files.push((config_path, config));
            files.push((layer_path, layer));
        }
        files.push(("manifest.json".into(), serde_json::to_vec(&manifest).unwrap()));
        // Docker 25 on writes an OCI layout beside manifest.json; manifest.json wins.
        files.push(("index.json".into(), b"not what docker writes".to_vec()));
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        tar_of(&refs)
    }

    #[test]
    fn loads_a_docker_save_archive() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer_a = tar_of(&[("hello.txt", b"hello")]);
        let layer_b = tar_of(&[("bin/tool", b"#!/bin/sh\n")]);
        let archive = docker_save(&[
            (&["busybox:1.36", "docker.io/library/busybox"], &layer_a, false, None),
            (&["me/tool:v1"], &layer_b, true, None),
        ]);
        let names = load_archive(&store, &gzip(&archive)[..]).unwrap();
        assert_eq!(names, ["busybox:1.36", "busybox:latest", "me/tool:v1"]);
        let config = verify_image(&store, "busybox:1.36");
        assert_eq!(config.rootfs().diff_ids(), &[Digest::of(&layer_a).to_string()]);
        let config = verify_image(&store, "me/tool:v1");
        assert_eq!(config.rootfs().diff_ids(), &[Digest::of(&layer_b).to_string()]);
        assert_eq!(config.config().as_ref().unwrap().cmd().as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(std::fs::read_dir(store.work_dir()).unwrap().count(), 0);
    }

    #[test]
    fn loads_an_image_whose_config_has_no_history() {
        // The OCI spec makes `history` optional; oci-spec 0.7 alone would refuse it.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = tar_of(&[("hello.txt", b"hello")]);
        let mut config: serde_json::Value = serde_json::from_slice(&config_for(&[&Digest::of(&layer)])).unwrap();
        config.as_object_mut().unwrap().remove("history");
        let config = serde_json::to_vec(&config).unwrap();
        let config_path = format!("{}.json", Digest::of(&config).hex());
        let manifest = json!([{"Config": config_path, "RepoTags": ["nohistory:v1"], "Layers": ["0/layer.tar"]}]);
        let archive = tar_of(&[
            ("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
            (&config_path, &config),
            ("0/layer.tar", &layer),
        ]);
        assert_eq!(load_archive(&store, &archive[..]).unwrap(), ["nohistory:v1"]);
        let loaded = verify_image(&store, "nohistory:v1");
        assert!(loaded.history().is_empty());
        assert_eq!(loaded.rootfs().diff_ids(), &[Digest::of(&layer).to_string()]);
        // The config is kept byte for byte, so the image ID stays docker's.
        let (manifest, _) = store.image_parts(&store.get("nohistory:v1").unwrap()).unwrap();
        assert_eq!(manifest.config().digest().to_string(), Digest::of(&config).to_string());
    }

    #[test]
    fn a_corrupt_layer_loads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let good = tar_of(&[("a", b"a")]);
        let bad = tar_of(&[("b", b"b")]);
        let wrong = Digest::of(b"something else");
        let archive = docker_save(&[(&["good:1"], &good, false, None), (&["bad:1"], &bad, false, Some(&wrong))]);
        let err = load_archive(&store, &archive[..]).unwrap_err();
        assert!(matches!(&err, ImageIoError::DiffIdMismatch { layer, .. } if layer == "1/layer.tar"), "{err:?}");
        assert!(store.images().unwrap().is_empty());
    }

    #[test]
    fn a_layer_that_cannot_be_extracted_loads_nothing() {
        use tar::EntryType::{Link, Regular};
        let good = tar_of(&[("a", b"a")]);
        for (case, bad) in [
            ("an entry that climbs out", raw_tar(&[("ok", Regular, "", b"ok"), ("../x", Regular, "", b"x")])),
            ("a hard link to a file not in the layer", raw_tar(&[("h", Link, "/etc/passwd", b"")])),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let archive = docker_save(&[(&["good:1"], &good, false, None), (&["bad:1"], &bad, false, None)]);
            let err = load_archive(&store, &archive[..]).unwrap_err();
            assert!(matches!(&err, ImageIoError::Unusable { layer, .. } if layer == "1/layer.tar"), "{case}: {err:?}");
            assert!(store.images().unwrap().is_empty(), "{case}");
            assert!(!dir.path().join("snapshots/x").exists() && !dir.path().join("x").exists(), "{case}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_name_or_find() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = tar_of(&[("a", b"a")]);
        let untagged = docker_save(&[(&[], &layer, false, None)]);
        let err = load_archive(&store, &untagged[..]).unwrap_err();
        assert!(matches!(err, ImageIoError::NoName { .. }), "{err:?}");
        assert!(err.to_string().contains("tag it"));

        let manifest = json!([{"Config": "c.json", "RepoTags": ["x"], "Layers": ["l/layer.tar"]}]);
        let config = config_for(&[&Digest::of(&layer)]);
        let missing = tar_of(&[("manifest.json", &serde_json::to_vec(&manifest).unwrap()), ("c.json", &config)]);
        let err = load_archive(&store, &missing[..]).unwrap_err();
        assert_eq!(err.to_string(), "layer l/layer.tar listed in manifest.json is missing from the archive");

        let err = load_archive(&store, &tar_of(&[("x", b"y")])[..]).unwrap_err();
        assert!(matches!(err, ImageIoError::NotAnArchive), "{err:?}");
        assert!(store.images().unwrap().is_empty());
    }

    #[test]
    fn digests_in_paths() {
        let d = Digest::of(b"x");
        for (input, want) in [
            (format!("{}.json", d.hex()), Some(&d)),
            (format!("blobs/sha256/{}", d.hex()), Some(&d)),
            ("config.json".to_owned(), None),
        ] {
            assert_eq!(digest_in_path(&input).as_ref(), want, "{input}");
        }
    }
}
