//! Base images for the frontend, looked up in the store.

use kiln_frontend::{ImageResolver, ResolvedImage};

use crate::store::Store;

/// Looks base images up in the store: by name, or by ID (see [`Store::find`]).
pub(crate) struct StoreResolver<'a>(pub(crate) &'a Store);

impl ImageResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String> {
        let found = self.0.find(reference).map_err(|e| e.to_string())?;
        let Some(image) = found else { return Ok(None) };
        let (manifest, config) = self.0.image_parts(&image).map_err(|e| e.to_string())?;
        let meta = crate::image::inherited(&config);
        // An image without a name goes by its ID, as `kiln images` shows it.
        let name = image.name.clone().unwrap_or_else(|| manifest.config().digest().to_string());
        Ok(Some(ResolvedImage { name, digest: image.digest().to_string(), config: meta }))
    }
}
