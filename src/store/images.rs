//! The image store: names in the OCI layout's `index.json`, one manifest
//! descriptor per name (annotation `org.opencontainers.image.ref.name`).
//! Updates are read-modify-write under an exclusive lock and replace the file
//! atomically, so concurrent builds never lose each other's tags.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::path::Path;

use fs2::FileExt;
use kiln_solver::Digest;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageIndexBuilder, ImageManifest, MediaType};

use super::reference::{self, Reference};
use super::{blobs::write_atomic, io_err, Store, StoreError};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub(super) fn empty_index() -> ImageIndex {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::<Descriptor>::new())
        .build()
        .expect("an index with every required field")
}

pub(super) fn write_index(path: &Path, index: &ImageIndex) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(index).expect("an index serialises");
    write_atomic(path, &bytes)
}

/// A named image in the store.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// `repository:tag`.
    pub name: String,
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
}

impl StoredImage {
    /// The manifest digest.
    pub fn digest(&self) -> Digest {
        crate::digest::from_oci(self.descriptor.digest()).expect("the store writes sha256 digests")
    }
}

impl Store {
    fn index_path(&self) -> std::path::PathBuf {
        self.layout().join("index.json")
    }

    fn read_index(&self) -> Result<ImageIndex, StoreError> {
        let path = self.index_path();
        let bytes = fs::read(&path).map_err(io_err("reading", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            what: "the image index",
            digest: path.display().to_string(),
            source,
        })
    }

    /// Apply `change` to the index under the store lock.
    fn update_index<T>(
        &self,
        change: impl FnOnce(&mut Vec<Descriptor>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let lock_path = self.root().join("index.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err("opening", &lock_path))?;
        lock.lock_exclusive().map_err(io_err("locking", &lock_path))?;
        let mut index = self.read_index()?;
        let mut manifests = index.manifests().clone();
        let out = change(&mut manifests)?;
        index.set_manifests(manifests);
        write_index(&self.index_path(), &index)?;
        Ok(out)
    }

    /// Every named image, sorted by name.
    pub fn images(&self) -> Result<Vec<StoredImage>, StoreError> {
        let mut out: Vec<StoredImage> = self
            .read_index()?
            .manifests()
            .iter()
            .filter_map(|d| {
                let name = d.annotations().as_ref()?.get(REF_NAME)?.clone();
                Some(StoredImage { name, descriptor: d.clone() })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The image this reference names (`name[:tag]`, or `name[:tag]@sha256:…`), if any.
    pub fn find(&self, name: &str) -> Result<Option<StoredImage>, StoreError> {
        let wanted = Reference::parse(name)?;
        Ok(self.images()?.into_iter().find(|i| wanted.matches(&i.name, i.descriptor.digest().as_ref())))
    }

    /// The image with this name, or an error that says how to list them.
    pub fn get(&self, name: &str) -> Result<StoredImage, StoreError> {
        self.find(name)?.ok_or_else(|| StoreError::NoSuchImage(name.to_owned()))
    }

    /// Point `name` at a manifest that is already stored, replacing what it named.
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<(), StoreError> {
        let name = reference::normalize(name)?;
        let digest = crate::digest::from_oci(manifest.digest())
            .map_err(|_| StoreError::MissingBlob(manifest.digest().to_string()))?;
        if !self.has_blob(&digest) {
            return Err(StoreError::MissingBlob(digest.to_string()));
        }
        let mut desc = manifest.clone();
        let mut annotations = desc.annotations().clone().unwrap_or_default();
        annotations.insert(REF_NAME.to_owned(), name.clone());
        desc.set_annotations(Some(annotations));
        self.update_index(|manifests| {
            manifests.retain(|d| ref_name(d) != Some(&name));
            manifests.push(desc);
            Ok(())
        })
    }

    /// Remove the names a reference matches: one name, or with a digest
    /// (`app@sha256:…`) every tag of that repository on that manifest. The
    /// blobs stay (shared with other images and the cache).
    pub fn untag(&self, name: &str) -> Result<Vec<StoredImage>, StoreError> {
        let wanted = Reference::parse(name)?;
        self.update_index(|manifests| {
            let mut removed = Vec::new();
            manifests.retain(|d| match ref_name(d) {
                Some(stored) if wanted.matches(stored, d.digest().as_ref()) => {
                    removed.push(StoredImage { name: stored.clone(), descriptor: d.clone() });
                    false
                }
                _ => true,
            });
            if removed.is_empty() {
                return Err(StoreError::NoSuchImage(name.to_owned()));
            }
            Ok(removed)
        })
    }

    /// The manifest and config of a stored image.
    pub fn image_parts(&self, image: &StoredImage) -> Result<(ImageManifest, ImageConfiguration), StoreError> {
        let manifest: ImageManifest = self.read_json("manifest", &image.digest())?;
        let config_digest = crate::digest::from_oci(manifest.config().digest())
            .map_err(|_| StoreError::MissingBlob(manifest.config().digest().to_string()))?;
        let config = self.read_image_config(&config_digest)?;
        Ok((manifest, config))
    }

    /// Read a stored image config (see [`Store::parse_image_config`]).
    pub fn read_image_config(&self, digest: &Digest) -> Result<ImageConfiguration, StoreError> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::MissingBlob(digest.to_string()),
            _ => crate::fsutil::PathError { action: "reading", path, source: e }.into(),
        })?;
        Self::parse_image_config(&bytes).map_err(|source| StoreError::Json {
            what: "image config",
            digest: digest.to_string(),
            source,
        })
    }

    /// Parse an image config. Every config kiln reads goes through here, not
    /// through `serde_json` straight into [`ImageConfiguration`]: oci-spec 0.7
    /// requires `history`, which the OCI image spec makes optional (and which
    /// images made by other tools may leave out), so a missing or `null`
    /// `history` is read as an empty one. Only the parsed value changes: a
    /// config is always stored as the bytes it came as, so its digest stays.
    pub fn parse_image_config(bytes: &[u8]) -> Result<ImageConfiguration, serde_json::Error> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes)?;
        if let Some(config) = value.as_object_mut() {
            if config.get("history").is_none_or(serde_json::Value::is_null) {
                config.insert("history".to_owned(), serde_json::Value::Array(Vec::new()));
            }
        }
        serde_json::from_value(value)
    }
}

fn ref_name(d: &Descriptor) -> Option<&String> {
    d.annotations().as_ref().and_then(|a: &HashMap<String, String>| a.get(REF_NAME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::DescriptorBuilder;

    #[test]
    fn tags_replace_and_untag_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d1, s1) = store.write_blob(b"{\"a\":1}").unwrap();
        let (d2, s2) = store.write_blob(b"{\"a\":2}").unwrap();
        let desc = |d: &Digest, s| {
            DescriptorBuilder::default()
                .media_type(MediaType::ImageManifest)
                .digest(crate::digest::to_oci(d))
                .size(s)
                .build()
                .unwrap()
        };
        store.tag("app", &desc(&d1, s1)).unwrap();
        store.tag("app:latest", &desc(&d2, s2)).unwrap();
        store.tag("other:v1", &desc(&d1, s1)).unwrap();
        let names: Vec<_> = store.images().unwrap().into_iter().map(|i| (i.name.clone(), i.digest())).collect();
        assert_eq!(names, vec![("app:latest".into(), d2.clone()), ("other:v1".into(), d1.clone())]);
        store.untag("app").unwrap();
        assert!(store.find("app").unwrap().is_none());
        // By digest: any tag of the repository on that manifest.
        store.tag("other:v2", &desc(&d1, s1)).unwrap();
        assert_eq!(store.find(&format!("other@{d1}")).unwrap().unwrap().digest(), d1);
        assert!(store.find(&format!("other@{d2}")).unwrap().is_none());
        assert!(store.find(&format!("app@{d1}")).unwrap().is_none());
        let removed: Vec<_> = store.untag(&format!("other@{d1}")).unwrap().into_iter().map(|i| i.name).collect();
        assert_eq!(removed, ["other:v1", "other:v2"]);
        assert!(store.images().unwrap().is_empty());
        assert!(matches!(store.find("../../etc:1"), Err(StoreError::BadName(..))));
        assert!(matches!(store.untag("app"), Err(StoreError::NoSuchImage(_))));
        let missing = Digest::of(b"nope");
        assert!(store.tag("x", &desc(&missing, 1)).is_err());
    }

    #[test]
    fn configs_without_history_parse() {
        let config = |history: Option<serde_json::Value>| {
            let mut c = serde_json::json!({"architecture": "amd64", "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": []}});
            if let Some(h) = history {
                c["history"] = h;
            }
            serde_json::to_vec(&c).unwrap()
        };
        for history in [None, Some(serde_json::Value::Null), Some(serde_json::json!([]))] {
            let parsed = Store::parse_image_config(&config(history.clone())).unwrap();
            assert!(parsed.history().is_empty(), "{history:?}");
        }
        let parsed = Store::parse_image_config(&config(Some(serde_json::json!([{"created_by": "x"}])))).unwrap();
        assert_eq!(parsed.history()[0].created_by().as_deref(), Some("x"));
        assert!(Store::parse_image_config(b"[]").is_err());
        assert!(Store::parse_image_config(b"{\"os\": \"linux\"}").is_err());
    }
}
