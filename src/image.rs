//! Turning a built filesystem and a stage's metadata into an OCI image: config
//! and manifest, written to the store with `oci-spec`.

use std::collections::HashMap;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_frontend::ImageConfig;
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

use crate::engine::FsState;
use crate::layer::Layer;
use crate::store::{Store, StoreError};
use kiln_solver::Digest;

/// Errors assembling an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("assembling the image {0}")]
    Spec(&'static str, #[source] oci_spec::OciSpecError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the image config into the store")]
    WriteConfig(#[source] io::Error),
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
fn rfc3339(secs: u64) -> String {
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

/// Build the image config for `fs` with `meta` (Env, Cmd, … and history).
/// `meta` is taken, not copied: with many labels or much history it is big.
pub fn config(fs: &FsState, meta: ImageConfig) -> Result<ImageConfiguration, ImageError> {
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
    if !meta.labels.is_empty() {
        c = c.labels(meta.labels.into_iter().collect::<HashMap<_, _>>());
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
    let history = meta
        .history
        .into_iter()
        .map(|h| HistoryBuilder::default().created_by(h.created_by).empty_layer(h.empty_layer).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(spec("history"))?;
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(fs.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec("rootfs"))?;
    let mut b = ImageConfigurationBuilder::default()
        .architecture(Arch::from(host_architecture()))
        .os(Os::Linux)
        .config(c.build().map_err(spec("config"))?)
        .rootfs(rootfs)
        .history(history);
    if let Some(created) = &fs.created {
        b = b.created(created.clone());
    }
    b.build().map_err(spec("image config"))
}

fn descriptor(media: MediaType, digest: &Digest, size: u64) -> Descriptor {
    let digest: oci_spec::image::Digest = digest.as_str().parse().expect("a sha256 digest is a valid OCI digest");
    DescriptorBuilder::default()
        .media_type(media)
        .digest(digest)
        .size(size)
        .build()
        .expect("every required field is set")
}

/// Write config and manifest for `fs` to the store; return the manifest's descriptor
/// and the config digest (the image ID). Names nothing: tagging is the caller's last step.
pub fn write(store: &Store, fs: &FsState, meta: ImageConfig) -> Result<(Descriptor, Digest), ImageError> {
    let config = config(fs, meta)?;
    // Streamed into the store: a config with many labels or much history is
    // big enough that a second copy of it, as bytes, counts.
    let mut blob = io::BufWriter::new(store.blob_writer()?);
    serde_json::to_writer(&mut blob, &config).map_err(|e| ImageError::WriteConfig(e.into()))?;
    let blob = blob.into_inner().map_err(|e| ImageError::WriteConfig(e.into_error()))?;
    let (config_digest, config_size) = blob.commit(None)?;
    Ok(store_manifest(store, config_digest, config_size, &fs.layers)?)
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
    let layers: Vec<Descriptor> =
        layers.iter().map(|l| descriptor(MediaType::ImageLayerGzip, &l.digest, l.size)).collect();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(MediaType::ImageConfig, &config_digest, config_size))
        .layers(layers)
        .build()
        .expect("every required field is set");
    let (digest, size) = store.write_blob(&serde_json::to_vec(&manifest).expect("a manifest serialises"))?;
    Ok((descriptor(MediaType::ImageManifest, &digest, size), config_digest))
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
