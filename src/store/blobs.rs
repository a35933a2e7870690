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
    /// Past [`PIPE_AFTER`] bytes, the thread that writes them.
    pipe: Option<Pipe>,
}

/// How much of a blob is written before its writeback is started.
const WRITE_BEHIND: u64 = 8 << 20;

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        match &mut self.pipe {
            Some(pipe) => pipe.write(buf)?,
            None => {
                self.tmp.write_all(buf)?;
                if self.size - self.written_back >= WRITE_BEHIND {
                    self.written_back = write_behind(self.tmp.as_file(), self.written_back, self.size);
                }
                if self.size >= PIPE_AFTER {
                    self.pipe = Some(Pipe::start(self.tmp.as_file(), self.written_back, self.size)?);
                }
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Start the disk writing `file` from `from` to `to`, without waiting: the
/// commit's fsync then waits for the last few MiB only, not for a whole
/// layer's worth of dirty pages at once (about 3 s a GB here), while the
/// disk would have idled as the layer was made. Best effort: a file system
/// that cannot is synced all at once at the commit. Returns `to`.
fn write_behind(file: &fs::File, from: u64, to: u64) -> u64 {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on a descriptor the caller owns; it touches
    // no memory of ours.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            (to - from) as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
    to
}

/// A blob bigger than this is written by a thread of its own, while the
/// writer's thread goes on making (and hashing) the next bytes: a big
/// COPY's thread spent about a third of its time copying its tar into the
/// page cache (1.8 s of a 6.7 s step, for 1 GB).
const PIPE_AFTER: u64 = 4 << 20;
/// The bytes handed over at a time, and how many may wait: memory stays
/// bounded (about 1 MiB) however fast the writer's thread makes them.
const CHUNK: usize = 256 << 10;
const QUEUED: usize = 2;

/// The writing thread of a big blob (see [`PIPE_AFTER`]).
struct Pipe {
    chunks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    /// Chunks the thread wrote, to fill again.
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    filling: Vec<u8>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl Pipe {
    /// A thread appending to `file` (at `size`, its written bytes; the
    /// writeback started up to `written_back`).
    fn start(file: &fs::File, mut written_back: u64, mut size: u64) -> io::Result<Self> {
        let mut file = file.try_clone()?;
        let (chunks, to_write) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUED);
        let (give_back, spare) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("kiln-blob".into()).spawn(move || {
            for mut chunk in to_write {
                file.write_all(&chunk)?;
                size += chunk.len() as u64;
                if size - written_back >= WRITE_BEHIND {
                    written_back = write_behind(&file, written_back, size);
                }
                chunk.clear();
                let _ = give_back.send(chunk);
            }
            Ok(())
        })?;
        Ok(Self { chunks: Some(chunks), spare, filling: Vec::with_capacity(CHUNK), thread: Some(thread) })
    }

    fn write(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = buf.len().min(CHUNK - self.filling.len());
            self.filling.extend_from_slice(&buf[..n]);
            buf = &buf[n..];
            if self.filling.len() == CHUNK {
                self.send()?;
            }
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.filling, next);
        let sent = self.chunks.as_ref().map(|c| c.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            // The thread stopped: its error says why.
            _ => self.finish().and(Err(io::Error::other("the blob's writing thread stopped"))),
        }
    }

    /// Hand over what is left, and wait until the thread wrote everything.
    fn finish(&mut self) -> io::Result<()> {
        if !self.filling.is_empty() && self.thread.is_some() {
            let rest = std::mem::take(&mut self.filling);
            if let Some(chunks) = &self.chunks {
                let _ = chunks.send(rest);
            }
        }
        self.chunks = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the blob's writing thread panicked")),
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // Nothing of it may outlive the writer (its temp file goes next).
        self.filling.clear();
        let _ = self.finish();
    }
}

impl BlobWriter {
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
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Past the threshold, in pieces that straddle the chunks.
        let bytes: Vec<u8> = (0..PIPE_AFTER as usize * 2 + 12_345).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = store.blob_writer().unwrap();
        for piece in bytes.chunks(CHUNK / 3 + 17) {
            w.write_all(piece).unwrap();
        }
        assert!(w.pipe.is_some(), "a blob this big is written by a thread");
        let (digest, size) = w.commit(Some(&Digest::of(&bytes))).unwrap();
        assert_eq!(size, bytes.len() as u64);
        assert!(fs::read(store.blob_path(&digest)).unwrap() == bytes);

        let mut w = store.blob_writer().unwrap();
        w.write_all(&bytes).unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("ingest")).unwrap().count(), 0, "ingest left dirty");
    }
}
