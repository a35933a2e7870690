//! Base images for the frontend: from the store, else (as `--pull` allows)
//! pulled from their registry first.
//!
//! The frontend calls [`ImageResolver::resolve`] synchronously, before the
//! build's runtime starts; a pull runs on a runtime of its own
//! ([`crate::registry::block_on`]), on its own thread were one running.

use std::sync::Arc;

use kiln_frontend::{ImageResolver, ResolvedImage};

use super::Progress;
use crate::registry::{Platform, PullOptions, PullPolicy, RegistryConfig, Transfer, TransferProgress};
use crate::store::Store;

/// Looks base images up in the store — by name, or by ID (see
/// [`Store::find`]) — pulling them as `pull` says.
#[derive(Clone)]
pub(crate) struct StoreResolver<'a> {
    pub(crate) store: &'a Store,
    pub(crate) pull: PullPolicy,
    pub(crate) registry: &'a RegistryConfig,
    pub(crate) progress: Arc<dyn Progress>,
}

/// A build's progress as a pull's.
struct Transfers(Arc<dyn Progress>);

impl TransferProgress for Transfers {
    fn transfer(&self, event: &Transfer) {
        self.0.transfer(event);
    }
}

/// `error` and its causes on one line: the frontend keeps a message, not an error.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

impl ImageResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String> {
        let platform = Platform::host();
        let options = PullOptions {
            config: self.registry,
            platform: &platform,
            progress: Arc::new(Transfers(self.progress.clone())),
        };
        let found = crate::registry::ensure(self.store, reference, self.pull, &options).map_err(|e| chain(&e))?;
        let Some(image) = found else { return Ok(None) };
        let (manifest, config) = self.store.image_parts(&image).map_err(|e| e.to_string())?;
        let config_digest = crate::digest::from_oci(manifest.config().digest()).map_err(|e| e.to_string())?;
        let raw = self.store.image_config_bytes(&config_digest).map_err(|e| e.to_string())?;
        let meta = crate::image::inherited(&config, &raw);
        // An image without a name goes by its ID, as `kiln images` shows it.
        let name = image.name.clone().unwrap_or_else(|| manifest.config().digest().to_string());
        Ok(Some(ResolvedImage { name, digest: image.digest().to_string(), config: meta }))
    }
}

/// Base images as the store has them, never pulled; one it lacks stands in
/// as an empty image. Lowering with it tells what the RUN steps ask for
/// (secrets, agents, entitlements) before any pull, so a build that cannot
/// run fails before it downloads anything.
pub(crate) struct Offline<'a>(pub(crate) StoreResolver<'a>);

impl ImageResolver for Offline<'_> {
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String> {
        let found = StoreResolver { pull: PullPolicy::Never, ..self.0.clone() }.resolve(reference).ok().flatten();
        Ok(Some(found.unwrap_or_else(|| ResolvedImage {
            name: reference.to_owned(),
            digest: format!("sha256:{}", "0".repeat(64)),
            config: Default::default(),
        })))
    }
}
