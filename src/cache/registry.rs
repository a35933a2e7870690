//! `--cache-to type=registry,ref=REPO:TAG` and `--cache-from
//! type=registry,ref=REPO:TAG`: the cache artifact (see [`super::artifact`])
//! in a registry, the store every runner of a CI shares.
//!
//! Export is a push: each layer blob skipped when the repository has it
//! (HEAD), mounted or uploaded otherwise (the push path's
//! [`crate::registry::push`] blob step), then the config, and the manifest
//! last, so the tag never names a cache whose blobs are missing. Import reads
//! the manifest and config at once (the records are small); a layer blob is
//! fetched only when a step hits a record that names it, and the store
//! verifies it before anyone uses it.

use std::io::Seek as _;
use std::sync::Arc;

use futures_util::{StreamExt as _, TryStreamExt as _};
use kiln_solver::Digest;

use super::artifact::{CacheArtifact, ImportedCache, Manifest, MANIFEST_TYPE};
use super::CacheError;
use crate::content::{ContentError, Provider};
use crate::registry::{block_on, Client, Quiet, RegistryConfig, RegistryError, TransferProgress};
use crate::store::reference::Reference;
use crate::store::Store;

/// Blobs uploaded at once (as pushes do).
const PARALLEL: usize = 4;

/// Push `artifact` to `reference`, its layer blobs from `store`.
pub fn export(
    store: &Store,
    config: &RegistryConfig,
    artifact: &CacheArtifact,
    reference: &Reference,
) -> Result<(), CacheError> {
    let encoded = artifact.encode(store);
    // The config goes up through the same path as the layers: from the store.
    let (config_digest, _) = store.write_blob(&encoded.config)?;
    let mut blobs = vec![config_digest];
    for layer in &encoded.layers {
        blobs.push(crate::content::descriptor_digest(layer)?);
    }
    let path = reference.path();
    let tag = reference.tag().unwrap_or("latest").to_owned();
    let progress: Arc<dyn TransferProgress> = Arc::new(Quiet);
    block_on(async {
        let client = Client::for_host(config, reference.registry()).await?;
        let mut jobs = Vec::new();
        for blob in &blobs {
            jobs.push(crate::registry::push::send_blob(store, &client, &path, blob, &progress));
        }
        futures_util::stream::iter(jobs).buffer_unordered(PARALLEL).try_collect::<Vec<()>>().await?;
        // Last: only now may the tag name the cache.
        client.put_manifest(&path, &tag, encoded.manifest.clone().into(), MANIFEST_TYPE).await
    })
    .and_then(|r| r)
    .map_err(|source| CacheError::Registry { reference: reference.to_string(), source: Box::new(source) })
}

/// The cache `reference` names, read into `store` as it is used; `None`
/// when the registry has no such tag yet (a first build).
pub fn import(
    store: &Store,
    config: &RegistryConfig,
    reference: &Reference,
) -> Result<Option<ImportedCache>, CacheError> {
    let place = reference.to_string();
    let path = reference.path();
    let fetched = block_on(async {
        let client = Client::for_host(config, reference.registry()).await?;
        let (bytes, _) = match client.manifest(&path, reference.tag(), None, &[MANIFEST_TYPE]).await {
            Ok(found) => found,
            Err(RegistryError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let manifest = Manifest::decode(&bytes, &place).map_err(|e| RegistryError::Protocol {
            host: client.endpoint().to_owned(),
            what: "a kiln cache".into(),
            source: e.into(),
        })?;
        let digest = manifest.config.digest().to_string();
        let config = fetch(&client, &path, &digest).await?;
        Ok(Some(config))
    })
    .and_then(|r| r)
    .map_err(|source| CacheError::Registry { reference: place.clone(), source: Box::new(source) })?;
    let Some(config_bytes) = fetched else { return Ok(None) };
    let artifact = CacheArtifact::decode(&config_bytes, &place)?;
    let blobs = RegistryBlobs { config: config.clone(), host: reference.registry().to_owned(), path };
    Ok(Some(ImportedCache::new(store, artifact, Arc::new(blobs))))
}

/// A whole blob (a config: small), checked against its digest.
async fn fetch(client: &Client, path: &str, digest: &str) -> Result<Vec<u8>, RegistryError> {
    let mut stream = client.blob(path, digest).await?.stream;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.map_err(|e| RegistryError::Protocol {
            host: client.endpoint().to_owned(),
            what: format!("to send blob {digest}"),
            source: e.into(),
        })?);
    }
    let actual = Digest::of(&bytes);
    if actual.as_str() != digest {
        return Err(RegistryError::DigestMismatch {
            host: client.endpoint().to_owned(),
            expected: digest.to_owned(),
            actual: actual.to_string(),
        });
    }
    Ok(bytes)
}

/// One repository's blobs as a content [`Provider`]: each blob spooled to an
/// unnamed temp file, then handed to the store's ingester, which verifies it.
struct RegistryBlobs {
    config: RegistryConfig,
    host: String,
    path: String,
}

impl Provider for RegistryBlobs {
    fn open(&self, digest: &Digest) -> Result<Box<dyn std::io::Read + '_>, ContentError> {
        let read_err = |e: RegistryError| ContentError::Read {
            digest: digest.to_string(),
            source: std::io::Error::other(e.to_string()),
        };
        let file = block_on(async {
            let client = Client::for_host(&self.config, &self.host).await?;
            let mut file =
                tempfile::tempfile().map_err(|source| RegistryError::Write { digest: digest.to_string(), source })?;
            client.blob_into(&self.path, digest.as_str(), &mut file).await?;
            file.rewind().map_err(|source| RegistryError::Write { digest: digest.to_string(), source })?;
            Ok(file)
        })
        .and_then(|r| r)
        .map_err(read_err)?;
        Ok(Box::new(std::io::BufReader::new(file)))
    }
}
