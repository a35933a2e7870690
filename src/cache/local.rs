//! The build cache in the local store: `<root>/cache/<key hex>.json`, one
//! record per file, each written atomically (temp file, fsync, rename), so
//! concurrent builds never read half a record.

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
        let record = CacheRecord::decode(&fs::read(self.path(key)).ok()?)?;
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
        crate::store::write_atomic(&self.path(key), &record.encode())
            .map_err(|source| CacheError::Save { key: key.to_string(), source })
    }
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
}
