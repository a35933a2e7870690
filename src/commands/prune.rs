//! `kiln prune`: remove build cache, as `docker builder prune` does, then
//! whatever no image and no cache entry holds (see [`kiln::gc`]).

use std::io::{BufRead, Write};

use kiln::gc::{Collector, PruneOptions};
use kiln::ops::run_mounts;
use kiln::store::Store;

use crate::cli::output::human_size_4 as size;
use crate::cli::prune::{Args, Filter};

pub fn prune(store: &Store, args: Args) -> anyhow::Result<()> {
    let what = match (args.cache_mounts, args.all) {
        (true, _) => "all RUN --mount=type=cache folders not in use",
        (false, true) => "all build cache",
        (false, false) => "all dangling build cache",
    };
    if !args.force && !confirm(what)? {
        anyhow::bail!("prune cancelled: nothing was removed (-f removes without asking)");
    }
    let mut reclaimed = 0;
    if args.cache_mounts || args.all {
        reclaimed += cache_mounts(store)?;
    }
    if !args.cache_mounts {
        let options = PruneOptions {
            all: args.all,
            until: args.filter.iter().map(|Filter::Until(t)| *t).min(),
            keep_storage: args.keep_storage,
        };
        let collector = match Collector::try_now(store)? {
            Some(c) => c,
            None => {
                eprintln!("waiting for the builds using the store to finish");
                Collector::wait(store)?
            }
        };
        let pruned = collector.prune(&options)?;
        if !pruned.entries.is_empty() {
            crate::outln!("Deleted build cache objects:")?;
            for id in &pruned.entries {
                crate::outln!("{id}")?;
            }
            crate::outln!("")?;
        }
        reclaimed += pruned.reclaimed;
    }
    crate::outln!("Total reclaimed space: {}", size(reclaimed))?;
    Ok(())
}

fn cache_mounts(store: &Store) -> anyhow::Result<u64> {
    let pruned = run_mounts::prune(store)?;
    for busy in &pruned.busy {
        eprintln!("cache mount {busy:?} is in use by a build: skipped");
    }
    for (id, bytes) in &pruned.removed {
        crate::outln!("Deleted cache mount {id:?} ({})", size(*bytes))?;
    }
    Ok(pruned.removed.iter().map(|(_, b)| b).sum())
}

/// docker's question, answered on stdin (a terminal or not, as docker
/// reads it): only `y` or `yes` goes on; an empty stdin is a no.
fn confirm(what: &str) -> anyhow::Result<bool> {
    print!("WARNING! This will remove {what}. Are you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if !answer.ends_with('\n') {
        // No line came (an empty stdin): end the question's line.
        println!();
    }
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
