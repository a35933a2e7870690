//! Storing a tar stream that already exists — a `docker save` layer, an
//! uncompressed layer from elsewhere — as a plain tar layer. The tar bytes pass
//! through unchanged, so the diffID is exactly what the image config that came
//! with them says it should be (the caller checks); [`super::LayerWriter`]
//! instead re-encodes every entry, which would change it.
//!
//! Also what a layer blob's form is (plain tar, gzip, zstd: told apart by
//! their first bytes), and its tar stream whatever the form.

use std::io::{self, BufRead, Read, Write};

use super::{Layer, LayerError, LayerSink};
use crate::store::Store;

/// Store the tar read from `tar` as a plain layer: raw tar → blob writer,
/// whose one sha256 is both digest and diffID. `name` says which layer this is in
/// a read error (a corrupt gzip stream under `tar` surfaces there).
pub fn store_tar(store: &Store, name: &str, mut tar: impl Read) -> Result<Layer, LayerError> {
    let mut sink = LayerSink::new(store)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match tar.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(LayerError::Read { layer: name.to_owned(), source }),
        };
        sink.write_all(&buf[..n]).map_err(LayerError::Write)?;
    }
    sink.finish()
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// A plain tar.
    Tar,
    /// gzip, one member or many.
    Gzip,
    /// zstd, one frame or many.
    Zstd,
}

impl Form {
    /// The form of a blob that starts with `head` (its magic bytes).
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Form::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Form::Zstd
        } else {
            Form::Tar
        }
    }
}

impl Form {
    /// The form of the stored blob `digest`, from its first bytes.
    pub fn of_blob(store: &Store, digest: &kiln_solver::Digest) -> io::Result<Self> {
        let mut head = [0u8; 4];
        let mut file = std::fs::File::open(store.blob_path(digest))?;
        let n = crate::fsutil::read_full(&mut file, &mut head)?;
        Ok(Form::sniff(&head[..n]))
    }

    /// The form of `layer`'s blob: a plain tar when its digest is its diffID
    /// (what kiln writes), else read from the blob (a pulled layer, or one
    /// from a store that still gzipped local layers).
    pub fn of_layer(store: &Store, layer: &Layer) -> io::Result<Self> {
        if layer.is_plain() {
            return Ok(Form::Tar);
        }
        Self::of_blob(store, &layer.digest)
    }

    /// The OCI media type of a layer blob in this form.
    pub fn oci_media_type(self) -> oci_spec::image::MediaType {
        use oci_spec::image::MediaType;
        match self {
            Form::Tar => MediaType::ImageLayer,
            Form::Gzip => MediaType::ImageLayerGzip,
            Form::Zstd => MediaType::ImageLayerZstd,
        }
    }
}

/// The tar stream of the layer blob `reader` reads, whatever its [`Form`].
/// Multi-member gzip too: pigz and eStargz write a layer as many members,
/// and a single-member decoder would stop silently after the first.
pub fn tar_stream<'a>(mut reader: impl BufRead + 'a) -> io::Result<Box<dyn Read + 'a>> {
    // Peek without consuming: the bytes stay in the buffer for the decoder.
    Ok(match Form::sniff(reader.fill_buf()?) {
        Form::Tar => Box::new(reader),
        Form::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Form::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(reader)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_solver::Digest;

    #[test]
    fn the_tar_bytes_pass_through_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tar = b"not really a tar, but the bytes are all that matter".repeat(100);
        let layer = store_tar(&store, "test", &tar[..]).unwrap();
        assert_eq!(layer.diff_id, Digest::of(&tar));
        assert_eq!(layer.digest, layer.diff_id);
        let blob = std::fs::read(store.blob_path(&layer.digest)).unwrap();
        assert_eq!(blob.len() as u64, layer.size);
        assert_eq!(blob, tar);
    }

    #[test]
    fn every_form_reads_back_as_its_tar() {
        let tar = b"tar bytes, many times over ".repeat(500);
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gzip.write_all(&tar).unwrap();
        let gzip = gzip.finish().unwrap();
        let zstd = zstd::encode_all(&tar[..], 3).unwrap();
        for (blob, form) in [(tar.clone(), Form::Tar), (gzip, Form::Gzip), (zstd, Form::Zstd)] {
            assert_eq!(Form::sniff(&blob), form);
            let mut back = Vec::new();
            tar_stream(&blob[..]).unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back, tar, "{form:?}");
        }
    }
}
