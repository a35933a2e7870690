//! Layers leaving the machine — a push, `kiln save`, `-o type=oci`,
//! `--cache-to` — in the compression asked for (`--compression`, gzip unless
//! told), whatever form the store keeps them in: kiln keeps its own layers as
//! plain tars, so a layer leaves compressed into a blob of its own, made once
//! (gzip on all cores, [`crate::layer::pgzip`]; zstd multithreaded). Which blob
//! that is, is kept beside the layer's diffID
//! (`<root>/compressed/<diffID hex>.<gzip|zstd>`, one line: the blob's
//! digest), so the next export of any image with that layer finds it instead
//! of compressing again. Records of stores older than this live in
//! `<root>/registry/compressed/` and are still read.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::PathBuf;

use kiln_solver::Digest;
use serde_json::Value;

use crate::layer::compress::{tar_stream, Form};
use crate::layer::pgzip::ParGzEncoder;
use crate::layer::Layer;
use crate::registry::pull::{DOCKER_MANIFEST, OCI_MANIFEST};
use crate::store::{Store, StoreError};

/// Errors while compressing layers for export.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("compressing layer {layer} with {compression}")]
    Compress {
        layer: String,
        compression: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("reading {what} {digest}")]
    Json {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what} {digest}: {why}")]
    Invalid { what: &'static str, digest: String, why: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The compression layers are sent in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// gzip: what every registry and runtime reads.
    #[default]
    Gzip,
    /// zstd: smaller and faster to unpack; containerd 1.5+, podman, kiln.
    Zstd,
}

impl Compression {
    /// `gzip`, `zstd`: the media type's suffix and the record's extension.
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The blob form this compression makes.
    pub fn form(self) -> Form {
        match self {
            Compression::Gzip => Form::Gzip,
            Compression::Zstd => Form::Zstd,
        }
    }
}

/// The manifest to send for the stored manifest `bytes`, its layers in
/// `compression` (compressed into the store where they are not): the stored
/// bytes themselves when every layer already is.
pub fn manifest_for(store: &Store, bytes: &[u8], compression: Compression) -> Result<Vec<u8>, OutboundError> {
    let json_err = |source| OutboundError::Json { what: "manifest", digest: Digest::of(bytes).to_string(), source };
    let mut manifest: Value = serde_json::from_slice(bytes).map_err(json_err)?;
    let docker = manifest.get("mediaType").and_then(Value::as_str) == Some(DOCKER_MANIFEST);
    let mut diff_ids: Option<Vec<String>> = None;
    let mut changed = false;
    let layers = manifest.get_mut("layers").and_then(Value::as_array_mut).map(std::mem::take).unwrap_or_default();
    let mut out = Vec::with_capacity(layers.len());
    for (i, mut layer) in layers.into_iter().enumerate() {
        let digest = digest_of(&layer)?;
        if form_of(store, &digest)? != compression.form() {
            if diff_ids.is_none() {
                diff_ids = Some(config_diff_ids(store, &manifest)?);
            }
            let diff_id = diff_ids.as_ref().and_then(|d| d.get(i)).ok_or_else(|| OutboundError::Invalid {
                what: "image config",
                digest: digest.to_string(),
                why: format!("it has no diffID for layer {}", i + 1),
            })?;
            let diff_id = diff_id.parse::<Digest>().map_err(|e| OutboundError::Invalid {
                what: "image config",
                digest: digest.to_string(),
                why: format!("diffID {diff_id:?}: {e}"),
            })?;
            let size = layer.get("size").and_then(Value::as_u64).unwrap_or_default();
            let stored = Layer { digest: digest.clone(), diff_id, size };
            let Layer { digest: blob, size, .. } = compressed(store, &stored, compression)?;
            layer["digest"] = Value::from(blob.as_str());
            layer["size"] = Value::from(size);
            // docker's manifest has no zstd layer type: the manifest becomes OCI.
            layer["mediaType"] = Value::from(layer_type(docker && compression == Compression::Gzip, compression));
            changed = true;
        }
        out.push(layer);
    }
    manifest["layers"] = Value::Array(out);
    if !changed {
        return Ok(bytes.to_vec());
    }
    if docker && compression == Compression::Zstd {
        manifest["mediaType"] = Value::from(OCI_MANIFEST);
        manifest["config"]["mediaType"] = Value::from("application/vnd.oci.image.config.v1+json");
    }
    if manifest.get("mediaType").and_then(Value::as_str) == Some(OCI_MANIFEST) {
        // Written as kiln writes a manifest into its store: the image built
        // elsewhere from this one's exported cache, its layers already
        // compressed, then sends the same bytes, so the same digest.
        if let Ok(oci) = serde_json::from_value::<oci_spec::image::ImageManifest>(manifest.clone()) {
            return serde_json::to_vec(&oci).map_err(json_err);
        }
    }
    serde_json::to_vec(&manifest).map_err(json_err)
}

/// The media type of a layer compressed with `compression`.
fn layer_type(docker: bool, compression: Compression) -> String {
    if docker {
        return "application/vnd.docker.image.rootfs.diff.tar.gzip".into();
    }
    format!("application/vnd.oci.image.layer.v1.tar+{}", compression.name())
}

fn digest_of(descriptor: &Value) -> Result<Digest, OutboundError> {
    let text = descriptor.get("digest").and_then(Value::as_str).unwrap_or_default();
    text.parse::<Digest>().map_err(|e| OutboundError::Invalid {
        what: "descriptor",
        digest: text.to_owned(),
        why: e.to_string(),
    })
}

/// The stored blob's form, from its first bytes.
fn form_of(store: &Store, digest: &Digest) -> Result<Form, OutboundError> {
    Form::of_blob(store, digest).map_err(|_| StoreError::MissingBlob(digest.to_string()).into())
}

/// The diffIDs of the manifest's image config.
fn config_diff_ids(store: &Store, manifest: &Value) -> Result<Vec<String>, OutboundError> {
    let digest = digest_of(&manifest["config"])?;
    let bytes = std::fs::read(store.blob_path(&digest)).map_err(|_| StoreError::MissingBlob(digest.to_string()))?;
    let config: Value = serde_json::from_slice(&bytes).map_err(|source| OutboundError::Json {
        what: "image config",
        digest: digest.to_string(),
        source,
    })?;
    let ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    Ok(ids.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

/// Where the blob of the layer `diff_id` in `compression` is recorded:
/// `<root>/compressed/<diffID hex>.<gzip|zstd>`, holding the blob's digest.
pub fn record_path(store: &Store, diff_id: &Digest, compression: Compression) -> PathBuf {
    store.root().join("compressed").join(format!("{}.{}", diff_id.hex(), compression.name()))
}

/// Where stores before plain local layers recorded it (push only).
fn legacy_record_path(store: &Store, diff_id: &Digest, compression: Compression) -> PathBuf {
    store.root().join("registry/compressed").join(format!("{}.{}", diff_id.hex(), compression.name()))
}

/// The recorded blob of `diff_id` in `compression`, if the store still has it.
pub fn recorded(store: &Store, diff_id: &Digest, compression: Compression) -> Option<Layer> {
    [record_path(store, diff_id, compression), legacy_record_path(store, diff_id, compression)].iter().find_map(|p| {
        let blob = std::fs::read_to_string(p).ok()?.trim().parse::<Digest>().ok()?;
        let size = std::fs::metadata(store.blob_path(&blob)).ok()?.len();
        Some(Layer { digest: blob, diff_id: diff_id.clone(), size })
    })
}

/// The stored `layer` in `compression`: itself when its blob already is,
/// else the recorded blob, else compressed now (on all cores) and recorded.
pub fn compressed(store: &Store, layer: &Layer, compression: Compression) -> Result<Layer, OutboundError> {
    if form_of(store, &layer.digest)? == compression.form() {
        return Ok(layer.clone());
    }
    if let Some(known) = recorded(store, &layer.diff_id, compression) {
        return Ok(known);
    }
    let failed =
        |source| OutboundError::Compress { layer: layer.digest.to_string(), compression: compression.name(), source };
    let file = File::open(store.blob_path(&layer.digest)).map_err(failed)?;
    let mut tar = tar_stream(BufReader::with_capacity(256 * 1024, file)).map_err(failed)?;
    let writer = io::BufWriter::with_capacity(256 * 1024, store.blob_writer()?);
    let writer = match compression {
        Compression::Gzip => {
            let mut gz = ParGzEncoder::new(writer, flate2::Compression::new(6));
            io::copy(&mut tar, &mut gz).map_err(failed)?;
            gz.finish().map_err(failed)?
        }
        Compression::Zstd => {
            let mut z = zstd::stream::write::Encoder::new(writer, 3).map_err(failed)?;
            // Its output does not depend on the worker count (zstd >= 1.5), so
            // equal tars stay equal blobs on every machine.
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            z.multithread(workers).map_err(failed)?;
            io::copy(&mut tar, &mut z).map_err(failed)?;
            z.finish().map_err(failed)?
        }
    };
    let writer = writer.into_inner().map_err(|e| failed(e.into_error()))?;
    let (blob, size) = writer.commit(None)?;
    // A lost record costs one compression more, never a wrong blob: the
    // record is only a hint, checked against the store on use.
    let _ = write_record(&record_path(store, &layer.diff_id, compression), &blob);
    Ok(Layer { digest: blob, diff_id: layer.diff_id.clone(), size })
}

fn write_record(path: &std::path::Path, blob: &Digest) -> io::Result<()> {
    let dir = path.parent().expect("a record has a folder");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    writeln!(tmp, "{blob}")?;
    tmp.persist(path).map_err(|e| e.error).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_media_types() {
        for (docker, compression, want) in [
            (false, Compression::Gzip, "application/vnd.oci.image.layer.v1.tar+gzip"),
            (false, Compression::Zstd, "application/vnd.oci.image.layer.v1.tar+zstd"),
            (true, Compression::Gzip, "application/vnd.docker.image.rootfs.diff.tar.gzip"),
        ] {
            assert_eq!(layer_type(docker, compression), want);
        }
    }

    #[test]
    fn a_layer_is_compressed_once_and_recorded_beside_its_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tar = b"a tar, as far as this test cares ".repeat(200);
        let (plain, size) = store.write_blob(&tar).unwrap();
        let layer = Layer { digest: plain.clone(), diff_id: plain, size };
        for compression in [Compression::Zstd, Compression::Gzip] {
            let out = compressed(&store, &layer, compression).unwrap();
            assert_eq!(form_of(&store, &out.digest).unwrap(), compression.form());
            assert_eq!(out.diff_id, layer.diff_id);
            let blob = std::fs::read(store.blob_path(&out.digest)).unwrap();
            assert_eq!(blob.len() as u64, out.size);
            let mut back = Vec::new();
            std::io::Read::read_to_end(&mut tar_stream(&blob[..]).unwrap(), &mut back).unwrap();
            assert_eq!(back, tar);
            let record = record_path(&store, &layer.diff_id, compression);
            assert_eq!(std::fs::read_to_string(&record).unwrap().trim(), out.digest.as_str());
            // Already in that form: itself.
            assert_eq!(compressed(&store, &out, compression).unwrap(), out);
            // The second time reads the record: a blob put in its place is what comes back.
            let (other, _) = store.write_blob(compression.name().as_bytes()).unwrap();
            std::fs::write(&record, other.as_str()).unwrap();
            assert_eq!(compressed(&store, &layer, compression).unwrap().digest, other);
            // A record naming a blob the store lost is no record: compressed again.
            std::fs::remove_file(store.blob_path(&other)).unwrap();
            assert_eq!(compressed(&store, &layer, compression).unwrap(), out);
        }
    }

    #[test]
    fn records_of_older_stores_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (plain, size) = store.write_blob(b"old").unwrap();
        let (gz, _) = store.write_blob(b"stands in for its gzip").unwrap();
        let old = legacy_record_path(&store, &plain, Compression::Gzip);
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::write(&old, format!("{gz}\n")).unwrap();
        let layer = Layer { digest: plain.clone(), diff_id: plain, size };
        assert_eq!(compressed(&store, &layer, Compression::Gzip).unwrap().digest, gz);
    }
}
