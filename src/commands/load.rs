//! `kiln load`: images from a `docker save` or OCI layout archive.

use std::fs::File;
use std::io::BufReader;

use anyhow::Context;
use kiln::store::Store;

use crate::cli::load::LoadArgs;

pub fn load(store: &Store, args: LoadArgs) -> anyhow::Result<()> {
    let names = match &args.input {
        Some(path) => {
            let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            kiln::image_io::load_archive(store, BufReader::new(f))
        }
        None => kiln::image_io::load_archive(store, std::io::stdin().lock()),
    }
    .with_context(|| {
        let input = args.input.as_deref().map(|p| p.display().to_string());
        format!("loading {}", input.unwrap_or_else(|| "standard input".into()))
    })?;
    for name in names {
        crate::outln!("Loaded image: {name}")?;
    }
    Ok(())
}
