//! An image's final filesystem: its layers applied in order into one folder
//! ([`Stack::Flatten`]: whiteouts delete what they hide), under the rules
//! `layer::extract` holds every layer to, so nothing an image holds can write
//! outside that folder. Given as files (`-o type=local,dest=DIR`) or as one
//! tar (`-o type=tar,dest=FILE`).

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use oci_spec::image::Descriptor;

use super::archive::AtomicFile;
use super::ImageIoError;
use crate::layer::extract::{apply_blob_as, Stack};
use crate::layer::Layer;
use crate::store::Store;

/// Apply `layers` (bottom first) into the folder `dir`.
fn flatten(store: &Store, layers: &[Layer], dir: &Path) -> Result<(), ImageIoError> {
    for layer in layers {
        apply_blob_as(&store.blob_path(&layer.digest), dir, layer.digest.as_str(), Stack::Flatten)?;
    }
    Ok(())
}

fn layers_of(store: &Store, manifest: &Descriptor) -> Result<Vec<Layer>, ImageIoError> {
    let digest = crate::content::descriptor_digest(manifest)?;
    Ok(crate::image::read(store, &digest)?.1)
}

/// Check that `dest` can take a local export: it does not exist, or is an
/// empty folder. A folder with something in it is refused rather than mixed
/// with the image's files or replaced (`dest=.` would lose the user's files).
pub fn check_local_dest(dest: &Path) -> Result<(), ImageIoError> {
    match fs::read_dir(dest).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(ImageIoError::NotEmpty(dest.to_owned())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ImageIoError::Dest { path: dest.to_owned(), source }),
    }
}

/// Write the filesystem of the image `manifest` names as files into `dest`
/// (see [`check_local_dest`]). It is made in a hidden folder beside `dest`
/// and renamed into place at the end: a failed export leaves nothing.
pub fn export_local(store: &Store, manifest: &Descriptor, dest: &Path) -> Result<(), ImageIoError> {
    check_local_dest(dest)?;
    let layers = layers_of(store, manifest)?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dest_err = |source| ImageIoError::Dest { path: dest.to_owned(), source };
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.{}", crate::store::temp_prefix("kiln")))
        .tempdir_in(parent)
        .map_err(dest_err)?;
    // What a new folder gets, unless the image's root entry says otherwise.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).map_err(dest_err)?;
    flatten(store, &layers, tmp.path())?;
    // rename(2) replaces an empty folder, and fails on one that is not.
    fs::rename(tmp.path(), dest).map_err(|e| match e.kind() {
        ErrorKind::DirectoryNotEmpty | ErrorKind::AlreadyExists => ImageIoError::NotEmpty(dest.to_owned()),
        _ => dest_err(e),
    })?;
    let _ = tmp.keep();
    Ok(())
}

/// Write the filesystem of the image `manifest` names as one tar at `dest`,
/// atomically. The layers are flattened in a scratch folder of the store,
/// then written out by the layer entry writer (sorted, exact sizes, xattrs,
/// hard links as links).
pub fn export_tar(store: &Store, manifest: &Descriptor, dest: &Path) -> Result<(), ImageIoError> {
    let layers = layers_of(store, manifest)?;
    let file = AtomicFile::create(dest)?;
    let work = store.work_dir();
    let scratch = tempfile::Builder::new()
        .prefix(&crate::store::temp_prefix("flat"))
        .tempdir_in(&work)
        .map_err(crate::store::io_err("creating a temp folder in", &work))?;
    flatten(store, &layers, scratch.path())?;
    let mut tar = tar::Builder::new(file);
    // A flattened folder has no whiteouts: write_upper writes it as it is.
    crate::layer::diff::write_upper(scratch.path(), &mut tar, None)?;
    tar.into_inner().map_err(ImageIoError::Write)?.commit()
}
