//! The cache as an OCI artifact: what `--cache-to` writes and `--cache-from`
//! reads, in a folder ([`super::dir`]) or a registry ([`super::registry`]).
//!
//! One image manifest (`application/vnd.oci.image.manifest.v1+json`) with
//! `artifactType` [`ARTIFACT_TYPE`]; its config blob ([`CONFIG_TYPE`]) holds
//! every record by key, its layers are the layer blobs those records name
//! (each once). Because it is a plain manifest whose blobs are all listed, any
//! registry keeps them, and pushes skip the blobs it already has; a reader
//! never trusts the records' blobs before the store has verified them.
//!
//! The config (see the module docs of [`super`] for one record):
//!
//! ```json
//! {"version": 1, "records": {"sha256:<cache key>": {"version": 1, "layers": […], "created": …}}}
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_solver::{CacheKey, Digest};
use oci_spec::image::{Descriptor, DescriptorBuilder, MediaType};
use serde::{Deserialize, Serialize};

use super::{CacheError, CacheRecord, CacheStorage};
use crate::content::{copy_blob, Provider};
use crate::layer::compress::Form;
use crate::store::Store;

/// The manifest's `artifactType`.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.cache.v1";
/// The config blob's media type.
pub const CONFIG_TYPE: &str = "application/vnd.kiln.cache.config.v1+json";
/// The manifest's media type.
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Every record an export carries, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheArtifact {
    /// The format version, [`super::RECORD_VERSION`].
    pub version: u32,
    /// Records by cache key.
    pub records: BTreeMap<CacheKey, CacheRecord>,
}

/// The blobs of one artifact, and the manifest that lists them.
pub(crate) struct Encoded {
    /// The config blob.
    pub config: Vec<u8>,
    /// The manifest.
    pub manifest: Vec<u8>,
    /// Each layer blob once, in the order the manifest lists them.
    pub layers: Vec<Descriptor>,
}

impl CacheArtifact {
    /// An artifact of `records`.
    pub fn new(records: BTreeMap<CacheKey, CacheRecord>) -> Self {
        Self { version: super::RECORD_VERSION, records }
    }

    /// The config, the manifest and the layers it lists, each layer's media
    /// type read from its blob in `store` (an export's are compressed, see
    /// [`super::layered::export`]).
    pub(crate) fn encode(&self, store: &Store) -> Encoded {
        let config = serde_json::to_vec(self).expect("a cache artifact serialises");
        let mut seen = std::collections::BTreeSet::new();
        let layers: Vec<Descriptor> = self
            .records
            .values()
            .flat_map(|r| &r.layers)
            .filter(|l| seen.insert(l.digest.clone()))
            .map(|l| {
                let form = Form::of_layer(store, l).unwrap_or(Form::Gzip);
                layer_descriptor(form.oci_media_type(), &l.digest, l.size)
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": Digest::of(&config).as_str(), "size": config.len()},
            "layers": layers,
        });
        let manifest = serde_json::to_vec(&manifest).expect("a manifest serialises");
        Encoded { config, manifest, layers }
    }

    /// The artifact whose config is `config`; records of another version are dropped.
    pub(crate) fn decode(config: &[u8], place: &str) -> Result<Self, CacheError> {
        let mut artifact: Self =
            serde_json::from_slice(config).map_err(|source| CacheError::Format { place: place.to_owned(), source })?;
        artifact.records.retain(|_, r| r.version == super::RECORD_VERSION);
        Ok(artifact)
    }
}

/// What a reader needs of the manifest: its config.
#[derive(Deserialize)]
pub(crate) struct Manifest {
    /// The config blob.
    pub config: Descriptor,
}

impl Manifest {
    /// The manifest in `bytes`, if it is a kiln cache's.
    pub(crate) fn decode(bytes: &[u8], place: &str) -> Result<Self, CacheError> {
        let manifest: Self =
            serde_json::from_slice(bytes).map_err(|source| CacheError::Format { place: place.to_owned(), source })?;
        if manifest.config.media_type().to_string() != CONFIG_TYPE {
            return Err(CacheError::NotACache {
                place: place.to_owned(),
                media_type: manifest.config.media_type().to_string(),
            });
        }
        Ok(manifest)
    }
}

/// A layer blob's descriptor.
pub(crate) fn layer_descriptor(media_type: MediaType, digest: &Digest, size: u64) -> Descriptor {
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(crate::digest::to_oci(digest))
        .size(size)
        .build()
        .expect("every required field is set")
}

/// A cache another build exported, read-only: a record it holds is brought
/// into the store (its layer blobs copied and verified by the store's
/// [`crate::content::Ingester`]) when it is loaded.
pub struct ImportedCache {
    store: Store,
    records: BTreeMap<CacheKey, CacheRecord>,
    blobs: Arc<dyn Provider + Send + Sync>,
}

impl ImportedCache {
    /// The records of `artifact`, their blobs from `blobs`, brought into `store`.
    pub fn new(store: &Store, artifact: CacheArtifact, blobs: Arc<dyn Provider + Send + Sync>) -> Self {
        Self { store: store.clone(), records: artifact.records, blobs }
    }
}

impl CacheStorage for ImportedCache {
    fn load(&self, key: &CacheKey) -> Option<CacheRecord> {
        let record = self.records.get(key)?;
        for layer in &record.layers {
            // A blob that is gone or fails verification makes the record useless: a miss.
            // The media type is not checked on the way in: any form is read.
            let desc = layer_descriptor(MediaType::ImageLayerGzip, &layer.digest, layer.size);
            copy_blob(&*self.blobs, &self.store, &desc).ok()?;
            // The digest proves the blob, not the diffID the record pairs it
            // with: snapshots are kept by diffID, so a lie there would put
            // this blob's files under another layer's name. Checked as pulls do.
            // The layers stay as they came (compressed): a base image's among
            // them must keep its digest, and nothing tells them apart.
            let blob = std::fs::File::open(self.store.blob_path(&layer.digest)).ok()?;
            if crate::image_io::diff_id(blob, &layer.digest).ok()? != layer.diff_id {
                return None;
            }
        }
        Some(record.clone())
    }

    fn save(&self, _key: &CacheKey, _record: &CacheRecord) -> Result<(), CacheError> {
        // Read-only: what a build makes goes to the local cache and `--cache-to`.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;

    #[test]
    fn artifacts_round_trip_and_list_each_blob_once() {
        let layer = |b: &[u8]| Layer { digest: Digest::of(b), diff_id: Digest::of(b"t"), size: b.len() as u64 };
        let mut records = BTreeMap::new();
        for (key, layers) in [(&b"k1"[..], vec![layer(b"a")]), (b"k2", vec![layer(b"a"), layer(b"b")]), (b"k3", vec![])]
        {
            records.insert(CacheKey(Digest::of(key)), CacheRecord::new(layers, None));
        }
        let artifact = CacheArtifact::new(records);
        let dir = tempfile::tempdir().unwrap();
        let encoded = artifact.encode(&Store::open(dir.path()).unwrap());
        assert_eq!(encoded.layers.len(), 2);
        assert_eq!(CacheArtifact::decode(&encoded.config, "x").unwrap(), artifact);
        let manifest = Manifest::decode(&encoded.manifest, "x").unwrap();
        assert_eq!(manifest.config.size(), encoded.config.len() as u64);
        let image = br#"{"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}}"#;
        assert!(matches!(Manifest::decode(image, "x"), Err(CacheError::NotACache { .. })));
    }
}
