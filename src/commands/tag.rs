//! `kiln tag`: another name for a stored image.

use anyhow::Context;
use kiln::store::Store;

use crate::cli::images::TagArgs;

pub fn tag(store: &Store, args: TagArgs) -> anyhow::Result<()> {
    let image = store.get(&args.source)?;
    store
        .tag(&args.target, &image.descriptor)
        .with_context(|| format!("tagging {} as {}", args.source, args.target))?;
    Ok(())
}
