//! `kiln import`: a root filesystem tarball becomes a one-layer image, as with
//! `docker import`. The tar is copied entry by entry, headers and PAX records
//! kept, only the paths made plain (`./bin/sh` and `/bin/sh` → `bin/sh`).

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::{Arch, ConfigBuilder, Descriptor, HistoryBuilder, ImageConfigurationBuilder, Os, RootFsBuilder};

use super::{decompressed, write_image, ImageIoError};
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
    let mut writer = LayerWriter::new(store)?;
    let mut archive = tar::Archive::new(decompressed(rootfs, "the rootfs tarball")?);
    for entry in archive.entries().map_err(read_err)? {
        copy_entry(writer.tar(), &mut entry.map_err(read_err)?)?;
    }
    let layer = writer.finish()?;
    let descriptor = write_image(store, &image_config(&layer, created_by), &[layer])?;
    store.tag(&name, &descriptor)?;
    Ok(descriptor)
}

fn read_err(source: std::io::Error) -> ImageIoError {
    ImageIoError::Read { what: "the rootfs tarball".to_owned(), source }
}

/// Append `entry` to `tar` under its plain path; the root entry is dropped.
fn copy_entry<W: Write>(tar: &mut tar::Builder<W>, entry: &mut tar::Entry<impl Read>) -> Result<(), ImageIoError> {
    let raw = entry.path().map_err(read_err)?.into_owned();
    let shown = raw.display().to_string();
    let unsafe_entry = |why| ImageIoError::UnsafeEntry { entry: shown.clone(), why };
    let kind = entry.header().entry_type();
    match kind {
        tar::EntryType::XGlobalHeader => return Ok(()),
        tar::EntryType::GNUSparse => return Err(unsafe_entry("is a sparse file, which kiln cannot import")),
        _ => {}
    }
    let Some(path) = plain_path(&raw).map_err(unsafe_entry)? else {
        return Ok(());
    };
    let mut header = entry.header().clone();
    // Keep the PAX records (xattrs, large ids and sizes, precise times) except
    // the path and link target, which are written again below.
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(records) = entry.pax_extensions().map_err(read_err)? {
        for record in records {
            let record = record.map_err(read_err)?;
            match record.key() {
                Ok("path" | "linkpath") | Err(_) => {}
                Ok(key) => pax.push((key.to_owned(), record.value_bytes().to_vec())),
            }
        }
    }
    let copy_err = |source| ImageIoError::Copy { entry: shown.clone(), source };
    tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice()))).map_err(copy_err)?;
    match kind {
        tar::EntryType::Link | tar::EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(read_err)?
                .ok_or_else(|| unsafe_entry("is a link without a target"))?
                .into_owned();
            // A hard link names another entry, so its target is made plain too;
            // a symlink's target is the link's own business.
            let target = if kind == tar::EntryType::Link {
                plain_path(&target).map_err(unsafe_entry)?.ok_or_else(|| unsafe_entry("is a hard link to the root"))?
            } else {
                target
            };
            tar.append_link(&mut header, &path, &target)
        }
        _ => {
            if kind.is_file() || kind == tar::EntryType::Continuous {
                header.set_size(entry.size());
            }
            tar.append_data(&mut header, &path, entry)
        }
    }
    .map_err(copy_err)
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

/// The config of an imported image: platform, the one layer, one history entry.
fn image_config(layer: &Layer, created_by: &str) -> Vec<u8> {
    let created = crate::image::now_rfc3339();
    let history = HistoryBuilder::default()
        .created(created.clone())
        .created_by(created_by)
        .build()
        .expect("a history entry with every required field");
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(vec![layer.diff_id.to_string()])
        .build()
        .expect("a rootfs with every required field");
    let config = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::from(crate::image::host_architecture()))
        .os(Os::Linux)
        .config(ConfigBuilder::default().build().expect("an empty config is valid"))
        .rootfs(rootfs)
        .history(vec![history])
        .build()
        .expect("an image config with every required field");
    serde_json::to_vec(&config).expect("an image config serialises")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{gzip, verify_image};
    use super::*;
    use kiln_solver::Digest;

    /// A tar whose names are written exactly as given (tar::Builder would drop `./`).
    fn raw_tar(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn layer_entries(store: &Store, name: &str) -> Vec<(String, String)> {
        let (manifest, _) = store.image_parts(&store.get(name).unwrap()).unwrap();
        assert_eq!(manifest.layers().len(), 1);
        let digest: Digest = manifest.layers()[0].digest().to_string().parse().unwrap();
        let blob = std::fs::File::open(store.blob_path(&digest)).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
        tar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                (e.path().unwrap().display().to_string(), link.unwrap_or_default())
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
            assert_eq!(*config.os(), Os::Linux);
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
            let got: Vec<(&str, &str)> = entries.iter().map(|(p, l)| (p.as_str(), l.as_str())).collect();
            assert_eq!(got, want);
        }
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
