//! The first pass of a COPY from the host (the context, or a named one): its
//! checksum for the cache key, through each folder's [`ContextIndex`], so a
//! file unchanged since an earlier build is not read again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use kiln_frontend::CopyOp;
use kiln_solver::Digest;

use super::{Engine, EngineError};
use crate::context::archive::TEMP_PREFIX;
use crate::context::index::ContextIndex;
use crate::copy::{CopyError, Listing, SourceRoot};
use crate::store::Store;

/// The index of each context folder a build reads, opened when first read.
pub(super) struct Indexes {
    dir: PathBuf,
    open: Mutex<HashMap<PathBuf, Arc<ContextIndex>>>,
}

impl Indexes {
    pub(super) fn new(store: &Store) -> Self {
        Indexes { dir: store.context_index_dir(), open: Mutex::default() }
    }

    /// The index of `from`; none for a stage's or image's files, which are
    /// read-only snapshots whose checksum no cache key takes.
    pub(super) fn of(&self, from: &SourceRoot) -> Option<Arc<ContextIndex>> {
        let SourceRoot::Context { root, .. } = from else { return None };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let index = open.entry(root.clone()).or_insert_with(|| {
            // A context from stdin is a new folder every build: an index on
            // disk would only push out those of real folders.
            let once = root.file_name().is_some_and(|n| n.to_string_lossy().starts_with(TEMP_PREFIX))
                && root.parent().is_some_and(|p| std::env::temp_dir().canonicalize().is_ok_and(|t| t == p));
            Arc::new(if once { ContextIndex::in_memory(root) } else { ContextIndex::open(&self.dir, root) })
        });
        Some(index.clone())
    }
}

impl Engine {
    /// What `op` reads of `from`, and its checksum; entry by entry when
    /// `list` is set (see [`Listing::entries`]).
    pub(super) fn scan(&self, from: &SourceRoot, op: &CopyOp, list: bool) -> Result<Listing, CopyError> {
        let index = self.indexes.of(from);
        let listing = crate::copy::scan(from, op, index.as_deref(), list)?;
        if let Some(index) = index {
            // Only a cache: a build that cannot write it reads the files again next time.
            let _ = index.save();
        }
        Ok(listing)
    }

    /// The checksum of what `op` reads of `from`, for its cache key.
    pub(super) fn host_checksum(&self, from: &SourceRoot, op: &CopyOp) -> Result<Digest, CopyError> {
        Ok(self.scan(from, op, false)?.checksum)
    }

    /// What a COPY from the context or a named context reads, entry by
    /// entry, with the checksum of its cache key (cheap for files the
    /// context index knows); `None` for a COPY from elsewhere.
    pub fn copy_listing(&self, op: &CopyOp) -> Result<Option<Listing>, EngineError> {
        match self.host_source(&op.from)? {
            Some(from) => Ok(Some(self.scan(from, op, true)?)),
            None => Ok(None),
        }
    }

    /// The index of the folder a COPY reads, holding the digests its cache
    /// key was made of, for the layer to be checked against.
    pub(super) fn planned(&self, from: &SourceRoot) -> Option<Arc<ContextIndex>> {
        self.indexes.of(from)
    }
}
