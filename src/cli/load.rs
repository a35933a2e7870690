//! `kiln load` and `kiln import`: base images without a registry.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::store::Store;

pub fn load(store: &Store, input: Option<PathBuf>) -> anyhow::Result<()> {
    let names = match &input {
        Some(path) => {
            let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            crate::image_io::load_archive(store, BufReader::new(f))
        }
        None => crate::image_io::load_archive(store, std::io::stdin().lock()),
    }
    .with_context(|| {
        format!(
            "loading {}",
            input.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "standard input".into())
        )
    })?;
    for name in names {
        println!("Loaded image: {name}");
    }
    Ok(())
}

pub fn import(store: &Store, file: &Path, name: &str) -> anyhow::Result<()> {
    let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let created_by = format!("kiln import {}", file.file_name().unwrap_or_default().to_string_lossy());
    let desc = crate::image_io::import_rootfs(store, BufReader::new(f), name, &created_by)
        .with_context(|| format!("importing {}", file.display()))?;
    println!("{}", desc.digest());
    Ok(())
}
