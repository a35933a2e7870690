//! `kiln pull`: [`kiln::registry::pull`], a progress line per blob on stderr.

use std::sync::Arc;

use kiln::registry::{self, Platform, PullOptions, RegistryConfig, Transfer, TransferProgress};
use kiln::store::reference::Reference;
use kiln::store::Store;

use crate::cli::registry::PullArgs;

/// Each blob's progress as a line on stderr.
pub struct Transfers;

impl TransferProgress for Transfers {
    fn transfer(&self, event: &Transfer) {
        eprintln!("{}", kiln::progress::transfer_line(event));
    }
}

/// Pull options with progress on stderr.
pub fn options<'a>(config: &'a RegistryConfig, platform: &'a Platform) -> PullOptions<'a> {
    PullOptions { config, platform, progress: Arc::new(Transfers) }
}

pub fn pull(store: &Store, config: &RegistryConfig, args: PullArgs) -> anyhow::Result<()> {
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?.unwrap_or_else(Platform::host);
    let reference = Reference::parse(&args.reference)?;
    let descriptor = registry::pull(store, &reference, &options(config, &platform))?;
    eprintln!("digest: {}", descriptor.digest());
    crate::outln!("{reference}")
}
