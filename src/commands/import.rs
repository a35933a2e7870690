//! `kiln import`: a root filesystem tarball as a one-layer image.

use std::fs::File;
use std::io::BufReader;

use anyhow::Context;
use kiln::store::{Store, StoredImage};

use crate::cli::load::ImportArgs;

pub fn import(store: &Store, args: ImportArgs) -> anyhow::Result<()> {
    let f = File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let created_by = format!("kiln import {}", args.file.file_name().unwrap_or_default().to_string_lossy());
    let desc = kiln::image_io::import_rootfs(store, BufReader::new(f), &args.name, &created_by)
        .with_context(|| format!("importing {}", args.file.display()))?;
    // The image ID, as `kiln build` prints and `kiln images` shows it.
    let id = store.image_id(&StoredImage { name: None, descriptor: desc })?;
    crate::outln!("{id}")
}
