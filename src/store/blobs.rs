//! Blobs: written to `ingest/`, hashed while written, verified, fsync'ed, then
//! renamed into `oci/blobs/sha256/<hex>`, so a blob path never holds partial content.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use kiln_solver::Digest;
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

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
}

/// How much of a blob is written before its writeback is started.
const WRITE_BEHIND: u64 = 8 << 20;

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        if self.size - self.written_back >= WRITE_BEHIND {
            self.write_behind();
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

impl BlobWriter {
    /// Start the disk writing what was written so far, without waiting: the
    /// commit's fsync then waits for the last few MiB only, not for a whole
    /// layer's worth of dirty pages at once (about 3 s a GB here), while the
    /// disk would have idled as the layer was made. Best effort: a file
    /// system that cannot is synced all at once at the commit.
    fn write_behind(&mut self) {
        use std::os::fd::AsRawFd;
        let (from, len) = (self.written_back, self.size - self.written_back);
        // SAFETY: a plain syscall on a descriptor this writer owns; it
        // touches no memory of ours.
        unsafe {
            libc::sync_file_range(
                self.tmp.as_file().as_raw_fd(),
                from as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.written_back = self.size;
    }

    /// Finish the blob: check it against `expected` when given, and move it into place.
    /// A blob that is already stored counts as written.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), StoreError> {
        self.tmp.flush().map_err(io_err("writing", self.tmp.path()))?;
        let digest = Digest::from_hasher(self.hasher);
        if let Some(expected) = expected {
            if *expected != digest {
                return Err(StoreError::DigestMismatch { expected: expected.to_string(), actual: digest.to_string() });
            }
        }
        let path = self.blobs.join(digest.hex());
        if !path.exists() {
            self.tmp.as_file().sync_all().map_err(io_err("syncing", self.tmp.path()))?;
            self.tmp.persist(&path).map_err(|e| io_err("renaming into", &path)(e.error))?;
        }
        Ok((digest, self.size))
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
        })
    }

    /// Store `bytes` as a blob.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        let mut w = self.blob_writer()?;
        w.write_all(bytes).map_err(io_err("writing", w.tmp.path()))?;
        w.commit(None)
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
}
