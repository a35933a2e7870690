//! A RUN's overlay upper folder made into exactly what extracting the layer
//! written from it gives, or refused.
//!
//! The layer's entries were written from this very folder, so most of it
//! already agrees; what extraction would do differently is done here:
//!
//! - times are the entries' (whole seconds, or whatever the entry writer put
//!   there, SOURCE_DATE_EPOCH included), the access time equal to the mtime;
//!   folders dated last, deepest first;
//! - overlayfs's own xattrs (`impure`, `origin`, …) go; a folder keeps the
//!   opaque marker only when its layer has a `.wh..wh..opq` entry;
//! - the root folder gets the mode of a new folder, as extraction's has.
//!
//! Whatever it cannot vouch for is an error, and the folder is not used: an
//! entry not found with its type, owner, size or link target; a hard link
//! whose names are not one inode; a device node (extraction skips those
//! rootless); a file no entry names (a socket: tar has none); overlayfs
//! redirects or metacopy files, whose data is not in the folder.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;
use tar::EntryType;
use walkdir::WalkDir;

use crate::layer::extract::{parse_pax_time, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
use crate::layer::overlay::{is_overlay_xattr, OPAQUE_XATTR};
use crate::layer::{bounded::Bounded, LayerError};

/// overlayfs xattrs that mean a file's data or a folder's content is
/// elsewhere (in a lower layer): such a folder is no snapshot.
const ELSEWHERE: [&str; 2] = ["overlay.redirect", "overlay.metacopy"];

/// Conform the upper folder `upper` to the layer tar read from `tar` (see the
/// module docs).
pub fn conform(tar: impl Read, upper: &Path) -> Result<(), LayerError> {
    let mut archive = tar::Archive::new(Bounded::new(tar));
    let mut named = 0u64;
    let mut dir_times = Vec::new();
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            continue;
        }
        let rel = relative(&entry.path().map_err(read_err)?)?;
        let Some(base) = rel.file_name().map(OsStr::as_bytes) else {
            return Err(differs(&rel, "is the root, which an upper folder's layer never names"));
        };
        let path = upper.join(&rel);
        if base == WHITEOUT_OPAQUE.as_bytes() {
            let dir = path.parent().expect("a joined name has a parent");
            if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
                return Err(differs(&rel, "marks no folder opaque"));
            }
            xattr::set(dir, OPAQUE_XATTR, b"y").map_err(|e| at(&rel, e))?;
            continue;
        }
        named += 1;
        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            // The diff writer writes no other `.wh..wh.` names: a file of the
            // step's named so, which extraction would skip.
            let whiteout = path.with_file_name(OsStr::from_bytes(hidden));
            let m = fs::symlink_metadata(&whiteout).map_err(|e| at(&rel, e))?;
            if base.starts_with(b".wh..wh.") || !(m.file_type().is_char_device() && m.rdev() == 0) {
                return Err(differs(&rel, "is a whiteout of no whiteout device"));
            }
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(|e| at(&rel, e))?;
        let header = entry.header();
        let mode = header.mode().map_err(read_err)? & 0o7777;
        let (uid, gid) = (header.uid().map_err(read_err)?, header.gid().map_err(read_err)?);
        let size = header.size().map_err(read_err)?;
        let link = entry.link_name().map_err(read_err)?.map(|l| l.into_owned());
        let mut mtime = TimeSpec::new(header.mtime().map_err(read_err)? as i64, 0);
        if let Some(pax) = entry.pax_extensions().map_err(read_err)? {
            for record in pax.flatten() {
                match (record.key(), record.value()) {
                    (Ok("uid"), _) | (Ok("gid"), _) => return Err(differs(&rel, "has an id too large to check")),
                    (Ok("mtime"), Ok(v)) => mtime = parse_pax_time(v).unwrap_or(mtime),
                    _ => {}
                }
            }
        }
        let file_type = meta.file_type();
        let same_kind = match kind {
            EntryType::Directory => file_type.is_dir(),
            EntryType::Regular | EntryType::Continuous => file_type.is_file() && meta.len() == size,
            EntryType::Symlink => file_type.is_symlink() && fs::read_link(&path).ok() == link,
            EntryType::Fifo => file_type.is_fifo(),
            EntryType::Link => {
                let target = upper.join(relative(link.as_deref().unwrap_or(Path::new("")))?);
                let first = fs::symlink_metadata(target).map_err(|e| at(&rel, e))?;
                if (first.dev(), first.ino()) != (meta.dev(), meta.ino()) {
                    return Err(differs(&rel, "is a hard link to another inode"));
                }
                // Extraction makes the link and leaves the inode as its first name set it.
                continue;
            }
            _ => false,
        };
        if !same_kind {
            return Err(differs(&rel, "is not in the folder as the entry says"));
        }
        // A chown to the same owner would still drop setuid bits and file
        // capabilities: owners are checked, never set.
        if (u64::from(meta.uid()), u64::from(meta.gid())) != (uid, gid) {
            return Err(differs(&rel, "has another owner than its entry"));
        }
        if !file_type.is_symlink() && meta.mode() & 0o7777 != mode {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|e| at(&rel, e))?;
        }
        drop_overlay_xattrs(&path, &rel)?;
        if file_type.is_dir() {
            dir_times.push((path, mtime));
        } else {
            set_times(&path, &mtime).map_err(|e| at(&rel, e))?;
        }
    }
    // Every name in the folder must be an entry of the layer: a file the diff
    // writer leaves out (a socket) would be in the snapshot and not in the image.
    let mut found = 0u64;
    for item in WalkDir::new(upper).min_depth(1) {
        item.map_err(|e| at(upper, e.into()))?;
        found += 1;
    }
    if found != named {
        return Err(differs(upper, "holds files its layer does not"));
    }
    drop_overlay_xattrs(upper, upper)?;
    // A step may have changed `/` itself, which no entry records; extraction
    // makes its root as any new folder.
    fs::set_permissions(upper, fs::Permissions::from_mode(0o777 & !umask())).map_err(|e| at(upper, e))?;
    dir_times.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (path, mtime) in &dir_times {
        set_times(path, mtime).map_err(|e| at(path, e))?;
    }
    Ok(())
}

/// Remove overlayfs's xattrs from `path` (the opaque marker comes back with
/// its entry); refuse one whose data or content is in a lower layer.
fn drop_overlay_xattrs(path: &Path, rel: &Path) -> Result<(), LayerError> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(()),
        Err(e) => return Err(at(rel, e)),
    };
    for name in names {
        let bytes = name.as_bytes();
        if !is_overlay_xattr(bytes) {
            continue;
        }
        if ELSEWHERE.iter().any(|e| bytes.ends_with(e.as_bytes())) {
            return Err(differs(rel, "is an overlay redirect or metacopy"));
        }
        xattr::remove(path, &name).map_err(|e| at(rel, e))?;
    }
    Ok(())
}

/// This process's umask, read without changing it (umask(2) would, for
/// every thread); Linux has shown it in /proc since 4.7.
fn umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"));
    line.and_then(|v| u32::from_str_radix(v.trim(), 8).ok()).unwrap_or(0o022)
}

/// Set the mtime, and the atime to it, as extraction does; never following a symlink.
fn set_times(path: &Path, mtime: &TimeSpec) -> io::Result<()> {
    utimensat(None, path, mtime, mtime, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

/// An entry name as a plain relative path; the diff writer writes no other.
fn relative(name: &Path) -> Result<PathBuf, LayerError> {
    let mut rel = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            _ => return Err(differs(name, "is not a plain relative name")),
        }
    }
    Ok(rel)
}

fn read_err(source: io::Error) -> LayerError {
    LayerError::Read { layer: "the layer of an upper folder".to_owned(), source }
}

fn at(rel: &Path, source: io::Error) -> LayerError {
    crate::fsutil::io_at::<LayerError>("conforming the upper folder at", rel)(source)
}

fn differs(rel: &Path, why: &str) -> LayerError {
    at(rel, io::Error::other(why.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::diff;

    /// The layer `diff::write_upper` writes of `upper`, as a tar.
    fn layer_of(upper: &Path) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        diff::write_upper(upper, &mut tar, None).unwrap();
        tar.into_inner().unwrap()
    }

    /// `tar` with an empty file `name` added at its end: a layer holding
    /// what `diff::write_upper` refuses to write (see `layer::diff`).
    fn with_file(tar: &[u8], name: &str) -> Vec<u8> {
        let mut out = tar::Builder::new(Vec::new());
        for entry in tar::Archive::new(tar).entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut header = entry.header().clone();
            let path = entry.path().unwrap().into_owned();
            out.append_data(&mut header, path, &mut entry).unwrap();
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        out.append_data(&mut header, name, std::io::empty()).unwrap();
        out.into_inner().unwrap()
    }

    #[test]
    fn an_upper_folder_is_conformed_or_refused_when_extraction_would_differ() {
        type Make = fn(&Path);
        let cases: [(&str, Make, bool); 5] = [
            ("plain files", |_| {}, true),
            (
                "a socket, which tar leaves out",
                |d| drop(std::os::unix::net::UnixListener::bind(d.join("s")).unwrap()),
                false,
            ),
            ("a file named as a whiteout", |d| fs::write(d.join(".wh.x"), "").unwrap(), false),
            ("a redirected folder", |d| xattr::set(d.join("d"), "user.overlay.redirect", b"/o").unwrap(), false),
            ("a layer that lost a file", |_| {}, false),
        ];
        for (case, make, fits) in cases {
            let dir = tempfile::tempdir().unwrap();
            let upper = dir.path();
            fs::create_dir(upper.join("d")).unwrap();
            fs::write(upper.join("d/f"), "f").unwrap();
            xattr::set(upper.join("d"), "user.overlay.impure", b"y").unwrap();
            make(upper);
            let tar = if case == "a file named as a whiteout" {
                let wh = upper.join(".wh.x");
                assert!(diff::write_upper(upper, &mut tar::Builder::new(Vec::new()), None).is_err(), "{case}");
                let aside = tempfile::tempdir().unwrap();
                let moved = aside.path().join("wh");
                fs::rename(&wh, &moved).unwrap();
                let tar = with_file(&layer_of(upper), ".wh.x");
                fs::rename(&moved, &wh).unwrap();
                tar
            } else {
                layer_of(upper)
            };
            if case == "a layer that lost a file" {
                fs::write(upper.join("extra"), "not in the layer").unwrap();
            }
            let got = conform(&tar[..], upper);
            assert_eq!(got.is_ok(), fits, "{case}: {got:?}");
            if fits {
                assert_eq!(xattr::get(upper.join("d"), "user.overlay.impure").unwrap(), None, "{case}");
                let m = fs::metadata(upper.join("d/f")).unwrap();
                assert_eq!((m.mtime_nsec(), m.atime(), m.atime_nsec()), (0, m.mtime(), 0), "{case}: times");
            }
        }
    }
}
