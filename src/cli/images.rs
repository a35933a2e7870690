//! `kiln images`, `inspect`, `tag`, `rmi`.

use anyhow::Context;

use crate::store::Store;

pub fn list(store: &Store) -> anyhow::Result<()> {
    println!("{:<40} {:<16} {:<14} {:>10}", "REPOSITORY", "TAG", "IMAGE ID", "SIZE");
    for image in store.images()? {
        let (manifest, _) = store.image_parts(&image)?;
        let id = manifest.config().digest().digest().chars().take(12).collect::<String>();
        let size: u64 = manifest.layers().iter().map(|l| l.size()).sum();
        let (repo, tag) = image.name.rsplit_once(':').unwrap_or((&image.name, ""));
        println!("{repo:<40} {tag:<16} {id:<14} {:>10}", human(size));
    }
    Ok(())
}

fn human(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < units.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.1}{}", units[u])
    }
}

pub fn inspect(store: &Store, name: &str) -> anyhow::Result<()> {
    let image = store.get(name)?;
    let (manifest, config) = store.image_parts(&image)?;
    let out = serde_json::json!({
        "Name": image.name,
        "Digest": image.digest().to_string(),
        "Id": manifest.config().digest().to_string(),
        "Manifest": manifest,
        "Config": config,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn tag(store: &Store, source: &str, target: &str) -> anyhow::Result<()> {
    let image = store.get(source)?;
    store.tag(target, &image.descriptor).with_context(|| format!("tagging {source} as {target}"))?;
    Ok(())
}

pub fn remove(store: &Store, names: &[String]) -> anyhow::Result<()> {
    for name in names {
        for image in store.untag(name)? {
            println!("Untagged: {}", image.name);
        }
    }
    Ok(())
}
