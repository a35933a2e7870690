//! Writing images out as archives — what `kiln save` and `kiln build -o
//! type=oci|docker` write, and what `kiln load` reads back:
//!
//! - [`Format::Oci`]: an OCI image layout as a tar (`oci-layout`,
//!   `index.json`, `blobs/sha256/…`), its layers compressed as asked (gzip
//!   by default: the store keeps plain tars, see [`crate::outbound`]), so the
//!   manifest digest is the store's only for an image whose layers already
//!   were; the config, and so the image ID, is the store's. The archive is a content
//!   [`Ingester`]: images go in through [`content::copy_image`], as they
//!   will go to a registry.
//! - [`Format::Docker`]: a `docker save` archive (`manifest.json`,
//!   `repositories`, `<config hex>.json`, `<diffID hex>/layer.tar`), in the
//!   layout every `docker load` reads: layers uncompressed, so each layer
//!   file hashes to its diffID, and the config byte for byte, so the image ID
//!   stays the same.
//!
//! A file is written through [`AtomicFile`]: a temporary file beside it,
//! renamed into place once complete, so a failed write leaves nothing.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use oci_spec::image::Descriptor;
use sha2::{Digest as _, Sha256};
use tempfile::NamedTempFile;

use super::ImageIoError;
use crate::content::{self, ContentError, Ingester, Provider};
use crate::digest::Digest;
use crate::outbound::Compression;
use crate::store::reference::Reference;
use crate::store::Store;

/// The name annotation of the OCI spec, as skopeo (`oci-archive:FILE:NAME`)
/// and umoci (`--image DIR:NAME`) look images up.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full name containerd and docker read.
pub(crate) const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Which archive to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A `docker save` archive.
    Docker,
    /// An OCI image layout tar, its layers compressed so.
    Oci(Compression),
}

/// One image to write: its manifest, and the names it goes by (the store's
/// `repository:tag` form; none for an image without a name).
#[derive(Debug, Clone)]
pub struct Named {
    /// The manifest's descriptor in the store.
    pub manifest: Descriptor,
    /// Its names.
    pub names: Vec<String>,
}

/// Write `images` from `store` to `out` as a `format` archive; returns `out`.
pub fn write_archive<W: Write>(store: &Store, images: &[Named], format: Format, out: W) -> Result<W, ImageIoError> {
    match format {
        Format::Oci(compression) => write_oci(store, images, compression, out),
        Format::Docker => write_docker(store, images, out),
    }
}

/// Write `images` to the file `dest` (see [`write_archive`]), atomically.
pub fn save_to_file(store: &Store, images: &[Named], format: Format, dest: &Path) -> Result<(), ImageIoError> {
    let file = AtomicFile::create(dest)?;
    write_archive(store, images, format, file)?.commit()
}

/// A file written beside its destination and renamed into place by
/// [`AtomicFile::commit`]; dropped before that, it leaves nothing behind.
pub struct AtomicFile {
    tmp: io::BufWriter<NamedTempFile>,
    dest: PathBuf,
}

impl AtomicFile {
    /// Start writing `dest`: a hidden temporary file in its folder, so the
    /// rename at the end stays on one filesystem.
    pub fn create(dest: &Path) -> Result<Self, ImageIoError> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}.{}", crate::store::temp_prefix("kiln")))
            .tempfile_in(dir)
            .map_err(|source| ImageIoError::Dest { path: dest.to_owned(), source })?;
        Ok(Self { tmp: io::BufWriter::new(tmp), dest: dest.to_owned() })
    }

    /// Flush, sync and rename into place.
    pub fn commit(self) -> Result<(), ImageIoError> {
        let dest = self.dest;
        let err = |source| ImageIoError::Dest { path: dest.clone(), source };
        let tmp = self.tmp.into_inner().map_err(|e| err(e.into_error()))?;
        tmp.as_file().sync_all().map_err(err)?;
        // The temp file is 0600; the archive gets what a new file would.
        let mode = 0o666 & !current_umask();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(err)?;
        tmp.persist(&dest).map_err(|e| err(e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// The process's umask (read by setting it, then putting it back: there is no
/// other way to read it).
fn current_umask() -> u32 {
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(old);
    old.bits()
}

/// A tar header for a regular file of `size` bytes, as every archive entry kiln
/// writes has: mode 0644, owned by root, dated 0, so equal images give equal archives.
fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h
}

/// Append a small file.
fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> Result<(), ImageIoError> {
    tar.append_data(&mut file_header(bytes.len() as u64), path, bytes).map_err(ImageIoError::Write)
}

/// An OCI image layout tar being written: blobs as they come in (it is an
/// [`Ingester`]), `oci-layout` and `index.json` at the end.
pub struct OciArchive<W: Write> {
    tar: Mutex<tar::Builder<W>>,
    written: Mutex<HashSet<Digest>>,
}

impl<W: Write> OciArchive<W> {
    /// Start an archive on `out`.
    pub fn new(out: W) -> Self {
        Self { tar: Mutex::new(tar::Builder::new(out)), written: Mutex::new(HashSet::new()) }
    }

    /// Write `oci-layout` and an `index.json` listing `manifests`; return the stream.
    pub fn finish(self, manifests: Vec<Descriptor>) -> Result<W, ImageIoError> {
        let mut tar = self.tar.into_inner().expect("no writer panicked while holding the archive");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        append_bytes(&mut tar, "index.json", &serde_json::to_vec(&index).expect("an index serialises"))?;
        tar.into_inner().map_err(ImageIoError::Write)
    }
}

impl<W: Write> Ingester for OciArchive<W> {
    fn has(&self, digest: &Digest) -> Result<bool, ContentError> {
        Ok(self.written.lock().expect("not poisoned").contains(digest))
    }

    fn ingest(&self, digest: &Digest, size: u64, from: &mut dyn Read) -> Result<(), ContentError> {
        let path = format!("blobs/sha256/{}", digest.hex());
        let mut hashing = Hashing { inner: (&mut *from).take(size), hasher: Sha256::new(), count: 0 };
        let mut tar = self.tar.lock().expect("not poisoned");
        let write_err =
            |source| ContentError::Write { digest: digest.to_string(), place: "the archive".into(), source };
        tar.append_data(&mut file_header(size), &path, &mut hashing).map_err(write_err)?;
        let Hashing { hasher, count, .. } = hashing;
        // One byte more than the descriptor says is a blob that does not match it.
        let extra =
            from.read(&mut [0u8]).map_err(|source| ContentError::Read { digest: digest.to_string(), source })?;
        content::check_size(digest, size, count + extra as u64)?;
        let actual = Digest::from_hasher(hasher);
        if actual != *digest {
            // The entry is written: the archive is spoiled, and its writer discards it.
            return Err(ContentError::DigestMismatch { expected: digest.to_string(), actual: actual.to_string() });
        }
        self.written.lock().expect("not poisoned").insert(digest.clone());
        Ok(())
    }
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The index entries of one image: one per name, annotated with it (the
/// store's short form, which skopeo and umoci look up, and the full form for
/// containerd and docker); one without a name when it has none.
fn index_entries(image: &Named) -> Result<Vec<Descriptor>, ImageIoError> {
    let mut base = image.manifest.clone();
    base.set_annotations(None);
    if image.names.is_empty() {
        return Ok(vec![base]);
    }
    image
        .names
        .iter()
        .map(|name| {
            let full =
                Reference::parse(name).map_err(|source| ImageIoError::Name { listed_in: "the names", source })?;
            let mut d = base.clone();
            d.set_annotations(Some(
                [(REF_NAME.to_owned(), name.clone()), (CONTAINERD_NAME.to_owned(), full.to_string())].into(),
            ));
            Ok(d)
        })
        .collect()
}

fn write_oci<W: Write>(store: &Store, images: &[Named], compression: Compression, out: W) -> Result<W, ImageIoError> {
    let archive = OciArchive::new(out);
    let mut manifests = Vec::new();
    for image in images {
        let image =
            Named { manifest: outbound_manifest(store, &image.manifest, compression)?, names: image.names.clone() };
        content::copy_image(store, &archive, &image.manifest)?;
        manifests.extend(index_entries(&image)?);
    }
    archive.finish(manifests)
}

/// The manifest to write for the stored `manifest`, its layers in
/// `compression`: kept in the store beside it (the compressed layers are
/// remembered there too), so it is copied as every stored image is.
fn outbound_manifest(
    store: &Store,
    manifest: &Descriptor,
    compression: Compression,
) -> Result<Descriptor, ImageIoError> {
    let bytes = store.read_verified(&content::descriptor_digest(manifest)?)?;
    let out = crate::outbound::manifest_for(store, &bytes, compression)?;
    if out == bytes {
        return Ok(manifest.clone());
    }
    let (digest, size) = store.write_blob(&out)?;
    // A docker manifest sent with zstd layers became OCI: say so in the index.
    let media_type = serde_json::from_slice::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(oci_spec::image::MediaType::from))
        .unwrap_or_else(|| manifest.media_type().clone());
    let mut desc = manifest.clone();
    desc.set_digest(crate::digest::to_oci(&digest));
    desc.set_size(size);
    desc.set_media_type(media_type);
    Ok(desc)
}

/// One image in a docker save `manifest.json`.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn write_docker<W: Write>(store: &Store, images: &[Named], out: W) -> Result<W, ImageIoError> {
    let mut tar = tar::Builder::new(out);
    let mut written: HashSet<String> = HashSet::new();
    let mut saved = Vec::new();
    // repository → tag → the ID of its top layer, as docker writes `repositories`.
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let manifest: oci_spec::image::ImageManifest = serde_json::from_slice(
            &store.read_verified(&content::descriptor_digest(&image.manifest)?)?,
        )
        .map_err(|source| ImageIoError::Json {
            what: "image manifest",
            path: image.manifest.digest().to_string(),
            source,
        })?;
        let config_digest = content::descriptor_digest(manifest.config())?;
        let config_bytes = store.read_verified(&config_digest)?;
        let config = Store::parse_image_config(&config_bytes).map_err(|source| ImageIoError::Json {
            what: "image config",
            path: config_digest.to_string(),
            source,
        })?;
        let layers = crate::image::layers(&manifest, &config)?;
        let config_path = format!("{}.json", config_digest.hex());
        if written.insert(config_path.clone()) {
            append_bytes(&mut tar, &config_path, &config_bytes)?;
        }
        let mut layer_paths = Vec::new();
        for layer in &layers {
            let path = format!("{}/layer.tar", layer.diff_id.hex());
            if written.insert(path.clone()) {
                append_uncompressed(store, &mut tar, layer, &path)?;
            }
            layer_paths.push(path);
        }
        for name in &image.names {
            let (repository, tag) = name.rsplit_once(':').unwrap_or((name, "latest"));
            let top = layers.last().map(|l| l.diff_id.hex().to_owned()).unwrap_or_default();
            repositories.entry(repository.to_owned()).or_default().insert(tag.to_owned(), top);
        }
        let repo_tags = (!image.names.is_empty()).then(|| image.names.clone());
        saved.push(SavedImage { config: config_path, repo_tags, layers: layer_paths });
    }
    append_bytes(&mut tar, "manifest.json", &serde_json::to_vec(&saved).expect("a manifest serialises"))?;
    append_bytes(&mut tar, "repositories", &serde_json::to_vec(&repositories).expect("a map serialises"))?;
    tar.into_inner().map_err(ImageIoError::Write)
}

/// Append `layer` uncompressed at `path`. A tar entry's size comes first, so
/// a compressed layer is decompressed into a scratch file in the store
/// (checked against its diffID on the way), then appended; a plain one (what
/// kiln keeps) is appended straight from its blob, checked as it goes (a
/// mismatch fails the write, and the archive is never renamed into place).
fn append_uncompressed<W: Write>(
    store: &Store,
    tar: &mut tar::Builder<W>,
    layer: &crate::layer::Layer,
    path: &str,
) -> Result<(), ImageIoError> {
    if layer.is_plain() {
        let blob = store.blob_path(&layer.digest);
        let file = fs::File::open(&blob).map_err(crate::store::io_err("opening", &blob))?;
        let size = file.metadata().map_err(crate::store::io_err("reading", &blob))?.len();
        let mut hashing =
            Hashing { inner: io::BufReader::with_capacity(256 * 1024, file), hasher: Sha256::new(), count: 0 };
        tar.append_data(&mut file_header(size), path, &mut hashing).map_err(ImageIoError::Write)?;
        let actual = Digest::from_hasher(hashing.hasher);
        if actual != layer.diff_id || hashing.count != size {
            return Err(ImageIoError::DiffIdMismatch {
                layer: layer.digest.to_string(),
                expected: layer.diff_id.to_string(),
                actual: actual.to_string(),
            });
        }
        return Ok(());
    }
    let work = store.work_dir();
    let mut scratch = tempfile::Builder::new()
        .prefix(&crate::store::temp_prefix("layer"))
        .tempfile_in(&work)
        .map_err(crate::store::io_err("creating a temp file in", &work))?;
    let what = format!("layer {}", layer.digest);
    let plain = super::decompressed(Provider::open(store, &layer.digest)?, &what)?;
    let mut hashing = Hashing { inner: plain, hasher: Sha256::new(), count: 0 };
    let scratch_path = scratch.path().to_owned();
    super::copy(&mut hashing, &what, scratch.as_file_mut(), |e| {
        crate::store::io_err("writing", &scratch_path)(e).into()
    })?;
    let actual = Digest::from_hasher(hashing.hasher);
    if actual != layer.diff_id {
        return Err(ImageIoError::DiffIdMismatch {
            layer: layer.digest.to_string(),
            expected: layer.diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    let mut file = fs::File::open(&scratch_path).map_err(crate::store::io_err("opening", &scratch_path))?;
    tar.append_data(&mut file_header(hashing.count), path, &mut file).map_err(ImageIoError::Write)
}
