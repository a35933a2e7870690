//! `kiln rmi`: remove names, or an image without a name by its ID.

use kiln::store::Store;

use crate::cli::images::RmiArgs;

pub fn rmi(store: &Store, args: RmiArgs) -> anyhow::Result<()> {
    for name in &args.images {
        for image in store.untag(name)? {
            match &image.name {
                Some(name) => crate::outln!("Untagged: {name}")?,
                None => crate::outln!("Removed: {}", store.image_id(&image)?)?,
            }
        }
    }
    Ok(())
}
