//! `kiln import`: a root filesystem tarball becomes a one-layer image, as with
//! `docker import`. The tar is copied entry by entry, headers and PAX records
//! kept, only the paths made plain (`./bin/sh` and `/bin/sh` → `bin/sh`):
//! its hard links stay links (to the plain path of their target) and its
//! xattrs stay, but for overlayfs's own, by the rules of [`entry`].

use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use kiln_frontend::{History, ImageConfig};
use oci_spec::image::Descriptor;

use super::{check_layer, decompressed, ingest_dir, layer_err, write_image, ImageIoError};
use crate::fsutil::CopyFailure;
use crate::layer::entry;
use crate::layer::{Layer, LayerWriter};
use crate::store::{reference, Store};

/// Import the rootfs tarball `rootfs` (plain or gzip) as a one-layer image
/// named `name`, its one history entry saying `created_by`. The config sets no
/// Env, Cmd or anything else, like `docker import`. Returns the manifest's
/// descriptor.
pub fn import_rootfs(
    store: &Store,
    rootfs: impl Read,
    name: &str,
    created_by: &str,
) -> Result<Descriptor, ImageIoError> {
    let name = reference::normalize(name)?;
    let mut writer = LayerWriter::with_snapshot(store)?;
    // Bounded: a hostile tarball's long name record would be read whole.
    let mut archive =
        tar::Archive::new(crate::layer::bounded::Bounded::new(decompressed(rootfs, "the rootfs tarball")?));
    let mut copied = 0;
    let ingest = ingest_dir(store);
    for entry in archive.entries().map_err(read_err)? {
        copied += usize::from(copy_entry(writer.tar(), &mut entry.map_err(read_err)?, &ingest)?);
    }
    // An empty file (`/dev/null`, a failed download) reads as a tar of no
    // entries; an image of nothing is never what was meant.
    if copied == 0 {
        return Err(ImageIoError::EmptyRootfs);
    }
    let layer = writer.finish().map_err(layer_err(store))?;
    check_layer(store, &layer, "of the rootfs tarball")?;
    let descriptor = write_image(store, &image_config(&layer, created_by)?, &[layer])?;
    store.tag(&name, &descriptor)?;
    Ok(descriptor)
}

fn read_err(source: std::io::Error) -> ImageIoError {
    ImageIoError::Read { what: "the rootfs tarball".to_owned(), source }
}

/// Append `entry` to `tar` under its plain path; the root entry is dropped.
/// Returns whether the entry was copied.
fn copy_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    entry: &mut tar::Entry<impl Read>,
    ingest: &Path,
) -> Result<bool, ImageIoError> {
    let raw = entry.path().map_err(read_err)?.into_owned();
    let shown = raw.display().to_string();
    let unsafe_entry = |why| ImageIoError::UnsafeEntry { entry: shown.clone(), why };
    let kind = entry.header().entry_type();
    match kind {
        tar::EntryType::XGlobalHeader => return Ok(false),
        tar::EntryType::GNUSparse => return Err(unsafe_entry("is a sparse file, which kiln cannot import")),
        _ => {}
    }
    let Some(path) = plain_path(&raw).map_err(unsafe_entry)? else {
        return Ok(false);
    };
    let mut header = entry.header().clone();
    // Keep the PAX records (xattrs, large ids and sizes, precise times): the
    // entry writer leaves out those it writes itself (path, link target) and
    // those no layer holds (overlayfs's xattrs), as for COPY and RUN layers.
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(records) = entry.pax_extensions().map_err(read_err)? {
        for record in records {
            let record = record.map_err(read_err)?;
            if let Ok(key) = record.key() {
                pax.push((key.to_owned(), record.value_bytes().to_vec()));
            }
        }
    }
    let copy_err = |source| ImageIoError::Copy { entry: shown.clone(), ingest: ingest.to_owned(), source };
    let link = match kind {
        tar::EntryType::Link | tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(read_err)?
                .ok_or_else(|| unsafe_entry("is a link without a target"))?
                .into_owned();
            // A hard link names another entry, so its target is made plain too;
            // a symlink's target is the link's own business.
            Some(if kind == tar::EntryType::Link {
                plain_path(&target).map_err(unsafe_entry)?.ok_or_else(|| unsafe_entry("is a hard link to the root"))?
            } else {
                target
            })
        }
        _ => None,
    };
    if kind.is_file() || kind == tar::EntryType::Continuous {
        header.set_size(entry.size());
    } else if link.is_some() {
        header.set_size(0);
    }
    let link = link.as_ref().map(|l| l.as_os_str().as_bytes());
    // An import keeps the archive's times: it is not a build.
    entry::append(tar, &mut header, path.as_os_str().as_bytes(), link, &pax, entry, None).map_err(|e| match e {
        CopyFailure::Read(e) => read_err(e),
        CopyFailure::Write(e) => copy_err(e),
    })?;
    Ok(true)
}

/// `path` without leading `/` or `./` (or `.` anywhere); `None` for the root.
fn plain_path(path: &Path) -> Result<Option<PathBuf>, &'static str> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err("climbs out of the root with `..`"),
            Component::Prefix(_) => return Err("is not a Unix path"),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// The config of an imported image: platform, the one layer, one history
/// entry, nothing else set (like `docker import`).
fn image_config(layer: &Layer, created_by: &str) -> Result<Vec<u8>, ImageIoError> {
    let created = crate::image::now_rfc3339();
    let history = History { created: Some(created.clone()), created_by: created_by.to_owned(), ..History::default() };
    let meta = ImageConfig { history: vec![history], ..ImageConfig::default() };
    let config = crate::image::config(std::slice::from_ref(layer), Some(&created), meta)?;
    Ok(serde_json::to_vec(&config).expect("an image config serialises"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{gzip, raw_tar, verify_image};
    use super::*;
    use std::fs;

    /// Each entry of the image's one layer: path, link target, PAX keys.
    fn layer_entries(store: &Store, name: &str) -> Vec<(String, String, Vec<String>)> {
        let (manifest, _) = store.image_parts(&store.get(name).unwrap()).unwrap();
        assert_eq!(manifest.layers().len(), 1);
        let digest = crate::digest::from_oci(manifest.layers()[0].digest()).unwrap();
        let blob = std::fs::File::open(store.blob_path(&digest)).unwrap();
        let mut tar = tar::Archive::new(blob);
        tar.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                let keys = e.pax_extensions().unwrap().into_iter().flatten();
                let keys = keys.map(|r| r.unwrap().key().unwrap().to_owned()).collect();
                (e.path().unwrap().display().to_string(), link.unwrap_or_default(), keys)
            })
            .collect()
    }

    #[test]
    fn imports_a_rootfs_tarball_as_one_layer() {
        use tar::EntryType::{Directory, Link, Regular, Symlink};
        let rootfs = raw_tar(&[
            ("./", Directory, "", b""),
            ("./bin/", Directory, "", b""),
            ("./bin/busybox", Regular, "", b"\x7fELF not really"),
            ("./bin/sh", Symlink, "busybox", b""),
            ("./bin/ls", Link, "./bin/busybox", b""),
            ("/etc/passwd", Regular, "", b"root:x:0:0:root:/root:/bin/sh\n"),
        ]);
        for (input, name) in [(rootfs.clone(), "busybox"), (gzip(&rootfs), "busybox:gz")] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let desc = import_rootfs(&store, &input[..], name, "kiln import busybox.tar").unwrap();
            assert_eq!(store.get(name).unwrap().descriptor.digest(), desc.digest());
            let config = verify_image(&store, name);
            assert_eq!(config.architecture().to_string(), crate::image::host_architecture());
            assert_eq!(*config.os(), oci_spec::image::Os::Linux);
            assert_eq!(config.config().as_ref().unwrap().env(), &None);
            assert_eq!(config.history().len(), 1);
            assert_eq!(config.history()[0].created_by().as_deref(), Some("kiln import busybox.tar"));
            let entries = layer_entries(&store, name);
            let want = [
                ("bin", ""),
                ("bin/busybox", ""),
                ("bin/sh", "busybox"),
                ("bin/ls", "bin/busybox"),
                ("etc/passwd", ""),
            ];
            let got: Vec<(&str, &str)> = entries.iter().map(|(p, l, _)| (p.as_str(), l.as_str())).collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn keeps_hard_links_and_xattrs_but_overlayfs_own() {
        use tar::EntryType::{Link, Regular};
        let mut b = tar::Builder::new(Vec::new());
        let xattrs = [
            ("SCHILY.xattr.user.note", &b"kept"[..]),
            ("SCHILY.xattr.user.overlay.redirect", b"/elsewhere"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ];
        b.append_pax_extensions(xattrs).unwrap();
        let mut file = tar::Header::new_ustar();
        file.set_entry_type(Regular);
        file.set_mode(0o755);
        file.set_size(2);
        b.append_data(&mut file, "./tool", &b"hi"[..]).unwrap();
        let mut link = tar::Header::new_ustar();
        link.set_entry_type(Link);
        link.set_size(0);
        b.append_link(&mut link, "./alias", "./tool").unwrap();
        let rootfs = b.into_inner().unwrap();

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        import_rootfs(&store, &rootfs[..], "linked", "test").unwrap();
        let want = [
            ("tool".to_owned(), String::new(), vec!["SCHILY.xattr.user.note".to_owned()]),
            ("alias".to_owned(), "tool".to_owned(), vec![]),
        ];
        assert_eq!(layer_entries(&store, "linked"), want);
    }

    #[test]
    fn refuses_entries_that_climb_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rootfs = raw_tar(&[
            ("./ok", tar::EntryType::Regular, "", b"ok"),
            ("./../escape", tar::EntryType::Regular, "", b"x"),
        ]);
        let err = import_rootfs(&store, &rootfs[..], "bad", "test").unwrap_err();
        assert_eq!(err.to_string(), r#"rootfs entry "./../escape" climbs out of the root with `..`"#);
        assert!(store.images().unwrap().is_empty());
    }

    #[test]
    fn refuses_a_tarball_of_no_files() {
        use tar::EntryType::{Directory, XGlobalHeader};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (case, input) in [
            ("empty file", Vec::new()),
            ("empty gzip", gzip(b"")),
            ("end-of-archive blocks only", raw_tar(&[])),
            ("the root only", raw_tar(&[("./", Directory, "", b""), ("pax_global_header", XGlobalHeader, "", b"")])),
        ] {
            let err = import_rootfs(&store, &input[..], "empty", "test").unwrap_err();
            assert!(matches!(err, ImageIoError::EmptyRootfs), "{case}: {err:?}");
            assert!(err.to_string().contains("holds no files"), "{case}");
        }
        assert!(store.images().unwrap().is_empty());
    }

    #[test]
    fn refuses_a_layer_that_cannot_be_extracted() {
        // The entry is made plain (`etc/passwd`), but nothing in the layer is there.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rootfs = raw_tar(&[("./etc/copy", tar::EntryType::Link, "/etc/passwd", b"")]);
        let err = import_rootfs(&store, &rootfs[..], "bad", "test").unwrap_err();
        assert!(matches!(err, ImageIoError::Unusable { .. }), "{err:?}");
        assert!(store.images().unwrap().is_empty());
        assert_eq!(fs::read_dir(store.snapshots_dir()).unwrap().count(), 0, "a refused layer left a snapshot");
    }

    #[test]
    fn plain_paths() {
        for (input, want) in [
            ("./bin/sh", Ok(Some("bin/sh"))),
            ("/bin/sh", Ok(Some("bin/sh"))),
            ("bin/./sh/", Ok(Some("bin/sh"))),
            ("./", Ok(None)),
            (".", Ok(None)),
            ("a/../b", Err(())),
        ] {
            let got = plain_path(Path::new(input));
            let got = got.as_ref().map(|p| p.as_ref().map(|p| p.to_str().unwrap())).map_err(|_| ());
            assert_eq!(got, want, "{input:?}");
        }
    }
}
