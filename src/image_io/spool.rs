//! An archive's files, spooled: it is read once, as a stream (it may come from
//! a pipe), and its files are spooled to a scratch folder, because which file
//! is which is only known from `manifest.json` or `index.json`, which may come
//! last. The formats ([`super::docker_save`], [`super::oci_layout`]) read
//! their files from here.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::Descriptor;
use tempfile::TempDir;

use super::{copy, decompressed, ImageIoError};
use crate::layer::Layer;
use crate::store::{io_err, Store};

/// An image found in an archive and stored.
pub(super) struct LoadedImage {
    /// Its names, normalised.
    pub names: Vec<String>,
    /// Its manifest.
    pub descriptor: Descriptor,
    /// Its layers, each with where it was in the archive (for errors).
    pub layers: Vec<(String, Layer)>,
}

/// The files of an archive, spooled to disk and looked up by their path inside it.
pub(super) struct Spool {
    /// Removed, with everything in it, on drop.
    dir: TempDir,
    /// Archive path → spooled file. Files are numbered, not named by their
    /// archive path, so no entry name can point outside the scratch folder.
    files: HashMap<String, PathBuf>,
    /// Archive path → archive path, for symlinks and hard links (`docker
    /// save` before docker 25 links a layer that two images share).
    links: HashMap<String, String>,
}

impl Spool {
    pub(super) fn from_archive(store: &Store, archive: impl Read) -> Result<Self, ImageIoError> {
        let work = store.work_dir();
        let dir = tempfile::Builder::new()
            .prefix(&crate::store::temp_prefix("load"))
            .tempdir_in(&work)
            .map_err(io_err("creating a temp folder in", &work))?;
        let mut spool = Spool { dir, files: HashMap::new(), links: HashMap::new() };
        let read_err = |source| ImageIoError::Read { what: "the archive".to_owned(), source };
        // Bounded: a hostile archive's long name record would be read whole.
        let mut tar = tar::Archive::new(crate::layer::bounded::Bounded::new(decompressed(archive, "the archive")?));
        for entry in tar.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            let Some(path) = normalize(&entry.path().map_err(read_err)?) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let file = spool.dir.path().join(spool.files.len().to_string());
                    let mut out = File::create(&file).map_err(io_err("creating", &file))?;
                    copy(&mut entry, "the archive", &mut out, |e| io_err("writing", &file)(e).into())?;
                    spool.files.insert(path, file);
                }
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    let Some(target) = entry.link_name().map_err(read_err)? else {
                        continue;
                    };
                    // A symlink is relative to its folder, a hard link to the archive root.
                    let target = if kind == tar::EntryType::Symlink {
                        Path::new(&path).parent().unwrap_or(Path::new("")).join(target)
                    } else {
                        target.into_owned()
                    };
                    if let Some(target) = normalize(&target) {
                        spool.links.insert(path, target);
                    }
                }
                _ => {}
            }
        }
        Ok(spool)
    }

    /// The spooled file at `path` in the archive, following links.
    pub(super) fn find(&self, path: &str) -> Option<&Path> {
        let mut path = normalize(Path::new(path))?;
        for _ in 0..16 {
            if let Some(file) = self.files.get(&path) {
                return Some(file);
            }
            path = self.links.get(&path)?.clone();
        }
        None
    }

    /// Whether the archive holds a file at `path`.
    pub(super) fn contains(&self, path: &str) -> bool {
        self.find(path).is_some()
    }

    /// Open the file at `path`; `what` and `listed_in` say who asked for it when it is missing.
    pub(super) fn open(&self, path: &str, what: &'static str, listed_in: &str) -> Result<File, ImageIoError> {
        let missing = || ImageIoError::Missing { what, path: path.to_owned(), listed_in: listed_in.to_owned() };
        let file = self.find(path).ok_or_else(missing)?;
        Ok(File::open(file).map_err(io_err("opening", file))?)
    }

    /// Read the file at `path` whole (for small JSON documents).
    pub(super) fn read(&self, path: &str, what: &'static str, listed_in: &str) -> Result<Vec<u8>, ImageIoError> {
        let missing = || ImageIoError::Missing { what, path: path.to_owned(), listed_in: listed_in.to_owned() };
        let file = self.find(path).ok_or_else(missing)?;
        Ok(fs::read(file).map_err(io_err("reading", file))?)
    }
}

/// `path` as a plain relative path (`./a//b/` → `a/b`, `.`/`..` resolved
/// lexically); `None` for the root, for paths that climb out of it, and for
/// names that are not UTF-8 (no archive kiln reads has them).
fn normalize(path: &Path) -> Option<String> {
    let path = crate::fsutil::lexical(path);
    if path.climbs > 0 || path.names.is_empty() {
        return None;
    }
    path.names.iter().map(|n| n.to_str()).collect::<Option<Vec<_>>>().map(|n| n.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalize() {
        for (input, want) in [
            ("manifest.json", Some("manifest.json")),
            ("./blobs/sha256/ab", Some("blobs/sha256/ab")),
            ("/a//b/", Some("a/b")),
            ("a/../b", Some("b")),
            ("./", None),
            (".", None),
            ("../x", None),
        ] {
            assert_eq!(normalize(Path::new(input)).as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn links_are_followed_and_the_folder_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "a/layer.tar", &b"hi"[..]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "b/layer.tar", "../a/layer.tar").unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "c/layer.tar", "b/layer.tar").unwrap();
        let archive = b.into_inner().unwrap();

        let spool = Spool::from_archive(&store, &archive[..]).unwrap();
        for path in ["a/layer.tar", "./b/layer.tar", "c/layer.tar"] {
            assert_eq!(spool.read(path, "layer", "test").unwrap(), b"hi", "{path}");
        }
        assert!(matches!(spool.read("d/layer.tar", "layer", "manifest.json"), Err(ImageIoError::Missing { .. })));
        drop(spool);
        assert_eq!(fs::read_dir(store.work_dir()).unwrap().count(), 0);
    }
}
