//! `--cache-to type=local,dest=DIR` and `--cache-from type=local,src=DIR`:
//! the cache artifact (see [`super::artifact`]) in an OCI image layout folder
//! — `oci-layout`, `index.json` naming the one manifest, `blobs/sha256/`.
//!
//! Blobs go in through a temp file in `blobs/sha256/`, hashed as written,
//! checked and renamed (the store's write path), and `index.json` is
//! replaced last and atomically, so a reader sees the old cache or the new
//! one, never a manifest whose blobs are missing. Blobs of earlier exports
//! stay (a later one may name them again).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_solver::Digest;
use sha2::{Digest as _, Sha256};

use super::artifact::{CacheArtifact, ImportedCache, Manifest, MANIFEST_TYPE};
use super::CacheError;
use crate::content::{self, copy_blob, ContentError, Ingester, Provider};
use crate::store::Store;

/// An OCI image layout folder as a blob [`Provider`] and [`Ingester`].
#[derive(Debug, Clone)]
pub struct LayoutDir {
    root: PathBuf,
}

impl LayoutDir {
    /// The layout at `root` (which may not exist yet).
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_owned() }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    fn place(&self) -> String {
        self.root.display().to_string()
    }
}

impl Provider for LayoutDir {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, ContentError> {
        match fs::File::open(self.blob_path(digest)) {
            Ok(file) => Ok(Box::new(io::BufReader::new(file))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound { digest: digest.to_string(), place: self.place() })
            }
            Err(source) => Err(ContentError::Read { digest: digest.to_string(), source }),
        }
    }
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl Ingester for LayoutDir {
    fn has(&self, digest: &Digest) -> Result<bool, ContentError> {
        Ok(self.blob_path(digest).is_file())
    }

    fn ingest(&self, digest: &Digest, size: u64, from: &mut dyn Read) -> Result<(), ContentError> {
        let write_err = |source| ContentError::Write { digest: digest.to_string(), place: self.place(), source };
        let dir = self.root.join("blobs/sha256");
        let tmp =
            tempfile::Builder::new().prefix(&crate::store::temp_prefix("blob")).tempfile_in(&dir).map_err(write_err)?;
        let mut out = Hashing { inner: tmp, hasher: Sha256::new() };
        let written = content::copy_exact(from, &mut out, digest, size, &self.place())?;
        content::check_size(digest, size, written)?;
        let actual = Digest::from_hasher(out.hasher);
        if actual != *digest {
            return Err(ContentError::DigestMismatch { expected: digest.to_string(), actual: actual.to_string() });
        }
        out.inner.as_file().sync_all().map_err(write_err)?;
        out.inner.persist(self.blob_path(digest)).map_err(|e| write_err(e.error))?;
        Ok(())
    }
}

/// Write `artifact` to the layout folder `dest`, its layer blobs from `store`.
pub fn export(store: &Store, artifact: &CacheArtifact, dest: &Path) -> Result<(), CacheError> {
    let io_err = |source| CacheError::Io { place: dest.display().to_string(), source };
    fs::create_dir_all(dest.join("blobs/sha256")).map_err(io_err)?;
    let layout = LayoutDir::new(dest);
    let encoded = artifact.encode(store);
    for layer in &encoded.layers {
        copy_blob(store, &layout, layer)?;
    }
    for bytes in [&encoded.config, &encoded.manifest] {
        let digest = Digest::of(bytes);
        if !layout.has(&digest)? {
            layout.ingest(&digest, bytes.len() as u64, &mut &bytes[..])?;
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "artifactType": super::artifact::ARTIFACT_TYPE,
            "digest": Digest::of(&encoded.manifest).as_str(),
            "size": encoded.manifest.len(),
        }],
    });
    let write = |name: &str, bytes: &[u8]| crate::store::write_atomic(&dest.join(name), bytes);
    write("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    // Last: only now does the folder name the new cache.
    write("index.json", &serde_json::to_vec(&index).expect("an index serialises"))?;
    Ok(())
}

/// The cache in the layout folder `src`, read into `store` as it is used;
/// `None` when the folder holds no cache yet (a first build).
pub fn import(store: &Store, src: &Path) -> Result<Option<ImportedCache>, CacheError> {
    let place = src.display().to_string();
    let index = match fs::read(src.join("index.json")) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CacheError::Io { place, source }),
    };
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<oci_spec::image::Descriptor>,
    }
    let index: Index =
        serde_json::from_slice(&index).map_err(|source| CacheError::Format { place: place.clone(), source })?;
    let Some(entry) = index.manifests.first() else { return Ok(None) };
    let layout = LayoutDir::new(src);
    let manifest = layout.read_verified(&content::descriptor_digest(entry)?)?;
    let manifest = Manifest::decode(&manifest, &place)?;
    let config = layout.read_verified(&content::descriptor_digest(&manifest.config)?)?;
    let artifact = CacheArtifact::decode(&config, &place)?;
    Ok(Some(ImportedCache::new(store, artifact, Arc::new(layout))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CacheRecord, CacheStorage};
    use crate::layer::Layer;
    use kiln_solver::CacheKey;

    #[test]
    fn a_folder_round_trips_records_and_blobs_into_another_store() {
        let (a, b, dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let from = Store::open(a.path()).unwrap();
        let to = Store::open(b.path()).unwrap();
        let (digest, size) = from.write_blob(b"layer").unwrap();
        let key = CacheKey(Digest::of(b"key"));
        // Not gzip: a plain tar's diffID is its digest.
        let record = CacheRecord::new(vec![Layer { digest: digest.clone(), diff_id: digest.clone(), size }], None);
        let cache = dir.path().join("cache");
        assert!(import(&to, &cache).unwrap().is_none());
        export(&from, &CacheArtifact::new([(key.clone(), record.clone())].into()), &cache).unwrap();
        let imported = import(&to, &cache).unwrap().unwrap();
        assert_eq!(imported.load(&CacheKey(Digest::of(b"other"))), None);
        assert!(!to.has_blob(&digest));
        assert_eq!(imported.load(&key), Some(record));
        assert!(to.has_blob(&digest));
        // A blob changed in the folder is refused: a miss, and nothing enters the store.
        let c = tempfile::tempdir().unwrap();
        let other = Store::open(c.path()).unwrap();
        fs::write(cache.join("blobs/sha256").join(digest.hex()), b"LAYER").unwrap();
        let imported = import(&other, &cache).unwrap().unwrap();
        assert_eq!(imported.load(&key), None);
        assert!(!other.has_blob(&digest));
        // A record whose diffID is not its blob's (the blob itself sound): a miss.
        fs::remove_file(cache.join("blobs/sha256").join(digest.hex())).unwrap();
        let lie = CacheRecord::new(vec![Layer { digest: digest.clone(), diff_id: Digest::of(b"t"), size }], None);
        export(&from, &CacheArtifact::new([(key.clone(), lie)].into()), &cache).unwrap();
        let d = tempfile::tempdir().unwrap();
        assert_eq!(import(&Store::open(d.path()).unwrap(), &cache).unwrap().unwrap().load(&key), None);
    }
}
