//! `kiln load`: an archive is spooled, read as whichever format it is, and
//! its images named once every one of them is stored and checked.

use std::io::Read;

use super::spool::{LoadedImage, Spool};
use super::{check_layer, docker_save, oci_layout, ImageIoError};
use crate::store::Store;

/// Load a `docker save` or OCI image layout tarball (plain or gzip) into the
/// store and name its images; returns the names, normalised. When the archive
/// has both (docker 25 on writes both), `manifest.json` is used. Nothing is
/// named unless every image in the archive was stored and verified.
pub fn load_archive(store: &Store, archive: impl Read) -> Result<Vec<String>, ImageIoError> {
    let spool = Spool::from_archive(store, archive)?;
    let images = if spool.contains("manifest.json") {
        docker_save::load(store, &spool)?
    } else if spool.contains("index.json") {
        oci_layout::load(store, &spool)?
    } else {
        return Err(ImageIoError::NotAnArchive);
    };
    // Every blob is in the store; every layer must also extract, or the image
    // would be named and fail at first use.
    for image in &images {
        for (name, layer) in &image.layers {
            check_layer(store, layer, name)?;
        }
    }
    // Only now point names at them.
    let mut tagged: Vec<String> = Vec::new();
    for LoadedImage { names, descriptor, .. } in images {
        for name in names {
            store.tag(&name, &descriptor)?;
            if !tagged.contains(&name) {
                tagged.push(name);
            }
        }
    }
    Ok(tagged)
}
