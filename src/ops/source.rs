//! FROM: a stage starts from nothing (scratch, [`FsState::default`]) or from
//! a stored image's layers.

use super::{EngineError, FsState};
use crate::store::Store;

/// The filesystem of the image `name` whose manifest is `digest` (pinned by
/// the frontend when it resolved the name).
pub(super) fn image(store: &Store, name: &str, digest: &str) -> Result<FsState, EngineError> {
    let bad = |source: crate::image::ImageError| EngineError::BadImage { name: name.to_owned(), source };
    let digest = digest.parse().map_err(|e| bad(crate::image::ImageError::Digest(e)))?;
    let (config, layers) = crate::image::read(store, &digest).map_err(bad)?;
    Ok(FsState { layers, created: config.created().clone() })
}
