//! The store-wide lock that keeps garbage collection from racing a build.
//!
//! Whatever adds roots to the store (a build, a pull, a load, a tag) holds it
//! shared for its whole run: until its image is named, what it wrote is
//! reachable from nothing, and a collection would take it. Collection holds
//! it exclusive, so it sees the store between runs only. `flock(2)` locks go
//! with the process: one that is killed never leaves the store locked.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use fs2::FileExt;

use super::GcError;
use crate::store::Store;

/// A held store lock; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Wait for the lock shared: runs that add to the store hold it so.
    pub fn shared(store: &Store) -> Result<Self, GcError> {
        let (file, path) = open(store)?;
        FileExt::lock_shared(&file).map_err(|source| GcError::Lock { path, source })?;
        Ok(Self { _file: file })
    }

    /// Wait for the lock exclusive: no run is then adding to the store.
    pub fn exclusive(store: &Store) -> Result<Self, GcError> {
        let (file, path) = open(store)?;
        FileExt::lock_exclusive(&file).map_err(|source| GcError::Lock { path, source })?;
        Ok(Self { _file: file })
    }

    /// The lock exclusive if no run holds it now; `None` when one does.
    pub fn try_exclusive(store: &Store) -> Result<Option<Self>, GcError> {
        let (file, path) = open(store)?;
        match FileExt::try_lock_exclusive(&file) {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(e) if e.kind() == fs2::lock_contended_error().kind() => Ok(None),
            Err(source) => Err(GcError::Lock { path, source }),
        }
    }
}

fn open(store: &Store) -> Result<(File, PathBuf), GcError> {
    let path = store.root().join("store.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| GcError::Lock { path: path.clone(), source })?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_keep_collection_out_until_they_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = StoreLock::shared(&store).unwrap();
        let b = StoreLock::shared(&store).unwrap();
        assert!(StoreLock::try_exclusive(&store).unwrap().is_none());
        drop(a);
        assert!(StoreLock::try_exclusive(&store).unwrap().is_none());
        drop(b);
        let gc = StoreLock::try_exclusive(&store).unwrap().expect("no holder left");
        assert!(StoreLock::try_exclusive(&store).unwrap().is_none());
        drop(gc);
    }
}
