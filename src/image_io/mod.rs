//! Images in and out of the store without a registry.
//!
//! - [`import_rootfs`]: a root filesystem tarball becomes a one-layer image,
//!   like `docker import`.
//! - [`load_archive`]: a `docker save` tarball or an OCI image layout tarball
//!   (`skopeo copy … oci-archive:`, `docker save` from docker 25 on, `ctr
//!   export`) is loaded with its names, like `docker load`.
//! - [`write_archive`] / [`save_to_file`]: images written as either kind of
//!   archive (`kiln save`), and [`Output`]: where a build's image goes
//!   (`kiln build -o type=image|oci|docker|local|tar`).
//!
//! Both check what they read before they name it: every blob against its
//! digest, every layer against the diffID its config lists, every layer by
//! extracting it into its snapshot. Names are written last, so an archive that
//! fails half-way leaves at most unnamed blobs (and snapshots) behind.

mod archive;
mod docker_save;
mod export;
mod filesystem;
mod load;
mod oci_layout;
mod rootfs;
mod spool;

use std::io::{self, Cursor, Read, Write};
use std::path::PathBuf;

use flate2::read::MultiGzDecoder;
use kiln_solver::Digest;
use oci_spec::image::Descriptor;

use crate::layer::{Layer, LayerError};
use crate::snapshot::{SnapshotError, Snapshotter};
use crate::store::{Store, StoreError};

pub use archive::{save_to_file, write_archive, AtomicFile, Format, Named, OciArchive};
pub use export::Output;
pub use filesystem::{check_local_dest, export_local, export_tar};
pub use load::load_archive;
pub(crate) use oci_layout::diff_id;
pub use rootfs::import_rootfs;

/// Errors while importing or loading images.
#[derive(Debug, thiserror::Error)]
pub enum ImageIoError {
    #[error("reading {what}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} is {compression}-compressed, which kiln cannot read")]
    Compression { what: String, compression: &'static str },
    #[error("not a docker save or OCI layout archive: no manifest.json or index.json found")]
    NotAnArchive,
    #[error("{what} {path} listed in {listed_in} is missing from the archive")]
    Missing { what: &'static str, path: String, listed_in: String },
    #[error("{path} in the archive is not a valid {what}")]
    Json {
        what: &'static str,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "image {image} in the archive has no name: tag it before saving it \
         (`docker tag <image> name:tag`, or `skopeo copy … oci-archive:file.tar:name:tag`)"
    )]
    NoName { image: String },
    #[error("a name of an image in {listed_in}")]
    Name {
        listed_in: &'static str,
        #[source]
        source: StoreError,
    },
    #[error("image {image} lists {layers} layers but its config lists {diff_ids} diffIDs")]
    LayerCount { image: String, layers: usize, diff_ids: usize },
    #[error("layer {layer} does not match its image config: the config says diffID {expected}, the layer's content hashes to {actual}")]
    DiffIdMismatch { layer: String, expected: String, actual: String },
    #[error("blob {expected} failed verification: its content hashes to {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("unsupported digest {0}: kiln stores sha256 blobs only")]
    Digest(String),
    #[error("{digest} has media type {media_type}, which kiln cannot load")]
    MediaType { digest: String, media_type: String },
    #[error("image index {index} has no manifest for {platform}")]
    NoPlatform { index: String, platform: String },
    #[error("image index {0} nests indexes too deeply")]
    TooDeep(String),
    #[error(
        "the rootfs tarball holds no files: make one of a root filesystem folder with \
         `tar -C <folder> -cf rootfs.tar .`"
    )]
    EmptyRootfs,
    #[error("layer {layer} cannot be extracted, so no container could use it")]
    Unusable {
        layer: String,
        #[source]
        source: SnapshotError,
    },
    #[error("rootfs entry {entry:?} {why}")]
    UnsafeEntry { entry: String, why: &'static str },
    #[error("writing rootfs entry {entry:?} to a new layer in {ingest}")]
    Copy {
        entry: String,
        ingest: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {path}")]
    Dest {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the archive")]
    Write(#[source] io::Error),
    #[error("{0} is not empty: a local export writes into a new or empty folder")]
    NotEmpty(PathBuf),
    #[error("invalid output {spec:?}: {why} (write type=image, type=oci|docker|tar,dest=FILE or type=local,dest=DIR)")]
    BadOutput { spec: String, why: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Outbound(#[from] crate::outbound::OutboundError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
}

/// How a stream is compressed, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Look at the first bytes of `r` without losing them.
fn sniff<'a>(mut r: impl Read + 'a, what: &str) -> Result<(Compression, Box<dyn Read + 'a>), ImageIoError> {
    let mut head = [0u8; 4];
    let len = crate::fsutil::read_full(&mut r, &mut head)
        .map_err(|source| ImageIoError::Read { what: what.to_owned(), source })?;
    let head = &head[..len];
    let compression = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    Ok((compression, Box::new(Cursor::new(head.to_vec()).chain(r))))
}

/// `r`, decompressed when it is gzip or zstd.
fn decompressed<'a>(r: impl Read + 'a, what: &str) -> Result<Box<dyn Read + 'a>, ImageIoError> {
    match sniff(r, what)? {
        (Compression::None, r) => Ok(r),
        (Compression::Gzip, r) => Ok(Box::new(MultiGzDecoder::new(r))),
        (Compression::Zstd, r) => zstd::stream::read::Decoder::new(r)
            .map(|d| Box::new(d) as Box<dyn Read>)
            .map_err(|source| ImageIoError::Read { what: what.to_owned(), source }),
    }
}

/// A digest from an OCI document, as the store names blobs.
fn kiln_digest(d: &oci_spec::image::Digest) -> Result<Digest, ImageIoError> {
    crate::digest::from_oci(d).map_err(|_| ImageIoError::Digest(d.to_string()))
}

/// Write `config` (the image config JSON, as is) and a fresh OCI manifest
/// naming it and `layers`; return the manifest's descriptor.
fn write_image(store: &Store, config: &[u8], layers: &[Layer]) -> Result<Descriptor, ImageIoError> {
    Ok(crate::image::write_manifest(store, config, layers)?.0)
}

/// Copy `from` to `to`. `io::copy` returns one error for both sides, and a
/// full disk would then read as a broken archive; here a failed read is
/// `what` that could not be read, a failed write goes through `write_err`,
/// which names where it went.
fn copy(
    from: &mut impl Read,
    what: &str,
    to: &mut impl Write,
    write_err: impl Fn(io::Error) -> ImageIoError,
) -> Result<u64, ImageIoError> {
    crate::fsutil::copy(from, to).map_err(|e| match e {
        crate::fsutil::CopyFailure::Read(source) => ImageIoError::Read { what: what.to_owned(), source },
        crate::fsutil::CopyFailure::Write(source) => write_err(source),
    })
}

/// Where blobs are written before they are verified. A failed write into a
/// [`crate::store::BlobWriter`] is named by this folder: the writer does not
/// say which of its files it was.
fn ingest_dir(store: &Store) -> PathBuf {
    store.root().join("ingest")
}

/// A failed write of a blob into the store, named by where it went.
fn blob_write_err(store: &Store, source: io::Error) -> ImageIoError {
    StoreError::from(crate::fsutil::PathError { action: "writing a blob in", path: ingest_dir(store), source }).into()
}

/// A layer error whose failed writes (a bare "writing the layer" from the
/// layer writer) are named by where they went.
fn layer_err(store: &Store) -> impl FnOnce(LayerError) -> ImageIoError + '_ {
    move |e| match e {
        LayerError::Write(source) => blob_write_err(store, source),
        e => e.into(),
    }
}

/// Extract `layer` into its snapshot now (see [`Snapshotter::ensure`]), so a
/// layer that cannot be extracted (an entry that climbs out, a hard link to a
/// file it does not hold) is refused before anything names it, instead of
/// failing at first use. The snapshot is then ready for that use. `name` says
/// which layer this is in the error.
fn check_layer(store: &Store, layer: &Layer, name: &str) -> Result<(), ImageIoError> {
    Snapshotter::new(store)
        .ensure(layer)
        .map(drop)
        .map_err(|source| ImageIoError::Unusable { layer: name.to_owned(), source })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use oci_spec::image::ImageConfiguration;

    /// A tar of regular files.
    pub(crate) fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(0);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A tar whose names are written exactly as given (tar::Builder would drop
    /// `./` and refuse `..`): name, kind, link target, data.
    pub(crate) fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// Check a stored image all the way down: every blob hashes to its digest,
    /// every layer's content to its diffID. Returns its config.
    pub(crate) fn verify_image(store: &Store, name: &str) -> ImageConfiguration {
        let image = store.get(name).unwrap();
        let read = |d: &Digest| {
            let bytes = std::fs::read(store.blob_path(d)).unwrap();
            assert_eq!(&Digest::of(&bytes), d, "blob {d} of {name}");
            bytes
        };
        read(&image.digest());
        let (manifest, config) = store.image_parts(&image).unwrap();
        read(&kiln_digest(manifest.config().digest()).unwrap());
        assert_eq!(manifest.layers().len(), config.rootfs().diff_ids().len());
        for (layer, diff_id) in manifest.layers().iter().zip(config.rootfs().diff_ids()) {
            let blob = read(&kiln_digest(layer.digest()).unwrap());
            assert_eq!(blob.len() as u64, layer.size());
            let mut tar = Vec::new();
            decompressed(&blob[..], "layer").unwrap().read_to_end(&mut tar).unwrap();
            assert_eq!(Digest::of(&tar).as_str(), diff_id, "layer of {name}");
        }
        config
    }

    /// A reader or writer that fails with ENOSPC or EIO after `ok` bytes.
    struct Failing {
        ok: usize,
        errno: i32,
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.ok.min(buf.len());
            self.ok -= n;
            if n == 0 {
                return Err(io::Error::from_raw_os_error(self.errno));
            }
            buf[..n].fill(b'x');
            Ok(n)
        }
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            Read::read(self, &mut buf.to_vec())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn copies_tell_a_failed_read_from_a_failed_write() {
        let write_err = |e| ImageIoError::Copy { entry: "to".into(), ingest: "/store/ingest".into(), source: e };
        for (from_ok, to_ok, want) in [(10, usize::MAX, "read"), (usize::MAX, 10, "write"), (3, 10, "read")] {
            let mut from: Box<dyn Read> = if from_ok == usize::MAX {
                Box::new(&[7u8; 20][..])
            } else {
                Box::new(Failing { ok: from_ok, errno: 5 })
            };
            let mut to = Failing { ok: to_ok, errno: 28 };
            let err = copy(&mut from, "the input", &mut to, write_err).unwrap_err();
            let got = match err {
                ImageIoError::Read { source, .. } if source.raw_os_error() == Some(5) => "read",
                ImageIoError::Copy { source, .. } if source.raw_os_error() == Some(28) => "write",
                other => panic!("{other:?}"),
            };
            assert_eq!(got, want, "from {from_ok}, to {to_ok}");
        }
        let mut out = Vec::new();
        assert_eq!(copy(&mut &b"all of it"[..], "in", &mut out, write_err).unwrap(), 9);
        assert_eq!(out, b"all of it");
    }

    #[test]
    fn sniffing_keeps_every_byte() {
        for (input, want) in [
            (&b""[..], Compression::None),
            (&b"x"[..], Compression::None),
            (&b"\x1f\x8b\x08\x00rest"[..], Compression::Gzip),
            (&b"\x28\xb5\x2f\xfdrest"[..], Compression::Zstd),
            (&b"ustar and more"[..], Compression::None),
        ] {
            let (got, mut r) = sniff(input, "test").unwrap();
            assert_eq!(got, want, "{input:?}");
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert_eq!(back, input);
        }
        let mut plain = Vec::new();
        decompressed(&gzip(b"hello")[..], "test").unwrap().read_to_end(&mut plain).unwrap();
        assert_eq!(plain, b"hello");
    }
}
