//! ADD of a local archive: a tar, plain or compressed with gzip, bzip2, xz or
//! zstd (told by its first bytes, never by its name, as BuildKit does), is
//! extracted into the destination instead of copied.
//!
//! Its entries go into the layer, never onto a disk, so the archive cannot
//! write outside the image; and like docker's untar, it cannot reach outside
//! the destination either: a name or hard link that climbs out of it is
//! refused. A `.wh.` name is a whiteout to whoever reads the layer, not the
//! file docker's untar makes of it, so it is refused too rather than
//! deleting files of the image.

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use super::dest::{Kind, Tree};
use super::{append_entry, CopyError};
use crate::layer::LayerTar;

/// Whether `path` is a regular file (after symlinks) that reads as a tar
/// archive, compressed or not: one whose first header reads.
pub(super) fn is_archive(path: &Path) -> bool {
    if !fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(file) = fs::File::open(path) else { return false };
    let Ok(reader) = decompress(file) else { return false };
    let mut archive = tar::Archive::new(reader);
    archive.entries().is_ok_and(|mut e| matches!(e.next(), Some(Ok(_))))
}

/// `reader`, decompressed by what its first bytes say it is.
fn decompress<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(b"BZh") {
        Box::new(bzip2::read::MultiBzDecoder::new(reader))
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(lzma_rust2::XzReader::new(reader, true))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
    } else {
        Box::new(reader)
    })
}

/// Extract the archive read from `reader` (the file `host`, the source
/// `name` as the Dockerfile names it) into `dest`, a
/// folder of the layer. Entries keep their modes, times and owners (owned by
/// `owner` instead with --chown); missing parents are made 0755, root's.
/// The archive is read to its end, so that all its bytes are hashed.
pub(super) fn extract(
    reader: impl Read,
    (host, name): (&Path, &Path),
    dest: &Path,
    owner: Option<(u32, u32)>,
    tar: &mut LayerTar,
    tree: &mut Tree<'_>,
) -> Result<(), CopyError> {
    let read_err = |e: io::Error| CopyError::Read(host.to_owned(), e);
    let bad = |entry: &Path, why: &'static str| CopyError::BadArchive {
        archive: name.to_owned(),
        entry: entry.to_owned(),
        why,
    };
    let mut reader = reader;
    let mut archive = tar::Archive::new(decompress(&mut reader).map_err(read_err)?);
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let kind = entry.header().entry_type();
        let Some(rel) = inside(&raw) else { return Err(bad(&raw, "its name climbs out of the destination")) };
        if rel.file_name().is_some_and(|n| n.as_bytes().starts_with(b".wh.")) {
            return Err(bad(&raw, "a .wh. name would be a whiteout in the layer, deleting files of the image"));
        }
        if rel.as_os_str().is_empty() {
            // The archive's root is the destination, which exists already:
            // docker's untar leaves it as it is.
            continue;
        }
        let path = dest.join(&rel);
        let link = match kind {
            tar::EntryType::Link => {
                let target = entry.link_name().map_err(read_err)?.unwrap_or_default();
                let Some(target) = inside(&target) else {
                    return Err(bad(&raw, "its hard link target is outside the archive"));
                };
                Some(dest.join(target))
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name().map_err(read_err)?.unwrap_or_default().into_owned();
                // As docker's untar: a relative target must stay inside the destination.
                if target.is_relative() && inside(&rel.parent().unwrap_or(Path::new("")).join(&target)).is_none() {
                    return Err(bad(&raw, "its symlink target climbs out of the destination"));
                }
                Some(target)
            }
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::Directory
            | tar::EntryType::Char
            | tar::EntryType::Block
            | tar::EntryType::Fifo => None,
            // Global headers and the like: nothing to extract.
            _ => continue,
        };
        if let Some(parent) = path.parent() {
            tree.mkdir_all(tar, parent, (0, 0))?;
        }
        if tree.kind(&path) == Some(Kind::Dir) && kind != tar::EntryType::Directory {
            return Err(bad(&raw, "it would replace a folder"));
        }
        let mut h = entry.header().clone();
        if kind == tar::EntryType::Continuous {
            h.set_entry_type(tar::EntryType::Regular);
        }
        if let Some((uid, gid)) = owner {
            h.set_uid(uid.into());
            h.set_gid(gid.into());
        }
        if link.is_some() {
            h.set_size(0);
        }
        let link = link.as_deref();
        append_entry(tar, &mut h, &path, link, &[], &mut entry, host)?;
        tree.made(&path, if kind == tar::EntryType::Directory { Kind::Dir } else { Kind::Other });
    }
    // What follows the archive's end (padding, trailing blocks) is part of the file's checksum.
    drop(archive);
    io::copy(&mut reader, &mut io::sink()).map_err(read_err)?;
    Ok(())
}

/// `name` as a path below the destination, or `None` when it climbs out.
fn inside(name: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}
