//! `kiln prune`: remove what the store keeps for later and no image needs.

use kiln::ops::run_mounts;
use kiln::store::Store;

use crate::cli::prune::Args;

pub fn prune(store: &Store, args: Args) -> anyhow::Result<()> {
    if !args.cache_mounts {
        anyhow::bail!("say what to prune: --cache-mounts removes the folders of RUN --mount=type=cache");
    }
    let pruned = run_mounts::prune(store)?;
    for busy in &pruned.busy {
        eprintln!("cache mount {busy:?} is in use by a build: skipped");
    }
    for (id, bytes) in &pruned.removed {
        crate::outln!("Deleted cache mount {id:?} ({})", size(*bytes))?;
    }
    crate::outln!("Total reclaimed space: {}", size(pruned.removed.iter().map(|(_, b)| b).sum()))?;
    Ok(())
}

/// docker's units: powers of 1000, three significant digits.
fn size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}{}", units[unit]).replace(".000", "")
    }
}
