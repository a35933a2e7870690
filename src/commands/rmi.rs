//! `kiln rmi`: remove names, or an image without a name by its ID, then
//! the blobs and snapshots only the removed images held (what other images
//! or the build cache hold stays).

use kiln::gc::Collector;
use kiln::store::Store;

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
    let untagged = (|| -> anyhow::Result<()> {
        for name in &args.images {
            for image in store.untag(name)? {
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
