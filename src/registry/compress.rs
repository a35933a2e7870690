//! Layers leave in the compression the push asks for (`--compression`),
//! whatever form the store keeps them in: a layer stored otherwise is
//! compressed into a blob of its own, once. Which blob that is, is kept
//! beside the layer's diffID (`<root>/registry/compressed/<diffID hex>.<alg>`),
//! so the next push of any image with that layer finds it instead of
//! compressing again.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::PathBuf;

use kiln_solver::Digest;
use serde_json::Value;

use super::pull::{DOCKER_MANIFEST, OCI_MANIFEST};
use super::RegistryError;
use crate::layer::compress::{tar_stream, Form};
use crate::store::Store;

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

    fn form(self) -> Form {
        match self {
            Compression::Gzip => Form::Gzip,
            Compression::Zstd => Form::Zstd,
        }
    }
}

/// The manifest to push for the stored manifest `bytes`, its layers in
/// `compression` (compressed into the store where they are not): the stored
/// bytes themselves when every layer already is.
pub(super) fn manifest_for(store: &Store, bytes: &[u8], compression: Compression) -> Result<Vec<u8>, RegistryError> {
    let json_err = |source| RegistryError::Json { what: "manifest", digest: Digest::of(bytes).to_string(), source };
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
            let diff_id = diff_ids.as_ref().and_then(|d| d.get(i)).ok_or_else(|| RegistryError::Json {
                what: "image config",
                digest: digest.to_string(),
                source: serde::de::Error::custom(format!("it has no diffID for layer {}", i + 1)),
            })?;
            let (blob, size) = compressed(store, &digest, diff_id, compression)?;
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
    serde_json::to_vec(&manifest).map_err(json_err)
}

/// The media type of a layer compressed with `compression`.
fn layer_type(docker: bool, compression: Compression) -> String {
    if docker {
        return "application/vnd.docker.image.rootfs.diff.tar.gzip".into();
    }
    format!("application/vnd.oci.image.layer.v1.tar+{}", compression.name())
}

fn digest_of(descriptor: &Value) -> Result<Digest, RegistryError> {
    let text = descriptor.get("digest").and_then(Value::as_str).unwrap_or_default();
    Ok(text.parse::<Digest>().map_err(crate::image::ImageError::from)?)
}

/// The stored blob's form, from its first bytes.
fn form_of(store: &Store, digest: &Digest) -> Result<Form, RegistryError> {
    let missing = |_| crate::store::StoreError::MissingBlob(digest.to_string());
    let mut head = [0u8; 4];
    let mut file = File::open(store.blob_path(digest)).map_err(missing)?;
    let n = file.read(&mut head).map_err(missing)?;
    Ok(Form::sniff(&head[..n]))
}

/// The diffIDs of the manifest's image config.
fn config_diff_ids(store: &Store, manifest: &Value) -> Result<Vec<String>, RegistryError> {
    let digest = digest_of(&manifest["config"])?;
    let bytes = std::fs::read(store.blob_path(&digest))
        .map_err(|_| crate::store::StoreError::MissingBlob(digest.to_string()))?;
    let config: Value = serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
        what: "image config",
        digest: digest.to_string(),
        source,
    })?;
    let ids = config["rootfs"]["diff_ids"].as_array().cloned().unwrap_or_default();
    Ok(ids.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

/// Where the blob of the layer `diff_id` in `compression` is recorded.
pub fn record_path(store: &Store, diff_id: &str, compression: Compression) -> PathBuf {
    let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
    store.root().join("registry/compressed").join(format!("{hex}.{}", compression.name()))
}

/// The layer `diff_id` (stored as `digest`) in `compression`: the recorded
/// blob when the store still has it, else compressed now and recorded.
fn compressed(
    store: &Store,
    digest: &Digest,
    diff_id: &str,
    compression: Compression,
) -> Result<(Digest, u64), RegistryError> {
    let record = record_path(store, diff_id, compression);
    let known = std::fs::read_to_string(&record).ok().and_then(|t| t.trim().parse::<Digest>().ok());
    if let Some(blob) = known.filter(|b| store.has_blob(b)) {
        let size = std::fs::metadata(store.blob_path(&blob)).map(|m| m.len()).unwrap_or_default();
        return Ok((blob, size));
    }
    let failed =
        |source| RegistryError::Compress { layer: digest.to_string(), compression: compression.name(), source };
    let file = File::open(store.blob_path(digest)).map_err(failed)?;
    let mut tar = tar_stream(BufReader::new(file)).map_err(failed)?;
    let writer = store.blob_writer()?;
    let writer = match compression {
        // As [`crate::layer::LayerSink`] writes them: equal tars, equal blobs.
        Compression::Gzip => {
            let mut gz = flate2::GzBuilder::new().mtime(0).write(writer, flate2::Compression::new(6));
            io::copy(&mut tar, &mut gz).map_err(failed)?;
            gz.finish().map_err(failed)?
        }
        Compression::Zstd => {
            let mut z = zstd::stream::write::Encoder::new(writer, 3).map_err(failed)?;
            io::copy(&mut tar, &mut z).map_err(failed)?;
            z.finish().map_err(failed)?
        }
    };
    let (blob, size) = writer.commit(None)?;
    // A lost record costs one compression more, never a wrong blob: the
    // record is only a hint, checked against the store on use.
    let _ = write_record(&record, &blob);
    Ok((blob, size))
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
        let (plain, _) = store.write_blob(&tar).unwrap();
        let diff_id = Digest::of(&tar).to_string();
        let (blob, size) = compressed(&store, &plain, &diff_id, Compression::Zstd).unwrap();
        assert_eq!(form_of(&store, &blob).unwrap(), Form::Zstd);
        assert_eq!(std::fs::read(store.blob_path(&blob)).unwrap().len() as u64, size);
        let record = record_path(&store, &diff_id, Compression::Zstd);
        assert_eq!(std::fs::read_to_string(&record).unwrap().trim(), blob.as_str());
        // The second time reads the record: a blob put in its place is what comes back.
        let (other, _) = store.write_blob(b"stands in for the compressed blob").unwrap();
        std::fs::write(&record, other.as_str()).unwrap();
        assert_eq!(compressed(&store, &plain, &diff_id, Compression::Zstd).unwrap().0, other);
    }
}
