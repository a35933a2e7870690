//! `kiln push`: an image from the store to a registry.
//!
//! Each blob (config, layers) in parallel: skipped when the repository has it
//! (HEAD); mounted when [`super::sources`] knows another repository of the
//! same registry that has it; uploaded otherwise. The manifest goes last, so
//! a push that fails never leaves a tag pointing at missing blobs.
//!
//! Layers leave in [`PushOptions::compression`] (gzip unless asked), which
//! [`super::compress`] makes of them when the store keeps them otherwise;
//! the manifest then names those blobs, and its digest on the registry
//! differs from the stored one.

use std::io::Read as _;
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};
use kiln_solver::Digest;
use oci_spec::image::ImageManifest;
use serde_json::Value;

use super::client::Client;
use super::pull::OCI_MANIFEST;
use super::{sources, RegistryConfig, RegistryError, Transfer, TransferProgress};
use crate::content::{ContentError, Provider as _};
use crate::store::reference::Reference;
use crate::store::Store;

/// Blobs uploaded at once.
const PARALLEL: usize = 4;

/// What to push with.
pub struct PushOptions<'a> {
    /// Registries, credentials.
    pub config: &'a RegistryConfig,
    /// Per-blob progress.
    pub progress: Arc<dyn TransferProgress>,
    /// How layers are compressed on the way.
    pub compression: super::Compression,
}

/// What a push wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The full name pushed to (`127.0.0.1:5000/app:v1`).
    pub reference: String,
    /// The manifest's digest, the same in the store and on the registry.
    pub digest: Digest,
}

/// Push the stored image `name` to `dest` (to its own name when `None`).
pub fn push(store: &Store, name: &str, dest: Option<&str>, options: &PushOptions<'_>) -> Result<Pushed, RegistryError> {
    let image = store.get(name)?;
    let stored = image.digest();
    let bytes = store.read_verified(&stored).map_err(|e| missing_blob(e, &stored))?;
    let bytes = crate::outbound::manifest_for(store, &bytes, options.compression)?;
    let digest = Digest::of(&bytes);
    let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(|source| RegistryError::Json {
        what: "manifest",
        digest: digest.to_string(),
        source,
    })?;
    let target = Reference::parse(dest.unwrap_or(name))?;
    let tag = target.tag().unwrap_or("latest").to_owned();
    let path = target.path();
    let media = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| OCI_MANIFEST.to_owned());
    let mut blobs = vec![crate::digest::from_oci(manifest.config().digest()).map_err(crate::image::ImageError::from)?];
    for layer in manifest.layers() {
        blobs.push(crate::digest::from_oci(layer.digest()).map_err(crate::image::ImageError::from)?);
    }
    let endpoint = super::block_on(async {
        let client = Client::for_host(options.config, target.registry()).await?;
        // Futures made in a loop, not a closure (see pull's fetch_blobs).
        let mut jobs = Vec::new();
        for blob in &blobs {
            jobs.push(send_blob(store, &client, &path, blob, &options.progress));
        }
        futures_util::stream::iter(jobs).buffer_unordered(PARALLEL).try_collect::<Vec<()>>().await?;
        // Last: only now may the tag name the image.
        client.put_manifest(&path, &tag, bytes.into(), &media).await?;
        Ok::<_, RegistryError>(client.endpoint().to_owned())
    })??;
    for blob in &blobs {
        sources::record(store, blob, &endpoint, &path);
    }
    Ok(Pushed { reference: format!("{}/{path}:{tag}", target.registry()), digest })
}

/// The store's error for a blob it lacks, as pushes have always said it.
fn missing_blob(e: ContentError, digest: &Digest) -> RegistryError {
    match e {
        ContentError::NotFound { .. } => crate::store::StoreError::MissingBlob(digest.to_string()).into(),
        e => e.into(),
    }
}

/// One blob to `path`: skipped, mounted or uploaded.
pub(crate) async fn send_blob(
    store: &Store,
    client: &Client,
    path: &str,
    digest: &Digest,
    progress: &Arc<dyn TransferProgress>,
) -> Result<(), RegistryError> {
    if client.has_blob(path, digest.as_str()).await? {
        progress.transfer(&Transfer::Exists { digest: digest.to_string() });
        return Ok(());
    }
    for from in sources::repositories(store, digest, client.endpoint()) {
        if from != path && client.mount(path, &from, digest.as_str()).await? {
            progress.transfer(&Transfer::Mounted { digest: digest.to_string(), from });
            return Ok(());
        }
    }
    // Through the store as a content [`Provider`], on a blocking thread as
    // its reads block.
    let (from, name) = (store.clone(), digest.clone());
    let read = tokio::task::spawn_blocking(move || {
        let mut data = Vec::new();
        from.open(&name)?
            .read_to_end(&mut data)
            .map_err(|source| ContentError::Read { digest: name.to_string(), source })?;
        Ok::<_, ContentError>(data)
    });
    let data = read
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        .map_err(|e| missing_blob(e, digest))?;
    let size = data.len() as u64;
    progress.transfer(&Transfer::Started { digest: digest.to_string(), size });
    client.upload(path, data.into(), digest.as_str()).await?;
    progress.transfer(&Transfer::Done { digest: digest.to_string(), size });
    Ok(())
}
