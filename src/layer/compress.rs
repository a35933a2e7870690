//! Storing a tar stream that already exists — a `docker save` layer, an
//! uncompressed layer from elsewhere — as a gzip layer. The tar bytes pass
//! through unchanged, so the diffID is exactly what the image config that came
//! with them says it should be (the caller checks); [`super::LayerWriter`]
//! instead re-encodes every entry, which would change it.

use std::io::{self, Read, Write};

use super::{Layer, LayerError, LayerSink};
use crate::store::Store;

/// Store the tar read from `tar` as a gzip layer: raw tar → sha256 (diffID) →
/// gzip → blob writer (digest), in one pass. `name` says which layer this is in
/// a read error (a corrupt gzip stream under `tar` surfaces there).
pub fn compress_tar(store: &Store, name: &str, mut tar: impl Read) -> Result<Layer, LayerError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_solver::Digest;

    #[test]
    fn the_tar_bytes_pass_through_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tar = b"not really a tar, but the bytes are all that matter".repeat(100);
        let layer = compress_tar(&store, "test", &tar[..]).unwrap();
        assert_eq!(layer.diff_id, Digest::of(&tar));
        let blob = std::fs::read(store.blob_path(&layer.digest)).unwrap();
        assert_eq!(Digest::of(&blob), layer.digest);
        assert_eq!(blob.len() as u64, layer.size);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&blob[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, tar);
    }
}
