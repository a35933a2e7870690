//! `kiln push`: [`kiln::registry::push`], a progress line per blob on stderr.

use std::sync::Arc;

use kiln::registry::{self, PushOptions, RegistryConfig};
use kiln::store::Store;

use crate::cli::registry::PushArgs;

/// Push `name` to `dest`; prints `reference@digest`.
pub fn push_one(
    store: &Store,
    config: &RegistryConfig,
    name: &str,
    dest: Option<&str>,
    compression: registry::Compression,
) -> anyhow::Result<registry::Pushed> {
    let options = PushOptions { config, progress: Arc::new(super::pull::Transfers), compression };
    let pushed = registry::push(store, name, dest, &options)?;
    crate::outln!("{}@{}", pushed.reference, pushed.digest)?;
    Ok(pushed)
}

pub fn push(store: &Store, config: &RegistryConfig, args: PushArgs) -> anyhow::Result<()> {
    push_one(store, config, &args.name, args.dest.as_deref(), args.compression.into()).map(drop)
}
