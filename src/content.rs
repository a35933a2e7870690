//! The content seam: where blobs come from and where they go, named by digest.
//!
//! - A [`Provider`] hands out blobs by digest: the local [`Store`], an OCI
//!   archive being loaded, an OCI layout cache, a registry's cache blobs
//!   (`cache::registry`).
//! - An [`Ingester`] takes blobs in, each verified against its digest and size
//!   before anyone can see it: the store (its `ingest/` → `blobs/` path), an
//!   OCI archive being written, an OCI layout cache.
//!
//! Who goes through it: `kiln load` and `save` ([`crate::image_io`]), the
//! build caches ([`crate::cache`]), and the registry client — a pull streams
//! each blob into the store as its [`Ingester`] (its downloads stay parallel
//! and async; only the store's writes run on blocking threads), a push reads
//! each blob it uploads through the store as its [`Provider`] (the HEAD
//! skip, mounts and resumable uploads stay the registry client's own).
//!
//! Moving an image anywhere is [`copy_image`] from one to the other: layers,
//! then the config, then the manifest, so a receiver never holds a manifest
//! whose parts are missing, and blobs it already has are skipped. This is
//! containerd's `content.Provider` / `content.Ingester` split, kept to the two
//! calls each side needs.

use std::io::{self, Read};

use oci_spec::image::{Descriptor, ImageManifest};

use crate::digest::{self, Digest};
use crate::store::{Store, StoreError};

/// Errors moving blobs.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("blob {digest} is not in {place}")]
    NotFound { digest: String, place: String },
    #[error("blob {expected} failed verification: its content hashes to {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {digest} is {actual} bytes long, not the {expected} its descriptor says")]
    SizeMismatch { digest: String, expected: u64, actual: u64 },
    #[error("reading blob {digest}")]
    Read {
        digest: String,
        #[source]
        source: io::Error,
    },
    #[error("writing blob {digest} to {place}")]
    Write {
        digest: String,
        place: String,
        #[source]
        source: io::Error,
    },
    #[error("manifest {digest} is not a valid image manifest")]
    Manifest {
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unsupported digest {0}: kiln handles sha256 blobs only")]
    Digest(String),
    #[error(transparent)]
    Store(StoreError),
}

/// Hands out blobs by digest.
pub trait Provider {
    /// The blob `digest`, to read from the start; [`ContentError::NotFound`]
    /// when this provider does not have it. What is read is not verified here:
    /// an [`Ingester`] verifies what it takes in, [`Provider::read_verified`]
    /// what it returns.
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, ContentError>;

    /// The whole blob `digest` (a manifest, a config: small documents),
    /// checked against its digest.
    fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let mut bytes = Vec::new();
        self.open(digest)?
            .read_to_end(&mut bytes)
            .map_err(|source| ContentError::Read { digest: digest.to_string(), source })?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(ContentError::DigestMismatch { expected: digest.to_string(), actual: actual.to_string() });
        }
        Ok(bytes)
    }
}

/// Takes blobs in, each verified before it is visible.
pub trait Ingester {
    /// Whether the blob `digest` is already held: [`copy_blob`] skips it.
    fn has(&self, digest: &Digest) -> Result<bool, ContentError>;

    /// Take in the blob `digest` of `size` bytes, read from `from`. It is
    /// checked against both as it is read; a blob that fails is not kept.
    fn ingest(&self, digest: &Digest, size: u64, from: &mut dyn Read) -> Result<(), ContentError>;
}

impl Provider for Store {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, ContentError> {
        let path = self.blob_path(digest);
        match std::fs::File::open(&path) {
            Ok(file) => Ok(Box::new(io::BufReader::new(file))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(ContentError::NotFound { digest: digest.to_string(), place: "the store".to_owned() })
            }
            Err(source) => Err(ContentError::Read { digest: digest.to_string(), source }),
        }
    }
}

impl Ingester for Store {
    fn has(&self, digest: &Digest) -> Result<bool, ContentError> {
        Ok(self.has_blob(digest))
    }

    fn ingest(&self, digest: &Digest, size: u64, from: &mut dyn Read) -> Result<(), ContentError> {
        let mut blob = self.blob_writer().map_err(ContentError::Store)?;
        let written = copy_exact(from, &mut blob, digest, size, "the store")?;
        check_size(digest, size, written)?;
        blob.commit(Some(digest)).map_err(|e| match e {
            StoreError::DigestMismatch { expected, actual } => ContentError::DigestMismatch { expected, actual },
            e => ContentError::Store(e),
        })?;
        Ok(())
    }
}

/// Copy up to `size` + 1 bytes of `from` to `to` (one more, so a blob longer
/// than its descriptor says is caught); the number copied. Errors name the
/// blob, and `place` where it was going.
pub(crate) fn copy_exact(
    from: &mut dyn Read,
    to: &mut dyn io::Write,
    digest: &Digest,
    size: u64,
    place: &str,
) -> Result<u64, ContentError> {
    crate::fsutil::copy(&mut from.take(size.saturating_add(1)), &mut &mut *to).map_err(|e| match e {
        crate::fsutil::CopyFailure::Read(source) => ContentError::Read { digest: digest.to_string(), source },
        crate::fsutil::CopyFailure::Write(source) => {
            ContentError::Write { digest: digest.to_string(), place: place.to_owned(), source }
        }
    })
}

/// The size check every ingester makes.
pub(crate) fn check_size(digest: &Digest, expected: u64, actual: u64) -> Result<(), ContentError> {
    if expected != actual {
        return Err(ContentError::SizeMismatch { digest: digest.to_string(), expected, actual });
    }
    Ok(())
}

/// The digest a descriptor names, as kiln handles them.
pub fn descriptor_digest(d: &Descriptor) -> Result<Digest, ContentError> {
    digest::from_oci(d.digest()).map_err(|_| ContentError::Digest(d.digest().to_string()))
}

/// Copy the blob `d` names from `from` to `to`, unless `to` has it.
pub fn copy_blob(from: &dyn Provider, to: &dyn Ingester, d: &Descriptor) -> Result<(), ContentError> {
    let digest = descriptor_digest(d)?;
    if to.has(&digest)? {
        return Ok(());
    }
    to.ingest(&digest, d.size(), &mut from.open(&digest)?)
}

/// Copy the image whose manifest `manifest` names from `from` to `to`:
/// layers, config, manifest, in that order. Returns the manifest.
pub fn copy_image(
    from: &dyn Provider,
    to: &dyn Ingester,
    manifest: &Descriptor,
) -> Result<ImageManifest, ContentError> {
    let digest = descriptor_digest(manifest)?;
    let bytes = from.read_verified(&digest)?;
    let parsed: ImageManifest = serde_json::from_slice(&bytes)
        .map_err(|source| ContentError::Manifest { digest: digest.to_string(), source })?;
    for layer in parsed.layers() {
        copy_blob(from, to, layer)?;
    }
    copy_blob(from, to, parsed.config())?;
    if !to.has(&digest)? {
        to.ingest(&digest, manifest.size(), &mut &bytes[..])?;
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_ingests_only_what_matches_its_digest_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let good = Digest::of(b"hello");
        for (bytes, size, ok) in [
            (&b"hello"[..], 5, true),
            (&b"hellO"[..], 5, false),
            (&b"hello"[..], 4, false),
            (&b"hello"[..], 6, false),
            (&b"hello!"[..], 5, false),
        ] {
            let other = tempfile::tempdir().unwrap();
            let target = Store::open(other.path()).unwrap();
            let got = target.ingest(&good, size, &mut &bytes[..]);
            assert_eq!(got.is_ok(), ok, "{bytes:?} as {size} bytes: {got:?}");
            assert_eq!(target.has_blob(&good), ok);
            assert_eq!(std::fs::read_dir(other.path().join("ingest")).unwrap().count(), 0);
        }
        store.ingest(&good, 5, &mut &b"hello"[..]).unwrap();
        assert_eq!(store.read_verified(&good).unwrap(), b"hello");
        let missing = Digest::of(b"missing");
        assert!(matches!(store.open(&missing), Err(ContentError::NotFound { .. })));
    }
}
