//! Blobs: written to `ingest/`, hashed while written, verified, fsync'ed, then
//! renamed into `oci/blobs/sha256/<hex>`, so a blob path never holds partial content.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use kiln_solver::Digest;
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use super::blob_pipe::{write_behind, Pipe, PIPE_AFTER, WRITE_BEHIND};
use super::{io_err, Store, StoreError};

/// Write `bytes` to `path` atomically: temp file in the same folder, fsync, rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = NamedTempFile::new_in(dir).map_err(io_err("creating a temp file in", dir))?;
    tmp.write_all(bytes).map_err(io_err("writing", tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_err("syncing", tmp.path()))?;
    tmp.persist(path).map_err(|e| io_err("renaming into", path)(e.error))?;
    Ok(())
}

/// Write `bytes` to `path` as [`write_atomic`] does but without the fsync:
/// for hints (explain's records, the size memo), which a crash may leave
/// empty or torn, and whose readers then take them as absent. Readers never
/// see a partial file while kiln runs; a step saves about 1 ms a hint.
pub(crate) fn write_hint(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = NamedTempFile::new_in(dir).map_err(io_err("creating a temp file in", dir))?;
    tmp.write_all(bytes).map_err(io_err("writing", tmp.path()))?;
    tmp.persist(path).map_err(|e| io_err("renaming into", path)(e.error))?;
    Ok(())
}

/// A blob being written. Dropped without [`BlobWriter::commit`], it leaves nothing behind.
pub struct BlobWriter {
    tmp: NamedTempFile,
    hasher: Sha256,
    size: u64,
    /// Up to where the kernel was asked to start writing the file back.
    written_back: u64,
    blobs: PathBuf,
    /// Past [`PIPE_AFTER`] bytes, the thread that writes them.
    pipe: Option<Pipe>,
    /// Whether that thread writes around the page cache (see
    /// [`BlobWriter::bypass_page_cache`]).
    direct: bool,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        let mut rest = buf;
        if self.pipe.is_none() {
            // Up to PIPE_AFTER exactly, so that the pipe starts aligned.
            let room = usize::try_from(PIPE_AFTER - self.size).unwrap_or(usize::MAX);
            let (now, later) = rest.split_at(rest.len().min(room));
            self.tmp.write_all(now)?;
            self.size += now.len() as u64;
            if self.size - self.written_back >= WRITE_BEHIND {
                self.written_back = write_behind(self.tmp.as_file(), self.written_back, self.size);
            }
            if self.size == PIPE_AFTER {
                self.pipe = Some(Pipe::start(self.tmp.as_file(), self.written_back, self.size, self.direct)?);
            }
            rest = later;
        }
        if let Some(pipe) = &mut self.pipe {
            pipe.write(rest)?;
            self.size += rest.len() as u64;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

impl BlobWriter {
    /// Nothing will read this blob back soon (a layer whose snapshot is made
    /// from the same stream): its bytes past the first MiBs go straight to
    /// the disk, not through the page cache (see [`super::blob_pipe`]).
    pub fn bypass_page_cache(&mut self) {
        self.direct = true;
    }

    /// Finish the blob: check it against `expected` when given, and move it into place.
    /// A blob that is already stored counts as written.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        let (digest, size, staged) = self.stage(expected)?;
        if let Some(staged) = staged {
            staged.place()?;
        }
        Ok((digest, size))
    }

    /// [`BlobWriter::commit`] but for the sync and the move into place,
    /// left to the [`Staged`] blob (`None` when the blob is stored already).
    pub fn stage(mut self, expected: Option<&Digest>) -> Result<(Digest, u64, Option<Staged>), StoreError> {
        if let Some(mut pipe) = self.pipe.take() {
            pipe.finish().map_err(io_err("writing", self.tmp.path()))?;
        }
        self.tmp.flush().map_err(io_err("writing", self.tmp.path()))?;
        let digest = Digest::from_hasher(self.hasher);
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(StoreError::DigestMismatch { expected: expected.to_string(), actual: digest.to_string() });
            }
        }
        let path = self.blobs.join(digest.hex());
        let staged = (!path.exists()).then_some(Staged { tmp: self.tmp, path });
        Ok((digest, self.size, staged))
    }
}

/// A blob written and checked, not yet in place; dropped, it leaves nothing.
pub struct Staged {
    tmp: NamedTempFile,
    path: PathBuf,
}

impl Staged {
    /// Sync the blob and move it into place.
    pub fn place(self) -> Result<(), StoreError> {
        self.tmp.as_file().sync_all().map_err(io_err("syncing", self.tmp.path()))?;
        self.tmp.persist(&self.path).map_err(|e| io_err("renaming into", &self.path)(e.error))?;
        Ok(())
    }

    /// Sync every blob at once (the waits for the disk overlap: an image's
    /// config and manifest cost one instead of two), then move each into place.
    pub fn place_all(staged: Vec<Staged>) -> Result<(), StoreError> {
        std::thread::scope(|s| {
            let syncs: Vec<_> = staged.iter().map(|b| s.spawn(|| b.tmp.as_file().sync_all())).collect();
            for (sync, b) in syncs.into_iter().zip(&staged) {
                let done = sync.join().unwrap_or_else(|_| Err(io::Error::other("the syncing thread panicked")));
                done.map_err(io_err("syncing", b.tmp.path()))?;
            }
            Ok::<(), StoreError>(())
        })?;
        for b in staged {
            b.tmp.persist(&b.path).map_err(|e| io_err("renaming into", &b.path)(e.error))?;
        }
        Ok(())
    }
}

impl Store {
    /// Path of a blob (which may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.layout().join("blobs/sha256").join(digest.hex())
    }

    /// Whether a blob is stored.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Start writing a blob.
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        let ingest = self.root().join("ingest");
        let tmp = tempfile::Builder::new()
            .prefix(&super::temp_prefix("blob"))
            .tempfile_in(&ingest)
            .map_err(io_err("creating a temp file in", &ingest))?;
        Ok(BlobWriter {
            tmp,
            hasher: Sha256::new(),
            size: 0,
            written_back: 0,
            blobs: self.layout().join("blobs/sha256"),
            pipe: None,
            direct: false,
        })
    }

    /// Store `bytes` as a blob.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        self.stage_blob(bytes).and_then(|(digest, size, staged)| {
            staged.map_or(Ok(()), Staged::place)?;
            Ok((digest, size))
        })
    }

    /// Write `bytes` as a blob, not yet in place (see [`BlobWriter::stage`]).
    pub fn stage_blob(&self, bytes: &[u8]) -> Result<(Digest, u64, Option<Staged>), StoreError> {
        let mut w = self.blob_writer()?;
        w.write_all(bytes).map_err(io_err("writing", w.tmp.path()))?;
        w.stage(None)
    }

    /// Read a stored blob as JSON.
    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        digest: &Digest,
    ) -> Result<T, StoreError> {
        let bytes = fs::read(self.blob_path(digest)).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob(digest.to_string()),
            _ => crate::fsutil::PathError { action: "reading", path: self.blob_path(digest), source: e }.into(),
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json { what, digest: digest.to_string(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::super::blob_pipe::CHUNK;
    use super::*;

    #[test]
    fn blobs_are_verified_and_nothing_partial_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d, size) = store.write_blob(b"hello").unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert_eq!(size, 5);
        assert_eq!(fs::read(store.blob_path(&d)).unwrap(), b"hello");
        // Writing it again is fine.
        store.write_blob(b"hello").unwrap();

        let wrong = Digest::of(b"other");
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"hello!").unwrap();
        let err = w.commit(Some(&wrong)).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(!store.has_blob(&wrong));
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0, "ingest left dirty");

        drop(store.blob_writer().unwrap());
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn a_big_blob_written_by_its_own_thread_is_whole_and_a_dropped_one_leaves_nothing() {
        // On the disk a store would be on (/tmp may be a tmpfs, which takes
        // no direct writes).
        let dir = tempfile::tempdir_in(Path::new(env!("CARGO_MANIFEST_DIR")).join("target")).unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Past the threshold, in pieces that straddle the chunks.
        let bytes: Vec<u8> = (0..PIPE_AFTER as usize * 2 + 12_345).map(|i| (i * 7 % 251) as u8).collect();
        for direct in [false, true] {
            let mut w = store.blob_writer().unwrap();
            if direct {
                w.bypass_page_cache();
            }
            for piece in bytes.chunks(CHUNK / 3 + 17) {
                w.write_all(piece).unwrap();
            }
            assert!(w.pipe.is_some(), "a blob this big is written by a thread");
            let (digest, size) = w.commit(None).unwrap();
            assert_eq!((digest.clone(), size), (Digest::of(&bytes), bytes.len() as u64), "direct: {direct}");
            assert!(fs::read(store.blob_path(&digest)).unwrap() == bytes, "direct: {direct}");
            fs::remove_file(store.blob_path(&digest)).unwrap();
        }

        let mut w = store.blob_writer().unwrap();
        w.write_all(&bytes).unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0, "ingest left dirty");
    }
}
