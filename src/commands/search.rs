//! `kiln search`: repositories of a registry's catalog that hold a term.

use kiln::registry::{Client, RegistryConfig};

use crate::cli::registry::SearchArgs;

pub fn search(config: &RegistryConfig, args: SearchArgs) -> anyhow::Result<()> {
    let found = kiln::registry::block_on(async {
        let client = Client::for_host(config, &args.registry).await?;
        let mut found = Vec::new();
        for repository in client.catalog().await? {
            if !repository.contains(&args.term) {
                continue;
            }
            let tags = if args.tags { client.tags(&repository).await? } else { Vec::new() };
            found.push((repository, tags));
        }
        Ok::<_, kiln::registry::RegistryError>(found)
    })??;
    for (repository, tags) in found {
        if args.tags {
            crate::outln!("{}/{repository}\t{}", args.registry, tags.join(" "))?;
        } else {
            crate::outln!("{}/{repository}", args.registry)?;
        }
    }
    Ok(())
}
