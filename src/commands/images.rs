//! `kiln images`: one line per image; those without a name show `<none>`.

use kiln::store::Store;

use crate::cli::output::human_size as human;

pub fn images(store: &Store) -> anyhow::Result<()> {
    crate::outln!("{:<40} {:<16} {:<14} {:>10}", "REPOSITORY", "TAG", "IMAGE ID", "SIZE")?;
    for image in store.images()? {
        let (manifest, _) = store.image_parts(&image)?;
        // The ID is the config digest, as docker's is (and as `kiln build` prints).
        let id = manifest.config().digest().digest().chars().take(12).collect::<String>();
        let size: u64 = manifest.layers().iter().map(|l| l.size()).sum();
        let name = image.name.as_deref().unwrap_or("<none>:<none>");
        let (repo, tag) = name.rsplit_once(':').unwrap_or((name, ""));
        crate::outln!("{repo:<40} {tag:<16} {id:<14} {:>10}", human(size))?;
    }
    Ok(())
}
