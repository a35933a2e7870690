//! The build cache: a cache key (see `kiln_solver::CacheKey`) → the record of
//! the result a step produced, so a later build reuses it instead of running
//! the step again.
//!
//! Where records live is behind [`CacheStorage`]: [`LocalCache`] keeps them in
//! the store (`cache/<key hex>.json`); an [`ImportedCache`] is one another
//! build exported (`--cache-from`: a folder, [`dir`], or a registry,
//! [`registry`]), consulted by [`Layered`] on a local miss. The engine only
//! loads and saves [`CacheRecord`]s; [`Layered`] remembers which it used, and
//! [`export`] writes those (`--cache-to`) as an OCI artifact ([`artifact`]).
//!
//! Keys are content only (the solver's `CacheKey`: a vertex's digest, its
//! inputs' keys, and for COPY the checksum of the files' contents and
//! modes), so a hit does not depend on the store root or context path of the
//! build that wrote the record.
//!
//! # Record format, version 1
//!
//! One JSON object per key:
//!
//! ```json
//! {
//!   "version": 1,
//!   "layers": [{"digest": "sha256:…", "diff_id": "sha256:…", "size": 1234}],
//!   "created": "2024-01-02T03:04:05Z"
//! }
//! ```
//!
//! - `layers`: the result's filesystem, bottom layer first: each layer's blob
//!   digest (what a manifest names: the plain tar for a layer kiln made, so
//!   equal to its diffID; compressed for a pulled or imported one), its diffID (the uncompressed tar,
//!   what a config's rootfs names) and the blob's size.
//! - `created`: when the newest layer was made (RFC 3339), or absent for a
//!   base image without one. Kept so that an image rebuilt from cache gets the
//!   same config, and so the same digest.
//! - `version`: absent in records written before it existed, which are
//!   version 1. A record of any other version is a miss, never an error: an
//!   older kiln must not misread what a newer one wrote.
//! - `key`: in the local store's records, the key the record is for (see
//!   `local` for why); a local record without it, or naming another, is a miss.

pub mod artifact;
pub mod dir;
mod key_lock;
mod layered;
mod local;
pub mod registry;
pub mod spec;

use kiln_solver::CacheKey;
use serde::{Deserialize, Serialize};

use crate::layer::Layer;

pub use artifact::{CacheArtifact, ImportedCache};
pub use key_lock::KeyLocks;
pub use layered::{export, import, Layered};
pub use local::LocalCache;
pub use spec::{CacheExport, CacheLocation, Mode};

/// The record version this kiln writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// Errors of the build cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("saving build cache entry {key}")]
    Save {
        key: String,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("invalid cache spec {spec:?}: {why}")]
    Spec { spec: String, why: &'static str },
    #[error("invalid cache spec {spec:?}")]
    Reference {
        spec: String,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("cache {place} is not a kiln cache: its config is {media_type}")]
    NotACache { place: String, media_type: String },
    #[error("reading the cache in {place}")]
    Format {
        place: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("compressing the cache's layers")]
    Outbound(#[from] crate::outbound::OutboundError),
    #[error("writing the cache to {place}")]
    Io {
        place: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cache {reference}")]
    Registry {
        reference: String,
        #[source]
        source: Box<crate::registry::RegistryError>,
    },
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What the cache keeps of one step's result (see the module docs for the format).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The format version, [`RECORD_VERSION`].
    #[serde(default = "version_one")]
    pub version: u32,
    /// The result's layers, bottom first.
    pub layers: Vec<Layer>,
    /// When the newest layer was made (RFC 3339).
    pub created: Option<String>,
}

fn version_one() -> u32 {
    1
}

impl CacheRecord {
    /// A record of the current version.
    pub fn new(layers: Vec<Layer>, created: Option<String>) -> Self {
        Self { version: RECORD_VERSION, layers, created }
    }

    /// The record `bytes` hold, if they are one of this version.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(bytes).ok().filter(|r| r.version == RECORD_VERSION)
    }

    /// The record as stored.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a cache record serialises")
    }
}

/// Where cache records are kept.
///
/// Both methods are called from the solver's blocking threads, for different
/// keys at once and, across processes, for the same key: an implementation
/// must make a record appear whole or not at all.
pub trait CacheStorage: Send + Sync {
    /// The record stored for `key`. A missing, unreadable or unusable record
    /// (one whose blobs are gone) is `None`: a miss, never an error.
    fn load(&self, key: &CacheKey) -> Option<CacheRecord>;

    /// Store `record` for `key`, replacing any record there.
    fn save(&self, key: &CacheKey, record: &CacheRecord) -> Result<(), CacheError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_solver::Digest;

    #[test]
    fn records_round_trip_and_other_versions_are_misses() {
        let layer = Layer { digest: Digest::of(b"blob"), diff_id: Digest::of(b"tar"), size: 4 };
        let record = CacheRecord::new(vec![layer.clone()], Some("2024-01-02T03:04:05Z".into()));
        assert_eq!(CacheRecord::decode(&record.encode()), Some(record));
        let layers = serde_json::to_string(&[&layer]).unwrap();
        for (json, want) in [
            // Written before records had a version: version 1.
            (format!(r#"{{"layers":{layers},"created":null}}"#), Some(1)),
            (format!(r#"{{"version":1,"layers":{layers},"created":null}}"#), Some(1)),
            (format!(r#"{{"version":2,"layers":{layers},"created":null}}"#), None),
            ("not json".to_owned(), None),
        ] {
            assert_eq!(CacheRecord::decode(json.as_bytes()).map(|r| r.version), want, "{json}");
        }
    }
}
