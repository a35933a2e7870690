//! `kiln images`: one line per image; those without a name show `<none>`.

use kiln::store::Store;

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

/// Sizes as docker shows them: powers of 1000, one decimal.
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

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn sizes_read_like_docker() {
        for (bytes, want) in [(0, "0B"), (999, "999B"), (1000, "1.0kB"), (1_234_567, "1.2MB"), (5_000_000_000, "5.0GB")]
        {
            assert_eq!(human(bytes), want);
        }
    }
}
