use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use kiln_solver::{Cancellation, Digest};
use serde::{Deserialize, Serialize};

use super::LayerError;
use crate::snapshot::direct::Tee;
use crate::store::{BlobWriter, Store};

/// The media type of a layer kiln stores: a plain tar. Compression happens
/// only when a layer leaves the machine (push, save, `-o`, `--cache-to`).
pub const TAR_LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// A stored layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Digest of the stored blob (what the manifest names). Equal to
    /// `diff_id` for the plain tars kiln writes; a pulled layer, or one from
    /// a store older than plain layers, is compressed and differs.
    pub digest: Digest,
    /// Digest of the uncompressed tar (what the config's rootfs names).
    pub diff_id: Digest,
    /// Size of the stored blob.
    pub size: u64,
}

impl Layer {
    /// Whether the stored blob is the plain tar itself.
    pub fn is_plain(&self) -> bool {
        self.digest == self.diff_id
    }
}

/// Where a layer's uncompressed tar bytes go: straight into a blob, whose one
/// sha256 is both digest and diffID; and, with a [`Tee`], made into the
/// layer's snapshot as they go. Local layers stay uncompressed because
/// they are cheapest to write and to read back; dropped before
/// [`LayerSink::finish`], it leaves nothing in the store.
pub struct LayerSink {
    // tar writes 512-byte headers and small files one by one: batched here,
    // they reach the hasher and the file in big writes.
    blob: BufWriter<BlobWriter>,
    tee: Option<Tee>,
    /// Tar bytes written so far, and who is told (the step's progress).
    written: u64,
    on_bytes: Option<Box<dyn FnMut(u64) + Send>>,
    /// Once the build is cancelled, every write fails: a long COPY stops
    /// with its failed sibling instead of finishing a layer nobody uses.
    cancel: Option<Cancellation>,
}

impl Write for LayerSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check_cancelled()?;
        let n = self.blob.write(buf)?;
        if let Some(tee) = &mut self.tee {
            tee.write(&buf[..n]);
        }
        self.count(n);
        Ok(n)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.check_cancelled()?;
        self.blob.write_all(buf)?;
        if let Some(tee) = &mut self.tee {
            tee.write(buf);
        }
        self.count(buf.len());
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.blob.flush()
    }
}

impl LayerSink {
    fn check_cancelled(&self) -> io::Result<()> {
        match &self.cancel {
            Some(cancel) if cancel.is_cancelled() => Err(io::Error::other("the build was cancelled")),
            _ => Ok(()),
        }
    }

    fn count(&mut self, n: usize) {
        self.written += n as u64;
        if let Some(report) = &mut self.on_bytes {
            report(self.written);
        }
    }

    /// Start a layer blob in `store`.
    pub fn new(store: &Store) -> Result<Self, LayerError> {
        Ok(Self {
            blob: BufWriter::with_capacity(256 * 1024, store.blob_writer()?),
            tee: None,
            written: 0,
            on_bytes: None,
            cancel: None,
        })
    }

    /// Store the blob and return the layer; a tee's snapshot is put in
    /// place once the blob is.
    pub fn finish(self) -> Result<Layer, LayerError> {
        let LayerSink { blob, mut tee, .. } = self;
        // A small layer's bytes all wait in the tee's last chunk: sent now,
        // its snapshot is made while the blob syncs, not after.
        if let Some(tee) = &mut tee {
            tee.end_input();
        }
        let blob = blob.into_inner().map_err(|e| LayerError::Write(e.into_error()))?;
        let (digest, size) = blob.commit(None)?;
        if let Some(tee) = tee {
            tee.finish(&digest);
        }
        Ok(Layer { diff_id: digest.clone(), digest, size })
    }
}

/// The tar builder a layer's entries are appended to.
pub type LayerTar = tar::Builder<LayerSink>;

/// Writes one layer entry by entry into a [`LayerSink`].
pub struct LayerWriter {
    tar: LayerTar,
}

impl LayerWriter {
    /// Start a layer in `store`.
    pub fn new(store: &Store) -> Result<Self, LayerError> {
        let mut tar = tar::Builder::new(LayerSink::new(store)?);
        tar.mode(tar::HeaderMode::Complete);
        tar.follow_symlinks(false);
        Ok(Self { tar })
    }

    /// Start a layer in `store` whose snapshot folder is written with it
    /// (see [`crate::snapshot::direct`]), so it is never extracted.
    pub fn with_snapshot(store: &Store) -> Result<Self, LayerError> {
        Self::with_snapshot_from(store, None)
    }

    /// [`LayerWriter::with_snapshot`], the big files that the snapshot
    /// folder `donor` holds alike linked from it, not written again.
    pub fn with_snapshot_from(store: &Store, donor: Option<PathBuf>) -> Result<Self, LayerError> {
        let mut writer = Self::new(store)?;
        writer.tee(Tee::extract(store, donor)?);
        Ok(writer)
    }

    /// Also give the tar's bytes to `tee`, from the next entry on.
    pub fn tee(&mut self, tee: Tee) {
        let sink = self.tar.get_mut();
        // The snapshot is made from the stream: the blob is read back only
        // when it leaves the machine.
        sink.blob.get_mut().bypass_page_cache();
        sink.tee = Some(tee);
    }

    /// Tell `report` how many tar bytes were written, after each write (it
    /// decides how often to pass it on: `ExecContext::byte_progress` does).
    pub fn report_bytes(&mut self, report: impl FnMut(u64) + Send + 'static) {
        self.tar.get_mut().on_bytes = Some(Box::new(report));
    }

    /// Fail every write from the moment `cancel` says the build is cancelled.
    pub fn cancel_on(&mut self, cancel: Cancellation) {
        self.tar.get_mut().cancel = Some(cancel);
    }

    /// The tar builder to append entries to.
    pub fn tar(&mut self) -> &mut LayerTar {
        &mut self.tar
    }

    /// Close the tar, store the blob and return the layer.
    pub fn finish(self) -> Result<Layer, LayerError> {
        self.tar.into_inner().map_err(LayerError::Write)?.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn digest_and_diff_id_match_the_bytes_and_equal_tars_are_equal_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let make = || {
            let mut w = LayerWriter::new(&store).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(3);
            h.set_mode(0o644);
            h.set_mtime(0);
            w.tar().append_data(&mut h, "etc/x", &b"abc"[..]).unwrap();
            w.finish().unwrap()
        };
        let layer = make();
        assert_eq!(make(), layer);
        let blob = std::fs::read(store.blob_path(&layer.digest)).unwrap();
        assert_eq!(Digest::of(&blob), layer.digest);
        assert_eq!(blob.len() as u64, layer.size);
        // A plain tar: one digest for both, and the entry is readable as is.
        assert_eq!(layer.diff_id, layer.digest);
        let mut entries = tar::Archive::new(&blob[..]);
        let mut entry = entries.entries().unwrap().next().unwrap().unwrap();
        let mut body = String::new();
        entry.read_to_string(&mut body).unwrap();
        assert_eq!(body, "abc");
    }

    #[test]
    fn a_big_layer_whose_snapshot_is_made_with_it_skips_the_page_cache_and_others_do_not() {
        // On the disk a store would be on (/tmp may be a tmpfs).
        let dir = tempfile::tempdir_in(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target")).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let big: Vec<u8> = (0..(24usize << 20)).map(|i| (i * 31 % 253) as u8).collect();
        let write = |mut w: LayerWriter, bytes: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            w.tar().append_data(&mut h, "big", bytes).unwrap();
            w.finish().unwrap()
        };
        let teed = write(LayerWriter::with_snapshot(&store).unwrap(), &big);
        let blob = store.blob_path(&teed.digest);
        let cached = crate::store::cached_bytes(&blob);
        if crate::store::takes_direct_writes(&blob) {
            assert!(cached < 8 << 20, "{cached} bytes of a teed layer's blob stayed in the page cache");
        } else {
            eprintln!("no direct writes where {} is: the blob went through the page cache", blob.display());
        }
        let snapshot = store.snapshots_dir().join(teed.diff_id.hex()).join("big");
        assert!(std::fs::read(snapshot).unwrap() == big, "the snapshot is not the layer");

        let mut other = big.clone();
        other[0] ^= 1;
        let plain = write(LayerWriter::new(&store).unwrap(), &other);
        let cached = crate::store::cached_bytes(&store.blob_path(&plain.digest));
        assert!(cached > 16 << 20, "only {cached} bytes of a layer extracted later stayed in the page cache");
    }
}
