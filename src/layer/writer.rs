use std::io::{self, Write};

use flate2::{write::GzEncoder, Compression, GzBuilder};
use kiln_solver::Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::LayerError;
use crate::store::{BlobWriter, Store};

/// A stored layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// Digest of the compressed blob (what the manifest names).
    pub digest: Digest,
    /// Digest of the uncompressed tar (what the config's rootfs names).
    pub diff_id: Digest,
    /// Size of the compressed blob.
    pub size: u64,
}

/// Where a layer's uncompressed tar bytes go: hashed for the diffID, gzipped,
/// and written to a blob that is hashed for the digest — one pass. Dropped before
/// [`LayerSink::finish`], it leaves nothing in the store.
pub struct LayerSink {
    gz: GzEncoder<BlobWriter>,
    diff_id: Sha256,
    /// Tar bytes written so far, and who is told (the step's progress).
    written: u64,
    on_bytes: Option<Box<dyn FnMut(u64) + Send>>,
}

impl Write for LayerSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.gz.write(buf)?;
        self.diff_id.update(&buf[..n]);
        self.written += n as u64;
        if let Some(report) = &mut self.on_bytes {
            report(self.written);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.gz.flush()
    }
}

impl LayerSink {
    /// Start a layer blob in `store`.
    pub fn new(store: &Store) -> Result<Self, LayerError> {
        // A zero mtime and no file name in the gzip header keep equal tars equal blobs.
        let gz = GzBuilder::new().mtime(0).write(store.blob_writer()?, Compression::new(6));
        Ok(Self { gz, diff_id: Sha256::new(), written: 0, on_bytes: None })
    }

    /// Store the blob and return the layer.
    pub fn finish(self) -> Result<Layer, LayerError> {
        let diff_id = Digest::from_hasher(self.diff_id);
        let blob = self.gz.finish().map_err(LayerError::Write)?;
        let (digest, size) = blob.commit(None)?;
        Ok(Layer { digest, diff_id, size })
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

    /// Tell `report` how many tar bytes were written, after each write (it
    /// decides how often to pass it on: `ExecContext::byte_progress` does).
    pub fn report_bytes(&mut self, report: impl FnMut(u64) + Send + 'static) {
        self.tar.get_mut().on_bytes = Some(Box::new(report));
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
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&blob[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(Digest::of(&tar), layer.diff_id);
    }
}
