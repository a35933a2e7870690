//! `kiln save`: images to a `docker save` or OCI layout archive.

use std::io::IsTerminal;

use anyhow::Context;
use kiln::image_io::{Format, Named};
use kiln::store::reference::Reference;
use kiln::store::Store;

use crate::cli::load::{SaveArgs, SaveFormat};
use crate::cli::output::StdoutClosed;

pub fn save(store: &Store, args: SaveArgs) -> anyhow::Result<()> {
    let format = match args.format {
        SaveFormat::Docker => Format::Docker,
        SaveFormat::Oci => Format::Oci(args.compression.into()),
    };
    let images = resolve(store, &args.images)?;
    match &args.output {
        Some(path) => kiln::image_io::save_to_file(store, &images, format, path)
            .with_context(|| format!("saving to {}", path.display())),
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!("refusing to write an archive to a terminal: name a file with -o, or redirect");
            }
            match kiln::image_io::write_archive(store, &images, format, stdout.lock()) {
                Err(kiln::image_io::ImageIoError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    Err(StdoutClosed.into())
                }
                other => other.map(drop).context("saving to standard output"),
            }
        }
    }
}

/// The images `names` name, in order, each once: a name saves the image
/// under that name (several names of one image, under each); an ID saves it
/// without one, as docker does.
fn resolve(store: &Store, names: &[String]) -> anyhow::Result<Vec<Named>> {
    let mut images: Vec<Named> = Vec::new();
    for name in names {
        let image = store.get(name)?;
        let by_name = Reference::parse(name).ok().map(|r| r.tagged_name());
        let saved_as = image.name.clone().filter(|n| by_name.as_ref() == Some(n));
        match images.iter_mut().find(|i| i.manifest.digest() == image.descriptor.digest()) {
            Some(known) => known.names.extend(saved_as.filter(|n| !known.names.contains(n))),
            None => {
                let mut manifest = image.descriptor.clone();
                manifest.set_annotations(None);
                images.push(Named { manifest, names: saved_as.into_iter().collect() })
            }
        }
    }
    Ok(images)
}
