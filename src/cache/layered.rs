//! A build's cache: the store's own first, then each `--cache-from` in
//! order; and the record of what the build used, for `--cache-to`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kiln_solver::{CacheKey, Digest};

use super::{
    dir, registry, CacheArtifact, CacheError, CacheExport, CacheLocation, CacheRecord, CacheStorage, ImportedCache,
    LocalCache, Mode,
};
use crate::layer::Layer;
use crate::registry::RegistryConfig;
use crate::store::Store;

/// The store's cache, then imported ones; every record loaded or saved is
/// remembered (see [`Layered::used`]).
pub struct Layered {
    local: LocalCache,
    imports: Vec<ImportedCache>,
    used: Mutex<BTreeMap<CacheKey, CacheRecord>>,
}

impl Layered {
    /// `store`'s cache, then `imports` in order.
    pub fn new(store: &Store, imports: Vec<ImportedCache>) -> Self {
        Self { local: LocalCache::new(store), imports, used: Mutex::default() }
    }

    /// Every record this build loaded or saved, by key.
    pub fn used(&self) -> BTreeMap<CacheKey, CacheRecord> {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn remember(&self, key: &CacheKey, record: &CacheRecord) {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), record.clone());
    }
}

impl CacheStorage for Layered {
    fn load(&self, key: &CacheKey) -> Option<CacheRecord> {
        let record = self.local.load(key).or_else(|| {
            let record = self.imports.iter().find_map(|c| c.load(key))?;
            // Its blobs are in the store now; the record joins them, so the
            // next build here hits without asking the import again. Failing
            // to write it costs only that.
            let _ = self.local.save(key, &record);
            Some(record)
        })?;
        self.remember(key, &record);
        Some(record)
    }

    fn save(&self, key: &CacheKey, record: &CacheRecord) -> Result<(), CacheError> {
        self.local.save(key, record)?;
        self.remember(key, record);
        Ok(())
    }
}

impl<T: CacheStorage + ?Sized> CacheStorage for Arc<T> {
    fn load(&self, key: &CacheKey) -> Option<CacheRecord> {
        (**self).load(key)
    }

    fn save(&self, key: &CacheKey, record: &CacheRecord) -> Result<(), CacheError> {
        (**self).save(key, record)
    }
}

/// The cache at `from`, read into `store` as it is used; `None` when there is
/// none there yet.
pub fn import(
    store: &Store,
    config: &RegistryConfig,
    from: &CacheLocation,
) -> Result<Option<ImportedCache>, CacheError> {
    match from {
        CacheLocation::Local(src) => dir::import(store, src),
        CacheLocation::Registry(reference) => registry::import(store, config, reference),
    }
}

/// Write the records of `used` that `to.mode` selects, with their layer
/// blobs from `store`, to `to`. `image` is the built image's filesystem:
/// [`Mode::Min`] keeps the records its layers start with, the steps of the
/// final stage (a step of another stage makes layers the image does not have).
pub fn export(
    store: &Store,
    config: &RegistryConfig,
    used: &BTreeMap<CacheKey, CacheRecord>,
    image: &[Layer],
    to: &CacheExport,
) -> Result<(), CacheError> {
    // Layers leave compressed, each made once (and remembered) however many
    // records share it; the records name the compressed blobs, which any
    // store reads as it reads a pulled layer.
    let mut out: BTreeMap<Digest, Layer> = BTreeMap::new();
    let mut records = BTreeMap::new();
    for (k, r) in used.iter().filter(|(_, r)| to.mode == Mode::Max || image.starts_with(&r.layers)) {
        let mut r = r.clone();
        for layer in &mut r.layers {
            if !out.contains_key(&layer.digest) {
                let sent = crate::outbound::compressed(store, layer, to.compression)?;
                out.insert(layer.digest.clone(), sent);
            }
            *layer = out[&layer.digest].clone();
        }
        records.insert(k.clone(), r);
    }
    let artifact = CacheArtifact::new(records);
    match &to.to {
        CacheLocation::Local(dest) => dir::export(store, &artifact, dest),
        CacheLocation::Registry(reference) => registry::export(store, config, &artifact, reference),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_keeps_the_records_the_image_is_built_on() {
        // Plain (not gzip) blobs: each one's diffID is its digest.
        let layer = |b: &[u8]| Layer { digest: Digest::of(b), diff_id: Digest::of(b), size: b.len() as u64 };
        let image = [layer(b"base"), layer(b"run")];
        let stacks: [(&[u8], Vec<Layer>, bool); 4] = [
            (b"from", vec![layer(b"base")], true),
            (b"run", image.to_vec(), true),
            (b"scratch", vec![], true),
            (b"other stage", vec![layer(b"base"), layer(b"other")], false),
        ];
        let used: BTreeMap<_, _> =
            stacks.iter().map(|(k, l, _)| (CacheKey(Digest::of(k)), CacheRecord::new(l.clone(), None))).collect();
        for mode in [Mode::Min, Mode::Max] {
            let (d, s, other) =
                (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let store = Store::open(s.path()).unwrap();
            for b in [&b"base"[..], b"run", b"other"] {
                store.write_blob(b).unwrap();
            }
            let to =
                CacheExport { to: CacheLocation::Local(d.path().join("c")), mode, compression: Default::default() };
            export(&store, &RegistryConfig::default(), &used, &image, &to).unwrap();
            let read = dir::import(&Store::open(other.path()).unwrap(), &d.path().join("c")).unwrap().unwrap();
            let hits: Vec<bool> = stacks.iter().map(|(k, ..)| read.load(&CacheKey(Digest::of(k))).is_some()).collect();
            let want: Vec<bool> = stacks.iter().map(|s| mode == Mode::Max || s.2).collect();
            assert_eq!(hits, want, "{mode:?}");
        }
    }
}
