//! OCI image layout archives: `oci-layout`, `index.json`, `blobs/sha256/…`.
//! Blobs are copied into the store as they are (verified), so a loaded image
//! keeps its manifest digest. An index entry that is itself an index (a
//! multi-platform image) is followed to the host platform's manifest.

use std::io;

use kiln_solver::Digest;
use oci_spec::image::{Descriptor, ImageIndex, MediaType, Os};
use sha2::{Digest as _, Sha256};

use super::spool::{LoadedImage, Spool};
use super::{decompressed, kiln_digest, ImageIoError};
use crate::content::{self, ContentError, Provider};
use crate::layer::Layer;
use crate::store::Store;

/// The name annotation of the OCI spec: a full name, or (as docker and
/// containerd write it) only the tag of the name below.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full name containerd and docker write beside [`REF_NAME`].
const CONTAINERD_NAME: &str = "io.containerd.image.name";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// How many indexes deep a manifest may be found.
const MAX_DEPTH: usize = 4;

/// Store every image `index.json` names; name none of them (the caller does).
pub(super) fn load(store: &Store, spool: &Spool) -> Result<Vec<LoadedImage>, ImageIoError> {
    let bytes = spool.read("index.json", "index", "the archive")?;
    let index: ImageIndex = parse(&bytes, "image index", "index.json")?;
    // Check every name before storing anything.
    let mut named = Vec::with_capacity(index.manifests().len());
    for entry in index.manifests() {
        let names = names_of(entry)?;
        if names.is_empty() {
            return Err(ImageIoError::NoName { image: entry.digest().to_string() });
        }
        named.push((names, entry));
    }
    named
        .into_iter()
        .map(|(names, entry)| {
            let manifest = resolve(spool, entry, 0)?;
            let (descriptor, layers) = load_manifest(store, spool, &manifest)?;
            Ok(LoadedImage { names, descriptor, layers })
        })
        .collect()
}

/// The store names of an `index.json` entry. A bare tag in [`REF_NAME`] next
/// to a full [`CONTAINERD_NAME`] is that name's tag, not a name of its own.
fn names_of(entry: &Descriptor) -> Result<Vec<String>, ImageIoError> {
    let Some(annotations) = entry.annotations() else {
        return Ok(Vec::new());
    };
    let normalize = |name: &str| {
        crate::store::reference::normalize(name)
            .map_err(|source| ImageIoError::Name { listed_in: "index.json", source })
    };
    let full = annotations.get(CONTAINERD_NAME);
    let mut names = Vec::new();
    if let Some(name) = full {
        names.push(normalize(name)?);
    }
    if let Some(name) = annotations.get(REF_NAME) {
        let bare_tag = !name.contains(['/', ':', '@']);
        if full.is_none() || !bare_tag {
            let name = normalize(name)?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Ok(names)
}

/// Follow `entry` through nested indexes to an image manifest's descriptor.
fn resolve(spool: &Spool, entry: &Descriptor, depth: usize) -> Result<Descriptor, ImageIoError> {
    match entry.media_type().as_ref() {
        t if t == MediaType::ImageManifest.as_ref() || t == DOCKER_MANIFEST => Ok(entry.clone()),
        t if t == MediaType::ImageIndex.as_ref() || t == DOCKER_MANIFEST_LIST => {
            if depth >= MAX_DEPTH {
                return Err(ImageIoError::TooDeep(entry.digest().to_string()));
            }
            let bytes = ArchiveBlobs(spool).read_verified(&kiln_digest(entry.digest())?)?;
            let index: ImageIndex = parse(&bytes, "image index", &blob_path(entry)?)?;
            let arch = crate::image::host_architecture();
            let manifests = index.manifests();
            let for_host = manifests.iter().find(|m| {
                m.platform().as_ref().is_some_and(|p| *p.os() == Os::Linux && p.architecture().to_string() == arch)
            });
            let chosen = match (for_host, manifests.as_slice()) {
                (Some(m), _) | (None, [m]) => m,
                (None, _) => {
                    return Err(ImageIoError::NoPlatform {
                        index: entry.digest().to_string(),
                        platform: format!("linux/{arch}"),
                    })
                }
            };
            resolve(spool, chosen, depth + 1)
        }
        other => Err(ImageIoError::MediaType { digest: entry.digest().to_string(), media_type: other.to_owned() }),
    }
}

/// The archive's blobs, by digest (`blobs/sha256/<hex>`): the archive as a
/// content [`Provider`].
struct ArchiveBlobs<'a>(&'a Spool);

impl Provider for ArchiveBlobs<'_> {
    fn open(&self, digest: &Digest) -> Result<Box<dyn io::Read + '_>, ContentError> {
        let path = format!("blobs/sha256/{}", digest.hex());
        match self.0.find(&path) {
            Some(file) => Ok(Box::new(io::BufReader::new(
                std::fs::File::open(file)
                    .map_err(|source| ContentError::Read { digest: digest.to_string(), source })?,
            ))),
            None => Err(ContentError::NotFound { digest: digest.to_string(), place: "the archive".to_owned() }),
        }
    }
}

/// Copy one image from the archive into the store (see
/// [`content::copy_image`]: every blob checked against its digest, the
/// manifest last), then check every layer against the diffID its config
/// lists. Returns the descriptor to name, and the layers with their paths in
/// the archive.
fn load_manifest(
    store: &Store,
    spool: &Spool,
    entry: &Descriptor,
) -> Result<(Descriptor, Vec<(String, Layer)>), ImageIoError> {
    let manifest = content::copy_image(&ArchiveBlobs(spool), store, entry)?;
    let config_bytes = store.read_verified(&kiln_digest(manifest.config().digest())?)?;
    let config = Store::parse_image_config(&config_bytes).map_err(|source| ImageIoError::Json {
        what: "image config",
        path: blob_path(manifest.config()).unwrap_or_else(|_| manifest.config().digest().to_string()),
        source,
    })?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageIoError::LayerCount {
            image: entry.digest().to_string(),
            layers: manifest.layers().len(),
            diff_ids: diff_ids.len(),
        });
    }
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (layer, expected) in manifest.layers().iter().zip(diff_ids) {
        let digest = kiln_digest(layer.digest())?;
        let actual = diff_id(Provider::open(store, &digest)?, &digest)?;
        if actual.as_str() != expected {
            return Err(ImageIoError::DiffIdMismatch {
                layer: digest.to_string(),
                expected: expected.clone(),
                actual: actual.to_string(),
            });
        }
        layers.push((blob_path(layer)?, Layer { digest, diff_id: actual, size: layer.size() }));
    }
    let mut named = entry.clone();
    named.set_annotations(None);
    Ok((named, layers))
}

/// The sha256 of a layer's uncompressed content.
pub(crate) fn diff_id(layer: impl io::Read, digest: &Digest) -> Result<Digest, ImageIoError> {
    let what = format!("layer {digest}");
    let mut tar = decompressed(layer, &what)?;
    let mut hasher = Sha256::new();
    io::copy(&mut tar, &mut hasher).map_err(|source| ImageIoError::Read { what, source })?;
    Ok(Digest::from_hasher(hasher))
}

/// Where a blob sits in the layout.
fn blob_path(d: &Descriptor) -> Result<String, ImageIoError> {
    Ok(format!("blobs/sha256/{}", kiln_digest(d.digest())?.hex()))
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &'static str, path: &str) -> Result<T, ImageIoError> {
    serde_json::from_slice(bytes).map_err(|source| ImageIoError::Json { what, path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::super::load_archive;
    use super::super::tests::{gzip, tar_of, verify_image};
    use super::*;
    use serde_json::{json, Value};

    /// An OCI layout being put together: blobs by path, and the index.
    #[derive(Default)]
    struct Layout {
        files: Vec<(String, Vec<u8>)>,
    }

    impl Layout {
        /// Add a blob; return its descriptor JSON.
        fn blob(&mut self, media_type: &str, bytes: Vec<u8>) -> Value {
            let d = Digest::of(&bytes);
            let desc = json!({"mediaType": media_type, "digest": d.as_str(), "size": bytes.len()});
            self.files.push((format!("blobs/sha256/{}", d.hex()), bytes));
            desc
        }

        fn image(&mut self, layer: &[u8]) -> Value {
            self.image_with(layer, |_| {})
        }

        /// An image whose config `edit` changes first.
        fn image_with(&mut self, layer: &[u8], edit: impl FnOnce(&mut Value)) -> Value {
            let layer_desc = self.blob("application/vnd.oci.image.layer.v1.tar+gzip", gzip(layer));
            let mut config = json!({
                "architecture": crate::image::host_architecture(), "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [Digest::of(layer).as_str()]},
                "history": [{"created_by": "test"}],
            });
            edit(&mut config);
            let config_desc =
                self.blob("application/vnd.oci.image.config.v1+json", serde_json::to_vec(&config).unwrap());
            let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config_desc, "layers": [layer_desc]});
            self.blob("application/vnd.oci.image.manifest.v1+json", serde_json::to_vec(&manifest).unwrap())
        }

        fn archive(mut self, index: Vec<Value>) -> Vec<u8> {
            let index = json!({"schemaVersion": 2, "manifests": index});
            self.files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
            self.files.push(("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()));
            let refs: Vec<(&str, &[u8])> = self.files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
            tar_of(&refs)
        }
    }

    fn annotated(mut desc: Value, annotations: Value) -> Value {
        desc["annotations"] = annotations;
        desc
    }

    #[test]
    fn loads_an_oci_layout_archive_with_a_multi_platform_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut layout = Layout::default();
        let layer_a = tar_of(&[("hello.txt", b"hello")]);
        let layer_b = tar_of(&[("bin/sh", b"not really")]);
        let app = layout.image(&layer_a);
        let host = layout.image(&layer_b);
        let mut host_entry = host.clone();
        host_entry["platform"] = json!({"architecture": crate::image::host_architecture(), "os": "linux"});
        // Not in the archive: choosing it would fail.
        let other = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::of(b"elsewhere").as_str(), "size": 9,
            "platform": {"architecture": "mips64p32", "os": "linux"}});
        let nested = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [other, host_entry]});
        let nested = layout.blob("application/vnd.oci.image.index.v1+json", serde_json::to_vec(&nested).unwrap());
        let archive = layout.archive(vec![
            annotated(app, json!({REF_NAME: "app:v1"})),
            annotated(nested, json!({REF_NAME: "latest", CONTAINERD_NAME: "docker.io/library/busybox:latest"})),
        ]);

        let names = load_archive(&store, &archive[..]).unwrap();
        assert_eq!(names, ["app:v1", "busybox:latest"]);
        let config = verify_image(&store, "app:v1");
        assert_eq!(config.rootfs().diff_ids(), &[Digest::of(&layer_a).to_string()]);
        let busybox = store.get("busybox").unwrap();
        assert_eq!(busybox.descriptor.digest().to_string(), host["digest"].as_str().unwrap());
        let config = verify_image(&store, "busybox");
        assert_eq!(config.rootfs().diff_ids(), &[Digest::of(&layer_b).to_string()]);
    }

    #[test]
    fn loads_an_image_whose_config_has_no_history() {
        // The OCI spec makes `history` optional; oci-spec 0.7 alone would refuse it.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut layout = Layout::default();
        let layer = tar_of(&[("hello.txt", b"hello")]);
        let image = layout.image_with(&layer, |c| {
            c.as_object_mut().unwrap().remove("history");
        });
        let archive = layout.archive(vec![annotated(image.clone(), json!({REF_NAME: "nohistory:v1"}))]);
        assert_eq!(load_archive(&store, &archive[..]).unwrap(), ["nohistory:v1"]);
        let config = verify_image(&store, "nohistory:v1");
        assert!(config.history().is_empty());
        assert_eq!(config.rootfs().diff_ids(), &[Digest::of(&layer).to_string()]);
        // Stored as it came: the manifest digest is the archive's.
        assert_eq!(store.get("nohistory:v1").unwrap().descriptor.digest().to_string(), image["digest"]);
    }

    #[test]
    fn a_blob_that_does_not_match_its_digest_loads_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut layout = Layout::default();
        let good = layout.image(&tar_of(&[("a", b"a")]));
        let bad_tar = tar_of(&[("b", b"b")]);
        let bad = layout.image(&bad_tar);
        // The same tar, gzipped differently: its diffID still matches, its digest no longer.
        let hex = |v: &Value| v["digest"].as_str().unwrap()["sha256:".len()..].to_owned();
        let manifest_path = format!("blobs/sha256/{}", hex(&bad));
        let (_, manifest) = layout.files.iter().find(|(p, _)| *p == manifest_path).unwrap();
        let manifest: Value = serde_json::from_slice(manifest).unwrap();
        let layer_path = format!("blobs/sha256/{}", hex(&manifest["layers"][0]));
        let mut regzipped = flate2::GzBuilder::new().filename("b.tar").write(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut regzipped, &bad_tar).unwrap();
        let (_, blob) = layout.files.iter_mut().find(|(p, _)| *p == layer_path).unwrap();
        *blob = regzipped.finish().unwrap();
        let archive = layout
            .archive(vec![annotated(good, json!({REF_NAME: "good:1"})), annotated(bad, json!({REF_NAME: "bad:1"}))]);
        let err = load_archive(&store, &archive[..]).unwrap_err();
        // Its size gives it away first here; either way it is refused.
        assert!(
            matches!(
                err,
                ImageIoError::Content(ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. })
            ),
            "{err:?}"
        );
        assert!(store.images().unwrap().is_empty());
    }

    #[test]
    fn names_come_from_the_annotations() {
        let d = |annotations: Value| -> Descriptor {
            serde_json::from_value(annotated(
                json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": Digest::of(b"m").as_str(), "size": 1}),
                annotations,
            ))
            .unwrap()
        };
        for (annotations, want) in [
            (json!({}), vec![]),
            (json!({REF_NAME: "app:v1"}), vec!["app:v1"]),
            (json!({REF_NAME: "1.36", CONTAINERD_NAME: "docker.io/library/busybox:1.36"}), vec!["busybox:1.36"]),
            (json!({REF_NAME: "mine:2", CONTAINERD_NAME: "x:1"}), vec!["x:1", "mine:2"]),
        ] {
            assert_eq!(names_of(&d(annotations.clone())).unwrap(), want, "{annotations}");
        }
        // A name that is not a reference refuses the archive, whichever annotation holds it.
        for annotations in [
            json!({REF_NAME: "../../etc:1"}),
            json!({REF_NAME: "../../x@y"}),
            json!({REF_NAME: "@"}),
            json!({REF_NAME: format!("app@{}", Digest::of(b"m"))}),
            json!({REF_NAME: "../../etc:1", CONTAINERD_NAME: "docker.io/library/busybox:1.36"}),
            json!({REF_NAME: "1.36", CONTAINERD_NAME: "../../etc:1"}),
        ] {
            let err = names_of(&d(annotations.clone())).unwrap_err();
            assert!(matches!(err, ImageIoError::Name { listed_in: "index.json", .. }), "{annotations}: {err:?}");
        }
    }
}
