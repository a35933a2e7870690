//! Layers: tar changesets, compressed, with their digest and diffID computed in
//! the one streaming pass that writes them ([`LayerWriter`]); applied to a
//! snapshot folder safely ([`extract`]); made from an overlay upper folder
//! ([`diff`]).

pub mod bounded;
pub mod compress;
pub mod diff;
mod donor;
pub mod entry;
pub mod extract;
pub mod overlay;
pub mod pgzip;
mod writer;

pub use writer::{Layer, LayerSink, LayerTar, LayerWriter, TAR_LAYER_TYPE};

/// Errors while reading or writing layers.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error("writing the layer")]
    Write(#[source] std::io::Error),
    #[error("reading layer {layer}")]
    Read {
        layer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {layer}: entry {entry:?} {why}")]
    Unsafe { layer: String, entry: String, why: &'static str },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A file whose name a layer reads as a whiteout (`.wh.*`).
    #[error(
        "{entry}: a file named .wh.* cannot go in a layer, where the name means that a file was deleted; \
         rename it, or delete it before the step ends"
    )]
    WhiteoutName { entry: String },
    /// A file owned by an id kiln's user namespace does not have.
    #[error(transparent)]
    Unmapped(Box<UnmappedOwner>),
}

/// A layer's file whose owner kiln cannot give it (boxed in [`LayerError`],
/// which stays small).
#[derive(Debug, thiserror::Error)]
#[error(
    "layer {layer}: {entry} is owned by uid {uid} and gid {gid}, which do not exist in kiln's user namespace. {hint}"
)]
pub struct UnmappedOwner {
    pub layer: String,
    pub entry: String,
    pub uid: u64,
    pub gid: u64,
    pub hint: String,
}
