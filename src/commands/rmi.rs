//! `kiln rmi`: remove names, or an image without a name by its ID, then
//! the blobs and snapshots only the removed images held (what other images
//! or the build cache hold stays).

use kiln::container::usage::ContainerUsage;
use kiln::gc::Collector;
use kiln::store::{Store, Untagging};

use crate::cli::images::RmiArgs;
use crate::cli::output::human_size_4 as size;

pub fn rmi(store: &Store, args: RmiArgs) -> anyhow::Result<()> {
    // Held from before the first name goes until the space is freed: a
    // build cannot start on an image between its removal and the collection.
    let collector = match Collector::try_now(store)? {
        Some(c) => c,
        None => {
            eprintln!("waiting for the builds using the store to finish");
            Collector::wait(store)?
        }
    };
    let users = kiln::container::usage::image_users(store)?;
    let refuse = |untagging: &Untagging<'_>| in_use(untagging, &users, args.force);
    let untagged = (|| -> anyhow::Result<()> {
        for name in &args.images {
            for image in store.untag_unless(name, &refuse)? {
                match &image.name {
                    Some(name) => crate::outln!("Untagged: {name}")?,
                    None => crate::outln!("Removed: {}", store.image_id(&image)?)?,
                }
            }
        }
        Ok(())
    })();
    // What was removed before an error is freed all the same.
    let freed = collector.collect()?;
    if freed.reclaimed > 0 {
        eprintln!("freed {}", size(freed.reclaimed));
    }
    untagged
}

/// docker's refusals: an image a container uses keeps its last name unless
/// forced, and its ID, while one runs, even when forced.
fn in_use(untagging: &Untagging<'_>, users: &[ContainerUsage], force: bool) -> Option<String> {
    let orphaned: Vec<String> = untagging.orphaned().iter().map(ToString::to_string).collect();
    let user =
        |running: bool| users.iter().find(|c| c.running == running && orphaned.contains(&c.image_id)).map(|c| &c.name);
    if let (true, Some(name)) = (untagging.by_id, user(true)) {
        return Some(format!("the running container {name} uses it (stop it first: kiln stop {name})"));
    }
    if force {
        return None;
    }
    let (name, running) = match (user(true), user(false)) {
        (Some(name), _) => (name, "running "),
        (None, Some(name)) => (name, ""),
        (None, None) => return None,
    };
    Some(format!(
        "the {running}container {name} uses it; remove the container first (kiln rm -f {name}), or remove the name anyway with kiln rmi -f"
    ))
}
