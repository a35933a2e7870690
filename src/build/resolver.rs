//! Base images for the frontend, looked up in the store.

use kiln_frontend::{History, ImageConfig, ImageResolver, ResolvedImage};

use crate::store::Store;

/// Looks base images up in the store: by name, or by ID (see [`Store::find`]).
pub(crate) struct StoreResolver<'a>(pub(crate) &'a Store);

impl ImageResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String> {
        let found = self.0.find(reference).map_err(|e| e.to_string())?;
        let Some(image) = found else { return Ok(None) };
        let (manifest, config) = self.0.image_parts(&image).map_err(|e| e.to_string())?;
        let c = config.config().clone().unwrap_or_default();
        let meta = ImageConfig {
            env: c.env().clone().unwrap_or_default(),
            cmd: c.cmd().clone(),
            entrypoint: c.entrypoint().clone(),
            working_dir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
            exposed_ports: c.exposed_ports().clone().unwrap_or_default().into_iter().collect(),
            volumes: c.volumes().clone().unwrap_or_default().into_iter().collect(),
            stop_signal: c.stop_signal().clone(),
            history: config
                .history()
                .iter()
                .map(|h| History {
                    created_by: h.created_by().clone().unwrap_or_default(),
                    empty_layer: h.empty_layer().unwrap_or(false),
                })
                .collect(),
        };
        // An image without a name goes by its ID, as `kiln images` shows it.
        let name = image.name.clone().unwrap_or_else(|| manifest.config().digest().to_string());
        Ok(Some(ResolvedImage { name, digest: image.digest().to_string(), config: meta }))
    }
}
