//! An overlayfs upper folder → the entries of an OCI layer.
//!
//! After a RUN step the overlay's upper folder holds exactly what the step
//! changed: new and modified files as themselves, deletions as 0:0 character
//! devices (whiteouts), and folders whose old content was hidden wholesale
//! (`rm -rf d && mkdir d`) with the opaque xattr. [`write_upper`] turns that
//! into tar entries in the OCI form: `.wh.name` files and `.wh..wh..opq`
//! markers.
//!
//! Entries come in a fixed order (sorted by name, depth first) with full
//! headers and no user or group names, so the same upper folder always gives
//! the same tar bytes, written by [`entry::append`](super::entry::append) (long names and xattrs in
//! PAX records).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::fsutil::CopyFailure;
use walkdir::WalkDir;

use super::entry::{read_xattrs, HardLinks, Writer};
use super::extract::{io_err, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use super::overlay::is_opaque;
use super::LayerError;

/// Append the changeset in the overlay upper folder `upper` to `out` (usually a
/// [`LayerTar`](super::LayerTar) from [`LayerWriter::tar`](super::LayerWriter::tar)),
/// with paths relative to `upper`. Symlinks are written as symlinks, never
/// followed; sockets are skipped (tar cannot hold them); file contents are
/// streamed. Times later than `epoch` (`SOURCE_DATE_EPOCH`) are written as
/// `epoch`: a step's files carry the time it ran.
pub fn write_upper<W: Write>(upper: &Path, out: &mut tar::Builder<W>, epoch: Option<u64>) -> Result<(), LayerError> {
    write_upper_of(upper, None, &mut Writer::new(out, epoch))
}

/// fuse-overlayfs's markers of an opaque folder in its upper folder: a
/// `.wh..wh..opq` file and a `.wh..opq` whiteout, beside the xattr.
const FUSE_OPAQUE_MARKERS: [&str; 2] = [WHITEOUT_OPAQUE, ".wh..opq"];

/// [`write_upper`] of a fuse-overlayfs upper folder, whose lower folders
/// (`lowers`) tell which of its opaque markers mean anything: it marks every
/// folder it creates opaque, where the kernel marks only those that hide
/// something — and the layers must be the same.
pub fn write_fuse_upper<W: Write>(
    upper: &Path,
    lowers: &[PathBuf],
    out: &mut tar::Builder<W>,
    epoch: Option<u64>,
) -> Result<(), LayerError> {
    write_upper_of(upper, Some(lowers), &mut Writer::new(out, epoch))
}

fn write_upper_of<W: Write>(
    upper: &Path,
    fuse_lowers: Option<&[PathBuf]>,
    out: &mut Writer<'_, W>,
) -> Result<(), LayerError> {
    let mut links = HardLinks::default();
    let walk = WalkDir::new(upper).follow_links(false).sort_by_file_name().min_depth(1);
    for item in walk {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(upper).to_owned();
            io_err("walking", &path)(e.into())
        })?;
        let path = item.path();
        let meta = item.metadata().map_err(|e| io_err("inspecting", path)(e.into()))?;
        let rel = path.strip_prefix(upper).expect("walkdir yields paths below its root").as_os_str().as_bytes();

        let mut opaque = meta.is_dir() && is_opaque(path);
        if let Some(lowers) = fuse_lowers {
            if FUSE_OPAQUE_MARKERS.iter().any(|m| item.file_name() == *m) {
                continue;
            }
            if meta.is_dir() {
                opaque |= FUSE_OPAQUE_MARKERS.iter().any(|m| path.join(m).symlink_metadata().is_ok());
                let rel = Path::new(std::ffi::OsStr::from_bytes(rel));
                opaque &= lowers.iter().any(|l| l.join(rel).symlink_metadata().is_ok());
            }
        }
        // Whiteouts first: overlayfs may hardlink all its whiteouts to one
        // inode, which must not turn them into link entries.
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            append_whiteout(out, rel, (meta.uid(), meta.gid()), meta.mtime(), path)?;
            continue;
        }
        // In a layer the name would mean a deletion, not this file: every
        // other tool would hide a file the step never deleted.
        if item.file_name().as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Err(LayerError::WhiteoutName { entry: format!("/{}", String::from_utf8_lossy(rel)) });
        }
        append_entry(out, &mut links, path, rel, &meta, opaque)?;
    }
    Ok(())
}

/// Append the whiteout `.wh.<name>` of `rel`, owned by `(uid, gid)`, with
/// the mtime `mtime`; `path` names it in errors.
pub(crate) fn append_whiteout<W: Write>(
    out: &mut Writer<'_, W>,
    rel: &[u8],
    (uid, gid): (u32, u32),
    mtime: i64,
    path: &Path,
) -> Result<(), LayerError> {
    let mut header = Header::new_gnu();
    header.set_uid(uid.into());
    header.set_gid(gid.into());
    header.set_mtime(mtime.max(0) as u64);
    header.set_size(0);
    header.set_entry_type(EntryType::Regular);
    header.set_mode(0);
    let name = sibling(rel, WHITEOUT_PREFIX.as_bytes());
    append_read(out, &mut header, &name, None, &[], io::empty(), path)
}

fn header_of(meta: &std::fs::Metadata) -> Header {
    let mut header = Header::new_gnu();
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(meta.uid().into());
    header.set_gid(meta.gid().into());
    header.set_mtime(meta.mtime().max(0) as u64);
    header.set_size(0);
    header
}

/// Append the file, folder, link or node at `path` (`meta` its
/// `symlink_metadata`) as the entry `rel`; a folder `opaque` gets the
/// `.wh..wh..opq` marker after it. A later name of an inode `links` has seen
/// becomes a hard link.
pub(crate) fn append_entry<W: Write>(
    out: &mut Writer<'_, W>,
    links: &mut HardLinks<Vec<u8>>,
    path: &Path,
    rel: &[u8],
    meta: &std::fs::Metadata,
    opaque: bool,
) -> Result<(), LayerError> {
    let kind = meta.file_type();
    let mut header = header_of(meta);
    let xattrs = read_xattrs(path)?;

    if kind.is_dir() {
        header.set_entry_type(EntryType::Directory);
        let mut name = rel.to_vec();
        name.push(b'/');
        append_read(out, &mut header, &name, None, &xattrs, io::empty(), path)?;
        if opaque {
            // Docker's form: a regular file with the folder's owner, mtime
            // and permission bits.
            let mut name = rel.to_vec();
            name.push(b'/');
            name.extend_from_slice(WHITEOUT_OPAQUE.as_bytes());
            header.set_entry_type(EntryType::Regular);
            header.set_mode(meta.mode() & 0o777);
            append_read(out, &mut header, &name, None, &[], io::empty(), path)?;
        }
        return Ok(());
    }

    if let Some(first) = links.first(meta, || rel.to_vec()) {
        header.set_entry_type(EntryType::Link);
        append_read(out, &mut header, rel, Some(first), &xattrs, io::empty(), path)?;
        return Ok(());
    }

    if kind.is_file() {
        header.set_entry_type(EntryType::Regular);
        header.set_size(meta.len());
        let file = File::open(path).map_err(io_err("opening", path))?;
        append_read(out, &mut header, rel, None, &xattrs, file, path)?;
    } else if kind.is_symlink() {
        header.set_entry_type(EntryType::Symlink);
        let target = fs::read_link(path).map_err(io_err("reading link", path))?;
        let target = target.as_os_str().as_bytes();
        append_read(out, &mut header, rel, Some(target), &xattrs, io::empty(), path)?;
    } else if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() {
        header.set_entry_type(if kind.is_char_device() {
            EntryType::Char
        } else if kind.is_block_device() {
            EntryType::Block
        } else {
            EntryType::Fifo
        });
        if !kind.is_fifo() {
            let set = header
                .set_device_major(libc::major(meta.rdev()))
                .and_then(|()| header.set_device_minor(libc::minor(meta.rdev())));
            set.map_err(LayerError::Write)?;
        }
        append_read(out, &mut header, rel, None, &xattrs, io::empty(), path)?;
    }
    // Sockets: skipped, as docker does.
    Ok(())
}

/// `dir/name` → `dir/<prefix>name`.
fn sibling(rel: &[u8], prefix: &[u8]) -> Vec<u8> {
    let split = rel.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let mut name = rel[..split].to_vec();
    name.extend_from_slice(prefix);
    name.extend_from_slice(&rel[split..]);
    name
}

/// Append one entry through [`entry::append`](super::entry::append); a failed read of `data` is
/// named by `path`.
fn append_read<W: Write>(
    out: &mut Writer<'_, W>,
    header: &mut Header,
    name: &[u8],
    link: Option<&[u8]>,
    records: &[(String, Vec<u8>)],
    data: impl Read,
    path: &Path,
) -> Result<(), LayerError> {
    out.append(header, name, link, records, data).map_err(|e| match e {
        CopyFailure::Read(source) => io_err("reading", path)(source),
        CopyFailure::Write(source) => LayerError::Write(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::extract;
    use crate::layer::overlay::OPAQUE_XATTR;
    use crate::layer::LayerWriter;
    use crate::store::Store;
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    use std::os::unix::fs::symlink;

    fn require_root() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test makes whiteout devices: run it as root \
             (CI does; `sudo -E cargo test` locally)"
        );
    }

    /// An upper folder as overlayfs leaves it after a RUN step.
    fn upper(dir: &Path, long: &str) {
        let w = |rel: &str, data: &str| fs::write(dir.join(rel), data).unwrap();
        w("a.txt", "hello");
        fs::create_dir(dir.join("bin")).unwrap();
        w("bin/tool", "#!/bin/sh\n");
        xattr::set(dir.join("bin/tool"), "user.keep", b"1").unwrap();
        xattr::set(dir.join("bin"), "user.overlay.impure", b"y").unwrap();
        let whiteout = dir.join("bin/old");
        mknod(&whiteout, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).unwrap();
        // overlayfs may share one inode among its whiteouts
        fs::hard_link(&whiteout, dir.join("gone")).unwrap();
        fs::create_dir(dir.join(long)).unwrap();
        w(&format!("{long}/f"), "long");
        w("h1", "linked");
        fs::hard_link(dir.join("h1"), dir.join("h2")).unwrap();
        symlink("a.txt", dir.join("link")).unwrap();
        fs::create_dir(dir.join("opq")).unwrap();
        xattr::set(dir.join("opq"), OPAQUE_XATTR, b"y").unwrap();
        w("opq/new", "n");
    }

    #[test]
    fn an_upper_folder_becomes_oci_entries_and_back() {
        require_root();
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let up = tmp.path().join("upper");
        fs::create_dir(&up).unwrap();
        let long = "d".repeat(120);
        upper(&up, &long);

        let mut writer = LayerWriter::new(&store).unwrap();
        write_upper(&up, writer.tar(), None).unwrap();
        let layer = writer.finish().unwrap();
        let tar = fs::read(store.blob_path(&layer.digest)).unwrap();

        let mut got = Vec::new();
        let mut archive = tar::Archive::new(&tar[..]);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            let link = entry.link_name().unwrap().map(|l| l.display().to_string());
            let mut xattrs = Vec::new();
            if let Some(pax) = entry.pax_extensions().unwrap() {
                for record in pax {
                    let key = record.unwrap().key().unwrap().to_owned();
                    if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                        xattrs.push(name.to_owned());
                    }
                }
            }
            let kind = entry.header().entry_type();
            got.push((path, kind, link, xattrs));
        }
        let (reg, dir) = (EntryType::Regular, EntryType::Directory);
        let e = |p: &str, k: EntryType, l: Option<&str>, x: &[&str]| {
            let x = x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            (p.to_owned(), k, l.map(str::to_owned), x)
        };
        let want = vec![
            e("a.txt", reg, None, &[]),
            e("bin/", dir, None, &[]),
            e("bin/.wh.old", reg, None, &[]),
            e("bin/tool", reg, None, &["user.keep"]),
            e(&format!("{long}/"), dir, None, &[]),
            e(&format!("{long}/f"), reg, None, &[]),
            e(".wh.gone", reg, None, &[]),
            e("h1", reg, None, &[]),
            e("h2", EntryType::Link, Some("h1"), &[]),
            e("link", EntryType::Symlink, Some("a.txt"), &[]),
            e("opq/", dir, None, &[]),
            e("opq/.wh..wh..opq", reg, None, &[]),
            e("opq/new", reg, None, &[]),
        ];
        assert_eq!(got, want);

        // Back into a snapshot folder: the overlay markers reappear.
        let lower = tmp.path().join("lower");
        fs::create_dir(&lower).unwrap();
        extract::apply(&tar[..], &lower, "round-trip").unwrap();
        for gone in ["gone", "bin/old"] {
            let m = fs::symlink_metadata(lower.join(gone)).unwrap();
            assert!(m.file_type().is_char_device() && m.rdev() == 0, "{gone}");
        }
        let opaque = xattr::get(lower.join("opq"), OPAQUE_XATTR).unwrap();
        assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
        assert_eq!(xattr::get(lower.join("bin"), "user.overlay.impure").unwrap(), None);
        let keep = xattr::get(lower.join("bin/tool"), "user.keep").unwrap();
        assert_eq!(keep.as_deref(), Some(&b"1"[..]));
        let ino = |p: &str| fs::metadata(lower.join(p)).unwrap().ino();
        assert_eq!(ino("h1"), ino("h2"));
        assert_eq!(fs::read(lower.join(format!("{long}/f"))).unwrap(), b"long");
        assert_eq!(fs::read_link(lower.join("link")).unwrap(), Path::new("a.txt"));
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode();
        assert_eq!(mode(&lower.join("a.txt")), mode(&up.join("a.txt")));
        let mtime = |p: &Path| fs::symlink_metadata(p).unwrap().mtime();
        assert_eq!(mtime(&lower.join("bin")), mtime(&up.join("bin")));
    }

    #[test]
    fn a_file_named_as_a_whiteout_is_refused_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let up = tmp.path().join("upper");
        fs::create_dir_all(up.join("etc")).unwrap();
        fs::write(up.join("etc/ok"), "ok").unwrap();
        fs::write(up.join("etc/.wh.passwd"), "").unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        match write_upper(&up, &mut tar, None) {
            Err(LayerError::WhiteoutName { entry }) => assert_eq!(entry, "/etc/.wh.passwd"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_same_upper_gives_the_same_layer() {
        require_root();
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("store")).unwrap();
        let up = tmp.path().join("upper");
        fs::create_dir(&up).unwrap();
        upper(&up, "long");
        let write = || {
            let mut writer = LayerWriter::new(&store).unwrap();
            write_upper(&up, writer.tar(), None).unwrap();
            writer.finish().unwrap()
        };
        assert_eq!(write(), write());
    }
}
