//! The build cache in the local store: `<root>/cache/<key hex>.json`, one
//! record per file, each written atomically (temp file, rename), so
//! concurrent builds never read half a record.
//!
//! Records are not fsync'ed (a sync cost a small build's step 1-3 ms here).
//! What they name is: a step's blob is synced before its record is written.
//! A power cut may then leave a record missing, empty or holding whatever
//! its blocks held before (no journal orders them): each record names its
//! key, and one that does not parse or names another key is a miss, so
//! such a record only costs running its step again.

use std::fs;
use std::path::PathBuf;

use kiln_solver::CacheKey;

use super::{CacheError, CacheRecord, CacheStorage};
use crate::store::Store;

/// Cache records kept in the store, beside the blobs they name.
#[derive(Debug, Clone)]
pub struct LocalCache {
    store: Store,
}

impl LocalCache {
    /// The cache of `store`.
    pub fn new(store: &Store) -> Self {
        Self { store: store.clone() }
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.store.cache_dir().join(format!("{}.json", key.0.hex()))
    }
}

impl LocalCache {
    /// The usable record for `key` in this store, as [`CacheStorage::load`]
    /// finds it but without making it the most recently used: for a look
    /// at an earlier build's result (a donor snapshot) that is not a hit.
    pub fn peek(&self, key: &CacheKey) -> Option<CacheRecord> {
        let bytes = fs::read(self.path(key)).ok()?;
        // Not this key's (see the module docs), or written before records named theirs.
        let named: Named = serde_json::from_slice(&bytes).ok()?;
        if named.key.as_deref() != Some(key.to_string().as_str()) {
            return None;
        }
        let record = CacheRecord::decode(&bytes)?;
        // Blobs may have been removed since; the record is then of no use.
        record.layers.iter().all(|l| self.store.has_blob(&l.digest)).then_some(record)
    }
}

impl CacheStorage for LocalCache {
    fn load(&self, key: &CacheKey) -> Option<CacheRecord> {
        let record = self.peek(key);
        if record.is_some() {
            // The size cap evicts the least recently used records first: a
            // hit makes this one the most recent. Best effort: a record that
            // cannot be touched is only evicted sooner.
            let _ = fs::File::options()
                .write(true)
                .open(self.path(key))
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        }
        record
    }

    fn save(&self, key: &CacheKey, record: &CacheRecord) -> Result<(), CacheError> {
        let mut json = serde_json::to_value(record).expect("a cache record serialises");
        json["key"] = key.to_string().into();
        let bytes = serde_json::to_vec(&json).expect("a cache record serialises");
        crate::store::write_hint(&self.path(key), &bytes)
            .map_err(|source| CacheError::Save { key: key.to_string(), source })
    }
}

/// The key a stored record names.
#[derive(serde::Deserialize)]
struct Named {
    key: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Layer;
    use kiln_solver::Digest;

    #[test]
    fn saved_records_load_until_their_blobs_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = LocalCache::new(&store);
        let key = CacheKey(Digest::of(b"key"));
        assert_eq!(cache.load(&key), None);
        let (digest, size) = store.write_blob(b"layer").unwrap();
        let record = CacheRecord::new(vec![Layer { digest: digest.clone(), diff_id: Digest::of(b"t"), size }], None);
        cache.save(&key, &record).unwrap();
        // A hit is a use: the size cap evicts the least recently used first.
        let long_ago = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options().write(true).open(cache.path(&key)).unwrap().set_modified(long_ago).unwrap();
        // A peek is not.
        assert_eq!(cache.peek(&key), Some(record.clone()));
        assert_eq!(fs::metadata(cache.path(&key)).unwrap().modified().unwrap(), long_ago);
        assert_eq!(cache.load(&key), Some(record));
        let used = fs::metadata(cache.path(&key)).unwrap().modified().unwrap();
        assert!(used.elapsed().unwrap() < std::time::Duration::from_secs(60), "{used:?}");
        fs::remove_file(store.blob_path(&digest)).unwrap();
        assert_eq!(cache.load(&key), None);
        fs::write(cache.path(&key), b"{").unwrap();
        assert_eq!(cache.load(&key), None);
    }

    #[test]
    fn a_record_that_names_another_key_or_none_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cache = LocalCache::new(&store);
        let (digest, size) = store.write_blob(b"layer").unwrap();
        let record = CacheRecord::new(vec![Layer { digest: digest.clone(), diff_id: Digest::of(b"t"), size }], None);
        let (key, other) = (CacheKey(Digest::of(b"key")), CacheKey(Digest::of(b"other")));
        cache.save(&other, &record).unwrap();
        // What a power cut may leave: another record's bytes under this key's name.
        fs::copy(cache.path(&other), cache.path(&key)).unwrap();
        assert_eq!(cache.load(&key), None);
        assert_eq!(cache.load(&other), Some(record.clone()));
        fs::write(cache.path(&key), record.encode()).unwrap();
        assert_eq!(cache.load(&key), None, "a record that names no key");
    }
}
