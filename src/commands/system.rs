//! `kiln system df`: the store's disk usage, as `docker system df` shows it.
//!
//! - Images: TOTAL images; ACTIVE those containers use; SIZE what they
//!   hold, each blob and snapshot once; RECLAIMABLE what removing them all
//!   would free (what no build cache entry holds too).
//! - Containers: TOTAL, ACTIVE (running), SIZE their changes and logs,
//!   RECLAIMABLE those of stopped ones. Local Volumes: the same, ACTIVE
//!   those a container uses.
//! - Build Cache: TOTAL entries (step results, ADD downloads, RUN cache
//!   mounts); ACTIVE those whose layers all belong to images (what a plain
//!   `kiln prune` keeps); SIZE what they hold and no image does;
//!   RECLAIMABLE what `kiln prune -a` frees: the same.
//!
//! Sizes are disk blocks (`du`'s), in docker's units.

use std::time::SystemTime;

use kiln::gc::{disk_usage, DiskUsage};
use kiln::store::Store;

use crate::cli::output::human_size_4 as size;
use crate::cli::prune::{DfArgs, SystemArgs, SystemCommand};

pub fn system(store: &Store, args: SystemArgs) -> anyhow::Result<()> {
    match args.command {
        SystemCommand::Df(args) => df(store, args),
    }
}

fn df(store: &Store, args: DfArgs) -> anyhow::Result<()> {
    let usage = disk_usage(store)?;
    let mounts = kiln::ops::run_mounts::usage(store);
    let images = distinct_images(&usage);
    let cache_total = usage.entries.len() + mounts.len();
    let cache_active = usage.entries.iter().filter(|e| e.shared).count();
    let cache_size = usage.cache_size + mounts.iter().map(|(_, b)| b).sum::<u64>();
    let percent = |part: u64, whole: u64| (part * 100).checked_div(whole).unwrap_or(0);
    let (containers, volumes) = kiln::container::usage::usage(store)?;
    let used: std::collections::BTreeSet<&str> = containers.iter().map(|c| c.image_id.as_str()).collect();
    let images_active = usage.images.iter().filter(|i| used.contains(i.manifest.to_string().as_str())).count();
    let sum = |it: &mut dyn Iterator<Item = u64>| it.sum::<u64>();
    let containers_size = sum(&mut containers.iter().map(|c| c.bytes));
    let containers_free = sum(&mut containers.iter().filter(|c| !c.running).map(|c| c.bytes));
    let volumes_size = sum(&mut volumes.iter().map(|v| v.bytes));
    let volumes_free = sum(&mut volumes.iter().filter(|v| !v.in_use).map(|v| v.bytes));
    let rows = vec![
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"].map(str::to_owned),
        [
            "Images".to_owned(),
            images.to_string(),
            images_active.to_string(),
            size(usage.images_size),
            format!("{} ({}%)", size(usage.images_reclaimable), percent(usage.images_reclaimable, usage.images_size)),
        ],
        [
            "Containers".to_owned(),
            containers.len().to_string(),
            containers.iter().filter(|c| c.running).count().to_string(),
            size(containers_size),
            format!("{} ({}%)", size(containers_free), percent(containers_free, containers_size)),
        ],
        [
            "Local Volumes".to_owned(),
            volumes.len().to_string(),
            volumes.iter().filter(|v| v.in_use).count().to_string(),
            size(volumes_size),
            format!("{} ({}%)", size(volumes_free), percent(volumes_free, volumes_size)),
        ],
        [
            "Build Cache".to_owned(),
            cache_total.to_string(),
            cache_active.to_string(),
            size(cache_size),
            size(cache_size),
        ],
    ];
    table(&rows)?;
    if !args.verbose {
        return Ok(());
    }
    crate::outln!("\nImages space usage:\n")?;
    let mut rows = vec![["IMAGE", "MANIFEST", "SIZE", "SHARED SIZE", "UNIQUE SIZE"].map(str::to_owned)];
    for i in &usage.images {
        rows.push([
            i.name.clone().unwrap_or_else(|| "<none>".to_owned()),
            i.manifest.hex()[..12].to_owned(),
            size(i.size),
            size(i.shared),
            size(i.size - i.shared),
        ]);
    }
    table(&rows)?;
    crate::outln!("\nBuild cache usage: {}\n", size(cache_size))?;
    let mut rows = vec![["CACHE ID", "CACHE TYPE", "SIZE", "LAST USED", "SHARED"].map(str::to_owned)];
    for e in &usage.entries {
        let shared = if e.shared { "true" } else { "false" };
        rows.push([
            e.id[..12.min(e.id.len())].to_owned(),
            e.kind.name().to_owned(),
            size(e.size),
            ago(e.last_used),
            shared.to_owned(),
        ]);
    }
    for (id, bytes) in &mounts {
        rows.push([id.clone(), "exec.cachemount".to_owned(), size(*bytes), String::new(), "false".to_owned()]);
    }
    table(&rows)
}

/// Images count once per manifest, however many names they have.
fn distinct_images(usage: &DiskUsage) -> usize {
    usage.images.iter().map(|i| &i.manifest).collect::<std::collections::BTreeSet<_>>().len()
}

/// Columns as docker's tabwriter lays them: at least 10 wide, 3 apart.
fn table<const N: usize>(rows: &[[String; N]]) -> anyhow::Result<()> {
    let widths: Vec<usize> =
        (0..N).map(|c| rows.iter().map(|r| r[c].chars().count() + 3).max().unwrap_or(0).max(10)).collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        crate::outln!("{}", line.trim_end())?;
    }
    Ok(())
}

/// `5 minutes ago`, as docker says when.
fn ago(when: SystemTime) -> String {
    let secs = when.elapsed().map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        0..=59 => "Less than a minute ago".to_owned(),
        60..=3599 => format!("{} minutes ago", secs / 60),
        3600..=172_799 => format!("{} hours ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}
