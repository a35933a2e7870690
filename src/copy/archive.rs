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
use std::path::{Path, PathBuf};

use super::dest::{Kind, Tree};
use super::{append_entry, CopyError, Out};
use crate::layer::bounded::Bounded;

/// Whether `path` is a regular file (after symlinks) that reads as a tar
/// archive, compressed or not: one whose first header reads.
pub(super) fn is_archive(path: &Path) -> bool {
    if !fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(file) = fs::File::open(path) else { return false };
    let Ok(reader) = decompress(file) else { return false };
    // Bounded: reading even the first entry may read a long name record whole.
    let mut archive = tar::Archive::new(Bounded::new(reader));
    match archive.entries().map(|mut e| e.next()) {
        Ok(Some(Ok(_))) => true,
        // An xz asking for more memory than we allow is still an archive:
        // say so when extracting it rather than silently copying it whole.
        // So is one with a long name record over our bound.
        Ok(Some(Err(e))) => e.kind() == io::ErrorKind::OutOfMemory || crate::layer::bounded::refused(&e),
        _ => false,
    }
}

/// The most memory an xz archive may make its decoder take, in KiB. The
/// dictionary size is in the archive's header, so without a cap a few bytes
/// could ask for up to 4 GiB; xz's own presets use at most 64 MiB.
const XZ_MEM_LIMIT_KIB: u32 = 128 * 1024;

/// An xz decoder whose memory-limit error says what happened and what to do,
/// instead of lzma-rust2's terse one.
struct Xz<R: Read>(lzma_rust2::XzReader<R>);

impl<R: Read> Read for Xz<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::OutOfMemory {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "the xz archive needs more than {} MiB of memory to decompress (its dictionary is too \
                         large); recompress it with a smaller dictionary (xz -9 or less) or ADD a plain tar",
                        XZ_MEM_LIMIT_KIB / 1024
                    ),
                )
            } else {
                e
            }
        })
    }
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
        Box::new(Xz(lzma_rust2::XzReader::new_mem_limit(reader, true, XZ_MEM_LIMIT_KIB)))
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
    tar: &mut Out<'_>,
    tree: &mut Tree<'_>,
) -> Result<(), CopyError> {
    let read_err = |e: io::Error| CopyError::Read(host.to_owned(), e);
    let bad = |entry: &Path, why: &'static str| CopyError::BadArchive {
        archive: name.to_owned(),
        entry: entry.to_owned(),
        why,
    };
    let mut reader = reader;
    let mut archive = tar::Archive::new(Bounded::new(decompress(&mut reader).map_err(read_err)?));
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

/// `name` with `.`/`..` resolved, or `None` when it climbs above where it starts.
fn inside(name: &Path) -> Option<PathBuf> {
    let lexical = crate::fsutil::lexical(name);
    (lexical.climbs == 0).then(|| lexical.clamped())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small xz of `data` whose LZMA2 dictionary byte is then set to 40,
    /// the largest (4 GiB - 1), with its block header checksum made right again.
    fn xz_with_huge_dictionary(data: &[u8]) -> Vec<u8> {
        let mut w = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(0)).unwrap();
        io::Write::write_all(&mut w, data).unwrap();
        let mut xz = w.finish().unwrap();
        // The stream header is 12 bytes; the block header follows, its size
        // in its first byte.
        let size = (xz[12] as usize + 1) * 4;
        let header = &mut xz[12..12 + size];
        let lzma2 = header.windows(2).position(|w| w == [0x21, 0x01]).expect("an LZMA2 filter");
        header[lzma2 + 2] = 40;
        let mut crc = flate2::Crc::new();
        crc.update(&header[..size - 4]);
        header[size - 4..].copy_from_slice(&crc.sum().to_le_bytes());
        xz
    }

    #[test]
    fn an_xz_asking_for_a_huge_dictionary_is_refused() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_cksum();
        tar.append_data(&mut h, "f", &b"abc"[..]).unwrap();
        let xz = xz_with_huge_dictionary(&tar.into_inner().unwrap());
        let mut out = Vec::new();
        let err = decompress(&xz[..]).unwrap().read_to_end(&mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory);
        assert!(err.to_string().contains("recompress it"), "{err}");
        // Still an archive, so that ADD reports this instead of copying it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar.xz");
        fs::write(&path, &xz).unwrap();
        assert!(is_archive(&path));
    }
}
