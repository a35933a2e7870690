//! OCI images in the store, with `oci-spec`: the one builder of image configs
//! (a build's, an import's) and of manifests, and the one reader of a stored
//! image's layers (manifest + config → [`Layer`]s).

use std::collections::HashMap;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_frontend::{History, ImageConfig};
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifest, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

use crate::digest::{self, Digest, DigestError};
use crate::docker_config::DockerFields;
use crate::layer::compress::Form;
use crate::layer::Layer;
use crate::store::{Staged, Store, StoreError};

/// Errors assembling an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("assembling the image {0}")]
    Spec(&'static str, #[source] oci_spec::OciSpecError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the image config into the store")]
    WriteConfig(#[source] io::Error),
    #[error("its manifest lists {layers} layers but its config {diff_ids} diff_ids")]
    LayerCount { layers: usize, diff_ids: usize },
    #[error(transparent)]
    Digest(#[from] DigestError),
}

/// The current time, or `SOURCE_DATE_EPOCH` when set, as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (days to civil date after
/// Howard Hinnant's algorithm).
pub(crate) fn rfc3339(secs: u64) -> String {
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

/// The host's architecture, named the way Go (and so every image config) names it.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        other => other, // s390x, riscv64, mips64, mips
    }
}

fn spec(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> ImageError {
    move |e| ImageError::Spec(what, e)
}

/// Build the image config of a filesystem of `layers` made at `created` (RFC
/// 3339), with `meta` (Env, Cmd, … and history). A history entry without a
/// time of its own (one this build added) gets `created`, or the current time
/// when the filesystem has none (scratch and metadata only): docker shows a
/// missing time as 292 years ago.
/// `meta` is taken, not copied: with many labels or much history it is big.
pub fn config(layers: &[Layer], created: Option<&str>, meta: ImageConfig) -> Result<ImageConfiguration, ImageError> {
    // Only imports come here, and an imported rootfs sets none of docker's fields.
    let Parts { mut image, mut config, labels, docker: _ } = parts(layers, created, meta)?;
    if !labels.is_empty() {
        config.set_labels(Some(labels.into_iter().collect::<HashMap<_, _>>()));
    }
    image.set_config(Some(config));
    Ok(image)
}

/// An image config in pieces: oci-spec keeps labels in a HashMap, whose order
/// changes from process to process, so they are kept aside, sorted, and
/// written in place by [`Sorted`]: the same build must give the same image ID.
struct Parts {
    /// Without its `config`.
    image: ImageConfiguration,
    /// Without its labels.
    config: oci_spec::image::Config,
    labels: std::collections::BTreeMap<String, String>,
    /// docker's fields of `config` that oci-spec has no place for.
    docker: DockerFields,
}

/// The JSON of [`Parts`]: the image config with its `config` and the labels
/// in it, labels sorted.
#[derive(serde::Serialize)]
struct Sorted<'a> {
    #[serde(flatten)]
    image: &'a ImageConfiguration,
    config: SortedConfig<'a>,
}

#[derive(serde::Serialize)]
struct SortedConfig<'a> {
    #[serde(flatten)]
    config: &'a oci_spec::image::Config,
    #[serde(rename = "Labels", skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    labels: &'a std::collections::BTreeMap<String, String>,
    #[serde(flatten)]
    docker: &'a DockerFields,
}

fn parts(layers: &[Layer], created: Option<&str>, meta: ImageConfig) -> Result<Parts, ImageError> {
    let docker = DockerFields::of(&meta);
    let mut c = ConfigBuilder::default();
    if !meta.env.is_empty() {
        c = c.env(meta.env);
    }
    if let Some(cmd) = meta.cmd {
        c = c.cmd(cmd);
    }
    if let Some(ep) = meta.entrypoint {
        c = c.entrypoint(ep);
    }
    if !meta.working_dir.is_empty() {
        c = c.working_dir(meta.working_dir);
    }
    if !meta.user.is_empty() {
        c = c.user(meta.user);
    }
    if !meta.exposed_ports.is_empty() {
        c = c.exposed_ports(meta.exposed_ports.into_iter().collect::<Vec<_>>());
    }
    if !meta.volumes.is_empty() {
        c = c.volumes(meta.volumes.into_iter().collect::<Vec<_>>());
    }
    if let Some(signal) = meta.stop_signal {
        c = c.stop_signal(signal);
    }
    let now = created.map_or_else(now_rfc3339, str::to_owned);
    let history = meta
        .history
        .into_iter()
        .map(|h| {
            let mut b =
                HistoryBuilder::default().created(h.created.unwrap_or_else(|| now.clone())).created_by(h.created_by);
            // Left out when false, as docker writes it (Go's omitempty).
            if h.empty_layer {
                b = b.empty_layer(true);
            }
            if let Some(comment) = h.comment {
                b = b.comment(comment);
            }
            b.build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(spec("history"))?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec("rootfs"))?;
    let mut b = ImageConfigurationBuilder::default()
        .architecture(Arch::from(host_architecture()))
        .os(Os::Linux)
        .rootfs(rootfs)
        .history(history);
    if let Some(created) = created {
        b = b.created(created.to_owned());
    }
    if let Some(author) = meta.author {
        b = b.author(author);
    }
    let image = b.build().map_err(spec("image config"))?;
    Ok(Parts { image, config: c.build().map_err(spec("config"))?, labels: meta.labels, docker })
}

/// The metadata a stage built on the image `config` (whose JSON is `raw`)
/// inherits: Env, Cmd, …, docker's Healthcheck, Shell and OnBuild, and its
/// history, each entry with its own time and comment.
pub fn inherited(config: &ImageConfiguration, raw: &[u8]) -> ImageConfig {
    let c = config.config().clone().unwrap_or_default();
    let mut meta = ImageConfig {
        env: c.env().clone().unwrap_or_default(),
        cmd: c.cmd().clone(),
        entrypoint: c.entrypoint().clone(),
        working_dir: c.working_dir().clone().unwrap_or_default(),
        user: c.user().clone().unwrap_or_default(),
        labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
        exposed_ports: c.exposed_ports().clone().unwrap_or_default().into_iter().collect(),
        volumes: c.volumes().clone().unwrap_or_default().into_iter().collect(),
        stop_signal: c.stop_signal().clone(),
        healthcheck: None,
        shell: None,
        on_build: Vec::new(),
        args_escaped: false,
        author: config.author().clone(),
        history: config
            .history()
            .iter()
            .map(|h| History {
                created: h.created().clone(),
                created_by: h.created_by().clone().unwrap_or_default(),
                comment: h.comment().clone(),
                empty_layer: h.empty_layer().unwrap_or(false),
            })
            .collect(),
    };
    DockerFields::read(raw).apply(&mut meta);
    meta
}

/// The layers of an image: the manifest's blobs paired with the config's diffIDs.
pub fn layers(manifest: &ImageManifest, config: &ImageConfiguration) -> Result<Vec<Layer>, ImageError> {
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(ImageError::LayerCount { layers: manifest.layers().len(), diff_ids: diff_ids.len() });
    }
    manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(l, diff_id)| {
            Ok(Layer { digest: digest::from_oci(l.digest())?, diff_id: diff_id.parse()?, size: l.size() })
        })
        .collect()
}

/// The config and layers of the stored image whose manifest is `manifest`.
pub fn read(store: &Store, manifest: &Digest) -> Result<(ImageConfiguration, Vec<Layer>), ImageError> {
    let manifest: ImageManifest = store.read_json("manifest", manifest)?;
    let config = store.read_image_config(&digest::from_oci(manifest.config().digest())?)?;
    let layers = layers(&manifest, &config)?;
    Ok((config, layers))
}

fn descriptor(media: MediaType, digest: &Digest, size: u64) -> Descriptor {
    DescriptorBuilder::default()
        .media_type(media)
        .digest(digest::to_oci(digest))
        .size(size)
        .build()
        .expect("every required field is set")
}

/// Write config (see [`config`]) and manifest of a filesystem of `layers` made
/// at `created` to the store; return the manifest's descriptor and the config
/// digest (the image ID). Names nothing: tagging is the caller's last step.
pub fn write(
    store: &Store,
    layers: &[Layer],
    created: Option<&str>,
    meta: ImageConfig,
) -> Result<(Descriptor, Digest), ImageError> {
    let parts = parts(layers, created, meta)?;
    let config = Sorted {
        image: &parts.image,
        config: SortedConfig { config: &parts.config, labels: &parts.labels, docker: &parts.docker },
    };
    // Streamed into the store: a config with many labels or much history is
    // big enough that a second copy of it, as bytes, counts.
    let mut blob = io::BufWriter::new(store.blob_writer()?);
    serde_json::to_writer(&mut blob, &config).map_err(|e| ImageError::WriteConfig(e.into()))?;
    let blob = blob.into_inner().map_err(|e| ImageError::WriteConfig(e.into_error()))?;
    let (config_digest, config_size, config_blob) = blob.stage(None)?;
    let (manifest, manifest_blob) = stage_manifest(store, &config_digest, config_size, layers)?;
    // Synced together: what a build waits for at its end is one sync, not two.
    Staged::place_all(config_blob.into_iter().chain(manifest_blob).collect())?;
    Ok((manifest, config_digest))
}

/// Store `config` (image config JSON, as is) and an OCI manifest naming it and
/// `layers`; return the manifest's descriptor and the config digest.
pub fn write_manifest(store: &Store, config: &[u8], layers: &[Layer]) -> Result<(Descriptor, Digest), StoreError> {
    let (config_digest, config_size) = store.write_blob(config)?;
    store_manifest(store, config_digest, config_size, layers)
}

/// Store an OCI manifest naming the stored config and `layers`.
fn store_manifest(
    store: &Store,
    config_digest: Digest,
    config_size: u64,
    layers: &[Layer],
) -> Result<(Descriptor, Digest), StoreError> {
    let (manifest, staged) = stage_manifest(store, &config_digest, config_size, layers)?;
    staged.map_or(Ok(()), Staged::place)?;
    Ok((manifest, config_digest))
}

/// [`store_manifest`], the manifest's blob not yet in place.
fn stage_manifest(
    store: &Store,
    config_digest: &Digest,
    config_size: u64,
    layers: &[Layer],
) -> Result<(Descriptor, Option<Staged>), StoreError> {
    // Each layer named by its real form: kiln's own are plain tars, a base
    // image's stay as they were pulled (gzip or zstd).
    let layers = layers
        .iter()
        .map(|l| {
            let form = Form::of_layer(store, l).map_err(|_| StoreError::MissingBlob(l.digest.to_string()))?;
            Ok(descriptor(form.oci_media_type(), &l.digest, l.size))
        })
        .collect::<Result<Vec<Descriptor>, StoreError>>()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, config_digest, config_size))
        .layers(layers)
        .build()
        .expect("every required field is set");
    let (digest, size, staged) = store.stage_blob(&serde_json::to_vec(&manifest).expect("a manifest serialises"))?;
    Ok((descriptor(MediaType::ImageManifest, &digest, size), staged))
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_400_000), "2026-11-23T02:13:20Z");
    }
}
