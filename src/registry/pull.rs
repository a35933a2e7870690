//! `kiln pull`: an image from a registry into the store.
//!
//! The manifest first (an OCI index or docker manifest list picks the
//! platform's), then its blobs in parallel — each one the store already has
//! is skipped, so a second pull moves no blob — each streamed into the store
//! as a content [`crate::content::Ingester`], which verifies it against its
//! digest and size before it is stored. Then each layer is checked against the diffID its config gives and
//! extracted into its snapshot, as `kiln load` does, so a bad layer is
//! refused before anything names it. The name is written last.
//!
//! Mirrors (`[registries."docker.io"] mirrors = […]`) are tried first, in
//! order; one that cannot be reached or lacks the image passes to the next,
//! and the registry itself comes last.

use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};
use kiln_solver::Digest;
use oci_spec::image::{Descriptor, DescriptorBuilder, ImageManifest, MediaType};
use serde_json::Value;

use super::client::Client;
use super::{sources, Platform, RegistryConfig, RegistryError, Transfer, TransferProgress};
use crate::content::{ContentError, Ingester as _};
use crate::snapshot::Snapshotter;
use crate::store::reference::{IdPrefix, Reference};
use crate::store::{Store, StoredImage};

/// OCI's image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI's image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// docker's image manifest (v2 schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// docker's manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// docker's old signed manifest, which kiln does not read.
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

const ACCEPT: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Blobs downloaded at once.
const PARALLEL: usize = 4;

/// When a build's base image is fetched from its registry (`--pull`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// When the store does not have it.
    #[default]
    Missing,
    /// Every time, so a moved tag is followed (blobs already stored are not fetched).
    Always,
    /// Never: the store must have it.
    Never,
}

/// What to pull with.
pub struct PullOptions<'a> {
    /// Registries, mirrors, credentials.
    pub config: &'a RegistryConfig,
    /// Which image of an index.
    pub platform: &'a Platform,
    /// Per-blob progress.
    pub progress: Arc<dyn TransferProgress>,
}

/// The image `name` names, from the store or, as `policy` allows, pulled.
/// `None` when the store lacks it and `policy` is [`PullPolicy::Never`].
pub fn ensure(
    store: &Store,
    name: &str,
    policy: PullPolicy,
    options: &PullOptions<'_>,
) -> Result<Option<StoredImage>, RegistryError> {
    let found = store.find(name)?;
    let pullable = !IdPrefix::parse(name).is_some_and(|id| id.is_whole());
    match (policy, found) {
        (PullPolicy::Never, found) => Ok(found),
        (PullPolicy::Missing, Some(image)) => Ok(Some(image)),
        (_, found) if !pullable => Ok(found),
        (_, _) => {
            pull(store, &Reference::parse(name)?, options)?;
            Ok(store.find(name)?)
        }
    }
}

/// Pull `reference` into the store; the stored manifest's descriptor.
pub fn pull(store: &Store, reference: &Reference, options: &PullOptions<'_>) -> Result<Descriptor, RegistryError> {
    let (manifest, bytes, blobs, endpoint) = super::block_on(fetch(store, reference, options))??;
    // Each layer checked and extracted before the image gets its name (and
    // before its manifest is stored): a layer that climbs out of its folder,
    // or is not what its config says, fails the pull here.
    let config_digest = crate::digest::from_oci(manifest.config().digest()).map_err(crate::image::ImageError::from)?;
    let config = store.read_image_config(&config_digest)?;
    let layers = crate::image::layers(&manifest, &config)?;
    let snapshots = Snapshotter::new(store);
    for layer in &layers {
        if !store.snapshots_dir().join(layer.diff_id.hex()).is_dir() {
            let file = std::fs::File::open(store.blob_path(&layer.digest))
                .map_err(|e| RegistryError::Write { digest: layer.digest.to_string(), source: e })?;
            let actual = crate::image_io::diff_id(file, &layer.digest)?;
            if actual != layer.diff_id {
                return Err(RegistryError::DiffId {
                    layer: layer.digest.to_string(),
                    expected: layer.diff_id.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        snapshots
            .ensure(layer)
            .map_err(|source| RegistryError::Unusable { layer: layer.digest.to_string(), source })?;
    }
    let (digest, size) = store.write_blob(&bytes)?;
    for blob in &blobs {
        sources::record(store, blob, &endpoint, &reference.path());
    }
    let media = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| OCI_MANIFEST.to_owned());
    let descriptor = DescriptorBuilder::default()
        .media_type(MediaType::from(media.as_str()))
        .digest(crate::digest::to_oci(&digest))
        .size(size)
        .build()
        .expect("every required field is set");
    if reference.tag.is_some() || reference.digest.is_none() {
        store.tag(&reference.tagged_name(), &descriptor)?;
    } else {
        store.keep_unnamed(&descriptor)?;
    }
    Ok(descriptor)
}

/// The manifest of `reference` for the platform, with its blobs in the store:
/// (manifest, its bytes, its blobs, the endpoint that gave them).
async fn fetch(
    store: &Store,
    reference: &Reference,
    options: &PullOptions<'_>,
) -> Result<(ImageManifest, Vec<u8>, Vec<Digest>, String), RegistryError> {
    let host = reference.registry();
    let mut endpoints = options.config.host(host).mirrors;
    endpoints.push(host.to_owned());
    let mut last_error = None;
    for (i, endpoint) in endpoints.iter().enumerate() {
        let is_mirror = i + 1 < endpoints.len();
        let attempt = async {
            let client = Client::connect(options.config, host, endpoint).await?;
            let (manifest, bytes) = resolve(&client, reference, options.platform).await?;
            Ok::<_, RegistryError>((client, manifest, bytes))
        };
        match attempt.await {
            Ok((client, manifest, bytes)) => {
                let blobs = fetch_blobs(store, &client, &reference.path(), &manifest, &options.progress).await?;
                return Ok((manifest, bytes, blobs, client.endpoint().to_owned()));
            }
            // A mirror that is down or lacks the image: the next one, then the registry.
            Err(e @ (RegistryError::Unreachable { .. } | RegistryError::NotFound { .. })) if is_mirror => {
                last_error = Some(e)
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.expect("the registry itself is always tried"))
}

/// The image manifest `reference` names for `platform`, and its bytes,
/// both verified against the digests that named them.
async fn resolve(
    client: &Client,
    reference: &Reference,
    platform: &Platform,
) -> Result<(ImageManifest, Vec<u8>), RegistryError> {
    let path = reference.path();
    let mut want = reference.digest.clone();
    let mut tag = reference.tag().map(str::to_owned);
    // An index, then one of its manifests: two levels are all docker and OCI use.
    for _ in 0..3 {
        let (bytes, _) = client.manifest(&path, tag.as_deref(), want.as_deref(), &ACCEPT).await?;
        let actual = Digest::of(&bytes);
        if let Some(expected) = &want {
            if actual.as_str() != expected {
                return Err(RegistryError::DigestMismatch {
                    host: client.host.clone(),
                    expected: expected.clone(),
                    actual: actual.to_string(),
                });
            }
        }
        let json: Value = serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
            what: "manifest",
            digest: actual.to_string(),
            source,
        })?;
        match media_type(&json) {
            OCI_INDEX | DOCKER_LIST => {
                want = Some(pick(&json, platform, &reference.to_string())?);
                tag = None;
            }
            OCI_MANIFEST | DOCKER_MANIFEST => {
                let manifest = serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
                    what: "manifest",
                    digest: actual.to_string(),
                    source,
                })?;
                return Ok((manifest, bytes.to_vec()));
            }
            other => return Err(RegistryError::MediaType { digest: actual.to_string(), media_type: other.to_owned() }),
        }
    }
    Err(RegistryError::MediaType { digest: reference.to_string(), media_type: "an index of indexes".into() })
}

/// A manifest's media type: its `mediaType`, else what its shape says (OCI
/// lets both kinds leave the field out); docker's schema 1 has none and says
/// so by its `schemaVersion`.
fn media_type(json: &Value) -> &str {
    if let Some(media) = json.get("mediaType").and_then(Value::as_str) {
        return media;
    }
    match json.get("schemaVersion").and_then(Value::as_u64) {
        Some(1) => DOCKER_SCHEMA1,
        _ if json.get("manifests").is_some() => OCI_INDEX,
        _ if json.get("layers").is_some() || json.get("config").is_some() => OCI_MANIFEST,
        _ => "none",
    }
}

/// The digest of `platform`'s manifest in an index. A variant is matched
/// when asked for; otherwise the first of the os/arch wins.
fn pick(index: &Value, platform: &Platform, reference: &str) -> Result<String, RegistryError> {
    let manifests = index.get("manifests").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let field = |m: &Value, name: &str| m.get("platform")?.get(name)?.as_str().map(str::to_owned);
    let found = manifests.iter().find(|m| {
        field(m, "os").as_deref() == Some(&platform.os)
            && field(m, "architecture").as_deref() == Some(&platform.architecture)
            && (platform.variant.is_none() || field(m, "variant") == platform.variant)
    });
    match found.and_then(|m| m.get("digest")?.as_str()) {
        Some(d) => Ok(d.to_owned()),
        None => {
            let available: Vec<String> = manifests
                .iter()
                .filter_map(|m| {
                    let mut p = format!("{}/{}", field(m, "os")?, field(m, "architecture")?);
                    if let Some(v) = field(m, "variant") {
                        p = format!("{p}/{v}");
                    }
                    Some(p)
                })
                .collect();
            Err(RegistryError::NoPlatform {
                reference: reference.to_owned(),
                platform: platform.to_string(),
                available: available.join(", "),
            })
        }
    }
}

/// Every blob of `manifest` (config, layers) in the store; their digests.
async fn fetch_blobs(
    store: &Store,
    client: &Client,
    path: &str,
    manifest: &ImageManifest,
    progress: &Arc<dyn TransferProgress>,
) -> Result<Vec<Digest>, RegistryError> {
    let descriptors: Vec<&Descriptor> = std::iter::once(manifest.config()).chain(manifest.layers()).collect();
    let mut digests = Vec::new();
    for d in &descriptors {
        digests.push(crate::digest::from_oci(d.digest()).map_err(crate::image::ImageError::from)?);
    }
    // Futures made in a loop, not a closure: a closure over borrowed items
    // trips the compiler's Send check of higher-ranked lifetimes.
    let mut jobs = Vec::new();
    for (digest, d) in digests.iter().zip(&descriptors) {
        jobs.push(fetch_blob(store, client, path, digest, d.size(), progress));
    }
    futures_util::stream::iter(jobs).buffer_unordered(PARALLEL).try_collect::<Vec<()>>().await?;
    Ok(digests)
}

/// One blob into the store, unless it is there already: the store as a
/// content [`Ingester`], which checks the blob's digest and size as it
/// arrives and keeps nothing that fails.
async fn fetch_blob(
    store: &Store,
    client: &Client,
    path: &str,
    digest: &Digest,
    size: u64,
    progress: &Arc<dyn TransferProgress>,
) -> Result<(), RegistryError> {
    if store.has(digest)? {
        progress.transfer(&Transfer::Exists { digest: digest.to_string() });
        return Ok(());
    }
    progress.transfer(&Transfer::Started { digest: digest.to_string(), size });
    let (to, name) = (store.clone(), digest.clone());
    let ingested = client.blob_to(path, digest.as_str(), move |from| to.ingest(&name, size, from)).await?;
    ingested.map_err(|e| match e {
        ContentError::DigestMismatch { expected, actual } => {
            RegistryError::DigestMismatch { host: client.endpoint().to_owned(), expected, actual }
        }
        ContentError::Write { digest, source, .. } => RegistryError::Write { digest, source },
        e => e.into(),
    })?;
    progress.transfer(&Transfer::Done { digest: digest.to_string(), size });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_says_its_media_type_or_its_shape_does() {
        for (json, want) in [
            (r#"{"mediaType": "application/x-odd"}"#, "application/x-odd"),
            (r#"{"schemaVersion": 2, "manifests": []}"#, OCI_INDEX),
            (r#"{"schemaVersion": 2, "config": {}, "layers": []}"#, OCI_MANIFEST),
            (r#"{"schemaVersion": 1, "fsLayers": []}"#, DOCKER_SCHEMA1),
            (r#"{"schemaVersion": 2}"#, "none"),
        ] {
            assert_eq!(media_type(&serde_json::from_str(json).unwrap()), want, "{json}");
        }
    }

    #[test]
    fn an_index_picks_the_platform() {
        let index = serde_json::json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
            {"digest": "sha256:c", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
            {"digest": "sha256:d", "platform": {"os": "windows", "architecture": "amd64"}},
        ]});
        for (platform, want) in [
            ("linux/amd64", Some("sha256:a")),
            ("linux/arm/v7", Some("sha256:c")),
            ("linux/arm", Some("sha256:b")),
            ("windows/amd64", Some("sha256:d")),
            ("linux/riscv64", None),
        ] {
            let got = pick(&index, &Platform::parse(platform).unwrap(), "x").ok();
            assert_eq!(got.as_deref(), want, "{platform}");
        }
        let err = pick(&index, &Platform::parse("linux/s390x").unwrap(), "x").unwrap_err().to_string();
        assert!(err.contains("linux/arm/v7") && err.contains("linux/s390x"), "{err}");
    }
}
