//! Applying a layer tar to an empty snapshot folder, which then serves as an
//! overlayfs lowerdir.
//!
//! A layer is untrusted input: it may come from any registry. The rules that
//! keep every write inside the snapshot folder:
//!
//! - entry names are made relative (a leading `/` or `./` is dropped) and any
//!   `..` component is refused;
//! - no parent component of an entry (or of a hardlink's target) may be a
//!   symlink: each one is checked with `symlink_metadata` before anything is
//!   written below it, so `a -> /etc` followed by `a/passwd` is refused;
//! - files are created with `O_EXCL` after removing what was there, so a final
//!   component that is a symlink is replaced, never followed.
//!
//! The folder is written by this process alone while it is applied, so checking
//! each path before using it is enough; nobody else races us inside it.
//!
//! OCI whiteouts become overlayfs whiteouts as they are written: `dir/.wh.name`
//! becomes a 0:0 character device `dir/name`, and `dir/.wh..wh..opq` becomes the
//! opaque xattr on `dir`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};
use tar::EntryType;

use super::overlay::{is_overlay_xattr, OPAQUE_XATTR};
use super::LayerError;

/// The OCI whiteout prefix: `dir/.wh.name` deletes `dir/name`.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The OCI opaque marker: `dir/.wh..wh..opq` hides everything below `dir` in
/// the layers beneath.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// Names starting with this are aufs metadata (`.wh..wh.plnk`, …); only the
/// opaque marker among them means anything to us.
const WHITEOUT_META_PREFIX: &str = ".wh..wh.";

/// Apply the layer blob at `path` (gzip-compressed or plain tar, told apart by
/// the gzip magic bytes) to the empty folder `root`.
pub fn apply_blob(path: &Path, root: &Path, layer_name: &str) -> Result<(), LayerError> {
    let read_err = |source| LayerError::Read { layer: layer_name.to_owned(), source };
    let file = File::open(path).map_err(io_err("opening", path))?;
    let mut reader = BufReader::new(file);
    // Peek without consuming: the bytes stay in the buffer for the tar reader.
    let gzip = std::io::BufRead::fill_buf(&mut reader).map_err(read_err)?.starts_with(&[0x1f, 0x8b]);
    if gzip {
        // Multi-member: pigz and eStargz write a layer as many gzip members,
        // and a single-member decoder would stop silently after the first.
        apply(MultiGzDecoder::new(reader), root, layer_name)
    } else {
        apply(reader, root, layer_name)
    }
}

/// Apply an uncompressed layer tar read from `reader` to the empty folder
/// `root`. `layer_name` names the layer in errors. Fails on the first entry
/// that would write outside `root`, leaving `root` partly written: callers
/// extract into a temporary folder and discard it on error.
pub fn apply(reader: impl Read, root: &Path, layer_name: &str) -> Result<(), LayerError> {
    let mut applier = Applier { root, layer: layer_name, dir_times: Vec::new() };
    let read_err = |source| LayerError::Read { layer: layer_name.to_owned(), source };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        applier.entry(entry)?;
    }
    applier.finish()
}

/// The metadata of one entry, gathered before its data is read.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Applier<'a> {
    root: &'a Path,
    layer: &'a str,
    /// Directories whose mtime is set once everything below them is written.
    dir_times: Vec<(PathBuf, TimeSpec)>,
}

impl Applier<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<(), LayerError> {
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader) {
            return Ok(());
        }
        // `path()` and `link_name()` already include PAX and GNU long names.
        let raw = entry.path().map_err(|e| self.read_err(e))?.into_owned();
        let name = raw.display().to_string();
        let rel = self.relative(&raw, &name)?;
        let meta = self.meta(&mut entry)?;

        let Some(base) = rel.file_name() else {
            // The root itself ("./"): only its metadata applies.
            let root = self.root.to_owned();
            self.set_meta(&root, &meta, EntryType::Directory)?;
            self.dir_times.push((root, meta.mtime));
            return Ok(());
        };
        let base = base.as_bytes();
        let parent = self.make_parents(&rel, &name)?;

        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if base == WHITEOUT_OPAQUE.as_bytes() {
                return xattr::set(&parent, OPAQUE_XATTR, b"y").map_err(io_err("marking opaque", &parent));
            }
            if base.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
                return Ok(());
            }
            // `.wh..` would delete the folder above the one being extracted
            // (with every snapshot in it), `.wh..` the parent folder itself.
            if matches!(hidden, b"" | b"." | b"..") || hidden.contains(&b'/') {
                return Err(self.unsafe_entry(&name, "is a whiteout of no valid name"));
            }
            let path = parent.join(OsStr::from_bytes(hidden));
            self.remove(&path, false)?;
            // A whiteout is never skipped: losing one would resurrect a deleted file.
            return mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|e| io_err("creating whiteout", &path)(e.into()));
        }

        let path = parent.join(OsStr::from_bytes(base));
        let is_dir = kind == EntryType::Directory;
        let kept_dir = self.remove(&path, is_dir)?;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io_err("creating", &path))?;
                // The tar reader expands sparse entries and streams the rest.
                crate::fsutil::copy(&mut entry, &mut file).map_err(|e| match e {
                    crate::fsutil::CopyFailure::Read(e) => self.read_err(e),
                    crate::fsutil::CopyFailure::Write(e) => io_err("writing", &path)(e),
                })?;
            }
            EntryType::Directory => {
                if !kept_dir {
                    fs::DirBuilder::new().mode(0o700).create(&path).map_err(io_err("creating", &path))?;
                }
            }
            EntryType::Symlink => {
                let target = self.link_name(&entry, &name)?;
                // The target is kept verbatim: it is resolved inside the
                // container, never by us.
                std::os::unix::fs::symlink(&target, &path).map_err(io_err("creating", &path))?;
            }
            EntryType::Link => {
                let target = self.link_name(&entry, &name)?;
                let target = self.link_target(&target, &name)?;
                // link(2) does not follow a symlink target on Linux, so the
                // new name shares the symlink's inode, not its referent's.
                return fs::hard_link(&target, &path).map_err(io_err("hardlinking", &path));
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let flag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let header = entry.header();
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dev = makedev(major.into(), minor.into());
                let perm = Mode::from_bits_truncate(meta.mode & 0o777);
                match mknod(&path, flag, perm, dev) {
                    Ok(()) => {}
                    // Devices cannot be made in a user namespace; a rootless
                    // build gets the bind-mounted /dev at run time anyway.
                    Err(Errno::EPERM) if flag != SFlag::S_IFIFO => return Ok(()),
                    Err(e) => return Err(io_err("creating", &path)(e.into())),
                }
            }
            // Other types (GNU volume labels, unknown vendor types) carry
            // nothing a root filesystem can hold.
            _ => return Ok(()),
        }
        self.set_meta(&path, &meta, kind)?;
        if is_dir {
            self.dir_times.push((path, meta.mtime));
        }
        Ok(())
    }

    /// Set directories' mtimes, deepest first, now that nothing more is
    /// written into them.
    fn finish(mut self) -> Result<(), LayerError> {
        self.dir_times.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (path, mtime) in &self.dir_times {
            // A directory replaced by a later entry is no longer ours to date.
            match fs::symlink_metadata(path) {
                Ok(m) if m.is_dir() => set_mtime(path, mtime)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// The entry name as a path relative to the root, refusing `..`.
    fn relative(&self, raw: &Path, name: &str) -> Result<PathBuf, LayerError> {
        let mut rel = PathBuf::new();
        for component in raw.components() {
            match component {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(part) => rel.push(part),
                Component::ParentDir => return Err(self.unsafe_entry(name, "has a `..` component")),
                Component::Prefix(_) => return Err(self.unsafe_entry(name, "has a path prefix")),
            }
        }
        Ok(rel)
    }

    /// Make the missing parent folders of `rel` (mode 0755, as tar does) after
    /// checking that none of the existing ones is a symlink. Returns the
    /// absolute parent folder.
    fn make_parents(&self, rel: &Path, name: &str) -> Result<PathBuf, LayerError> {
        let mut dir = self.root.to_owned();
        let Some(parent) = rel.parent() else {
            return Ok(dir);
        };
        for part in parent.components() {
            dir.push(part);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.file_type().is_symlink() => return Err(self.unsafe_entry(name, "goes through a symlink")),
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    let source = io::Error::from_raw_os_error(libc::ENOTDIR);
                    return Err(io_err("writing below", &dir)(source));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::DirBuilder::new().mode(0o755).create(&dir).map_err(io_err("creating", &dir))?
                }
                Err(e) => return Err(io_err("inspecting", &dir)(e)),
            }
        }
        Ok(dir)
    }

    /// The absolute path of a hardlink's target, which must already exist
    /// inside the root, reached without `..` or symlinked folders.
    fn link_target(&self, target: &Path, name: &str) -> Result<PathBuf, LayerError> {
        let rel = self.relative(target, name)?;
        if rel.as_os_str().is_empty() {
            return Err(self.unsafe_entry(name, "is a hardlink to the root"));
        }
        let mut path = self.root.to_owned();
        let parts: Vec<_> = rel.components().collect();
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            let last = i + 1 == parts.len();
            match fs::symlink_metadata(&path) {
                Ok(m) if !last && m.file_type().is_symlink() => {
                    return Err(self.unsafe_entry(name, "links to a target through a symlink"))
                }
                Ok(m) if m.is_dir() && last => return Err(self.unsafe_entry(name, "is a hardlink to a directory")),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(self.unsafe_entry(
                        name,
                        "is a hardlink to a file that is not in this layer (a hardlink must name an \
                         earlier entry of the same layer; it can never reach a file of the host or of \
                         another layer)",
                    ))
                }
                Err(e) => return Err(io_err("finding hardlink target", &path)(e)),
            }
        }
        Ok(path)
    }

    /// Remove what exists at `path` before an entry takes its place. An
    /// existing directory stays when `keep_dir` (a directory entry over a
    /// directory only updates its metadata); returns whether it stayed.
    fn remove(&self, path: &Path, keep_dir: bool) -> Result<bool, LayerError> {
        // Entry names are checked before they get here; this is the last line:
        // nothing outside the folder being extracted, nor the folder itself,
        // is ever removed.
        if !path.starts_with(self.root) || path == self.root || path.components().any(|c| c == Component::ParentDir) {
            let source = io::Error::new(io::ErrorKind::PermissionDenied, "outside the folder being extracted");
            return Err(io_err("refusing to replace", path)(source));
        }
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("inspecting", path)(e)),
            Ok(m) if m.is_dir() && keep_dir => Ok(true),
            // remove_dir_all does not follow symlinks inside the tree.
            Ok(m) if m.is_dir() => fs::remove_dir_all(path).map(|()| false).map_err(io_err("replacing", path)),
            Ok(_) => fs::remove_file(path).map(|()| false).map_err(io_err("replacing", path)),
        }
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> Result<Meta, LayerError> {
        let header = entry.header();
        let old = header.as_old();
        // Go's reader takes a blank numeric field for 0; so do we.
        let number = |value: io::Result<u64>, raw: &[u8], what: &str| match value {
            Ok(n) => Ok(n),
            Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
            Err(_) => Err(self.read_err(io::Error::new(io::ErrorKind::InvalidData, format!("bad {what} field")))),
        };
        let mut meta = Meta {
            mode: number(header.mode().map(u64::from), &old.mode, "mode")? as u32,
            uid: number(header.uid(), &old.uid, "uid")?,
            gid: number(header.gid(), &old.gid, "gid")?,
            mtime: TimeSpec::new(number(header.mtime(), &old.mtime, "mtime")? as i64, 0),
            xattrs: Vec::new(),
        };
        let Some(pax) = entry.pax_extensions().map_err(|e| self.read_err(e))? else {
            return Ok(meta);
        };
        let mut records = HashMap::new();
        for record in pax {
            let record = record.map_err(|e| self.read_err(e))?;
            let key = record.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                meta.xattrs.push((name.to_vec(), record.value_bytes().to_vec()));
            } else {
                records.insert(key.to_vec(), record.value_bytes().to_vec());
            }
        }
        // PAX numbers override the header's (Go writes them for ids too large
        // for octal and for sub-second mtimes).
        let text = |key: &[u8]| records.get(key).and_then(|v| std::str::from_utf8(v).ok().map(str::to_owned));
        if let Some(uid) = text(b"uid").and_then(|v| v.parse().ok()) {
            meta.uid = uid;
        }
        if let Some(gid) = text(b"gid").and_then(|v| v.parse().ok()) {
            meta.gid = gid;
        }
        if let Some(mtime) = text(b"mtime").and_then(|v| parse_pax_time(&v)) {
            meta.mtime = mtime;
        }
        Ok(meta)
    }

    /// Owner, mode, xattrs and (except for directories) mtime, in that order:
    /// chown clears setuid bits and file capabilities, so it goes first.
    fn set_meta(&self, path: &Path, meta: &Meta, kind: EntryType) -> Result<(), LayerError> {
        let (uid, gid) = (Uid::from_raw(meta.uid as u32), Gid::from_raw(meta.gid as u32));
        match fchownat(None, path, Some(uid), Some(gid), AtFlags::AT_SYMLINK_NOFOLLOW) {
            // EINVAL: the id is not mapped in our user namespace (rootless);
            // EPERM: we may not give files away. The files stay ours.
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::EPERM) => {}
            Err(e) => return Err(io_err("changing owner of", path)(e.into())),
        }
        if kind != EntryType::Symlink {
            fs::set_permissions(path, fs::Permissions::from_mode(meta.mode & 0o7777))
                .map_err(io_err("changing mode of", path))?;
        }
        for (name, value) in &meta.xattrs {
            // A layer must not steer overlayfs (redirects, origins, opaque
            // dirs) through xattrs; whiteout markers are the only way in.
            if is_overlay_xattr(name) {
                continue;
            }
            // Unsupported namespaces (ENOTSUP), trusted.* without privilege
            // (EPERM) and the like are dropped, as docker and containerd do.
            let _ = xattr::set(path, OsStr::from_bytes(name), value);
        }
        if kind != EntryType::Directory {
            set_mtime(path, &meta.mtime)?;
        }
        Ok(())
    }

    fn link_name<R: Read>(&self, entry: &tar::Entry<'_, R>, name: &str) -> Result<PathBuf, LayerError> {
        match entry.link_name().map_err(|e| self.read_err(e))? {
            Some(target) => Ok(target.into_owned()),
            None => Err(self.unsafe_entry(name, "is a link without a target")),
        }
    }

    fn read_err(&self, source: io::Error) -> LayerError {
        LayerError::Read { layer: self.layer.to_owned(), source }
    }

    fn unsafe_entry(&self, entry: &str, why: &'static str) -> LayerError {
        LayerError::Unsafe { layer: self.layer.to_owned(), entry: entry.to_owned(), why }
    }
}

/// Set the mtime (and atime, to the same value) without following a symlink.
fn set_mtime(path: &Path, mtime: &TimeSpec) -> Result<(), LayerError> {
    utimensat(None, path, mtime, mtime, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| io_err("setting mtime of", path)(e.into()))
}

/// A PAX time: decimal seconds with an optional fraction.
fn parse_pax_time(value: &str) -> Option<TimeSpec> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().ok()? };
    Some(TimeSpec::new(secs, nanos))
}

pub(super) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LayerError {
    crate::fsutil::io_at(action, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use tar::Header;

    fn require_root() {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test makes devices, whiteouts and chowns: run it as root \
             (CI does; `sudo -E cargo test` locally)"
        );
    }

    /// A tar built entry by entry, names written raw so that hostile names
    /// (`..`, absolute) get through the tar crate's own checks.
    struct Tar(tar::Builder<Vec<u8>>);

    impl Tar {
        fn new() -> Self {
            Tar(tar::Builder::new(Vec::new()))
        }
        fn raw(&mut self, kind: EntryType, name: &str, link: &str, data: &[u8], mode: u32) {
            let mut h = Header::new_gnu();
            h.set_entry_type(kind);
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_000_000);
            h.set_cksum();
            self.0.append(&h, data).unwrap();
        }
        fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
            self.raw(EntryType::Regular, name, "", data, 0o644);
            self
        }
        fn dir(&mut self, name: &str) -> &mut Self {
            self.raw(EntryType::Directory, name, "", b"", 0o755);
            self
        }
        fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
            self.raw(EntryType::Symlink, name, target, b"", 0o777);
            self
        }
        fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
            self.raw(EntryType::Link, name, target, b"", 0o644);
            self
        }
        fn bytes(&mut self) -> Vec<u8> {
            std::mem::replace(&mut self.0, tar::Builder::new(Vec::new())).into_inner().unwrap()
        }
    }

    fn apply_to(tar: &[u8]) -> (tempfile::TempDir, Result<(), LayerError>) {
        let dir = tempfile::tempdir().unwrap();
        let result = apply(tar, dir.path(), "test-layer");
        (dir, result)
    }

    fn assert_unsafe(result: Result<(), LayerError>, entry: &str) {
        match result {
            Err(LayerError::Unsafe { entry: e, .. }) => assert_eq!(e, entry),
            other => panic!("want Unsafe for {entry:?}, got {other:?}"),
        }
    }

    #[test]
    fn whiteouts_become_devices_and_opaque_markers_xattrs() {
        require_root();
        let tar = Tar::new()
            .dir("dir/")
            .file("dir/.wh.gone", b"")
            .file(".wh.top", b"")
            .file("opaque/.wh..wh..opq", b"")
            .file("opaque/kept", b"k")
            .file("dir/.wh..wh.plnk", b"")
            .bytes();
        let (dir, result) = apply_to(&tar);
        result.unwrap();
        for gone in ["dir/gone", "top"] {
            let m = fs::symlink_metadata(dir.path().join(gone)).unwrap();
            assert!(m.file_type().is_char_device(), "{gone}");
            assert_eq!(m.rdev(), 0, "{gone}");
        }
        let opaque = xattr::get(dir.path().join("opaque"), OPAQUE_XATTR).unwrap();
        assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
        assert_eq!(fs::read(dir.path().join("opaque/kept")).unwrap(), b"k");
        assert!(!dir.path().join("dir/.wh..wh.plnk").exists());
        assert!(!dir.path().join("dir/.wh.gone").exists());
    }

    #[test]
    fn parent_components_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let nested = root.path().join("root");
        fs::create_dir(&nested).unwrap();
        for name in ["../evil", "a/../../evil", "/../evil"] {
            let tar = Tar::new().file(name, b"x").bytes();
            assert_unsafe(apply(&tar[..], &nested, "l"), name);
        }
        assert!(!root.path().join("evil").exists());
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn leading_slash_and_dot_are_stripped() {
        let tar = Tar::new().file("/abs", b"1").file("./rel", b"2").bytes();
        let (dir, result) = apply_to(&tar);
        result.unwrap();
        assert_eq!(fs::read(dir.path().join("abs")).unwrap(), b"1");
        assert_eq!(fs::read(dir.path().join("rel")).unwrap(), b"2");
    }

    #[test]
    fn symlinked_parents_are_refused_and_nothing_escapes() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().to_str().unwrap();
        let cases: [(&str, Vec<u8>); 3] = [
            ("a/f", Tar::new().symlink("a", target).file("a/f", b"x").bytes()),
            ("a/d/", Tar::new().symlink("a", target).dir("a/d/").bytes()),
            ("a/.wh.f", Tar::new().symlink("a", target).file("a/.wh.f", b"").bytes()),
        ];
        for (entry, tar) in cases {
            let (_dir, result) = apply_to(&tar);
            assert_unsafe(result, entry);
            assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "{entry}");
        }
    }

    #[test]
    fn a_symlink_is_replaced_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, b"safe").unwrap();
        let tar = Tar::new().symlink("f", victim.to_str().unwrap()).file("f", b"evil").bytes();
        let (dir, result) = apply_to(&tar);
        result.unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"safe");
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"evil");
    }

    #[test]
    fn hardlink_escapes_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"s").unwrap();
        let target = outside.path().to_str().unwrap();
        let cases: [(&str, Vec<u8>); 2] = [
            ("h", Tar::new().hardlink("h", "../secret").bytes()),
            ("h", Tar::new().symlink("s", target).hardlink("h", "s/secret").bytes()),
        ];
        for (entry, tar) in cases {
            let (dir, result) = apply_to(&tar);
            assert_unsafe(result, entry);
            assert!(!dir.path().join("h").exists());
        }
        // An absolute target is inside the root, like any entry name.
        let tar = Tar::new().file("etc/a", b"x").hardlink("b", "/etc/a").bytes();
        let (dir, result) = apply_to(&tar);
        result.unwrap();
        let (a, b) = (dir.path().join("etc/a"), dir.path().join("b"));
        assert_eq!(fs::metadata(a).unwrap().ino(), fs::metadata(b).unwrap().ino());
    }

    #[test]
    fn metadata_is_kept() {
        require_root();
        let mut t = Tar::new();
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_mode(0o1777);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(2_000_000);
        h.set_size(0);
        t.0.append_data(&mut h, "tmp/", io::empty()).unwrap();
        let mut h = Header::new_gnu();
        h.set_mode(0o4755);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(3_000_000);
        h.set_size(2);
        t.0.append_pax_extensions([("SCHILY.xattr.user.note", &b"hi"[..])]).unwrap();
        t.0.append_data(&mut h, "tmp/suid", &b"#!"[..]).unwrap();
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Char);
        h.set_mode(0o666);
        h.set_size(0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        t.0.append_data(&mut h, "null", io::empty()).unwrap();
        t.raw(EntryType::Fifo, "fifo", "", b"", 0o600);
        t.symlink("link", "tmp/suid");
        let (dir, result) = apply_to(&t.bytes());
        result.unwrap();

        let d = fs::symlink_metadata(dir.path().join("tmp")).unwrap();
        assert_eq!(d.mode() & 0o7777, 0o1777);
        assert_eq!((d.uid(), d.gid(), d.mtime()), (1234, 5678, 2_000_000));
        let f = fs::symlink_metadata(dir.path().join("tmp/suid")).unwrap();
        assert_eq!(f.mode() & 0o7777, 0o4755);
        assert_eq!((f.uid(), f.gid(), f.mtime()), (1234, 5678, 3_000_000));
        let note = xattr::get(dir.path().join("tmp/suid"), "user.note").unwrap();
        assert_eq!(note.as_deref(), Some(&b"hi"[..]));
        let n = fs::symlink_metadata(dir.path().join("null")).unwrap();
        assert!(n.file_type().is_char_device());
        assert_eq!(n.rdev(), makedev(1, 3));
        let fifo = fs::symlink_metadata(dir.path().join("fifo")).unwrap();
        assert!(fifo.file_type().is_fifo());
        let link = fs::read_link(dir.path().join("link")).unwrap();
        assert_eq!(link, Path::new("tmp/suid"));
        let l = fs::symlink_metadata(dir.path().join("link")).unwrap();
        assert_eq!(l.mtime(), 1_000_000);
    }

    #[test]
    fn long_names_and_targets() {
        let long_dir = "d".repeat(150);
        let long_file = format!("{long_dir}/{}", "f".repeat(120));
        let mut t = Tar::new();
        let mut h = Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        // GNU long name (what the tar crate writes)
        t.0.append_data(&mut h, &long_file, &b"g"[..]).unwrap();
        // PAX path (what Go writes)
        let pax_name = format!("{long_dir}/{}", "p".repeat(120));
        t.0.append_pax_extensions([("path", pax_name.as_bytes())]).unwrap();
        t.raw(EntryType::Regular, "truncated", "", b"p", 0o644);
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        t.0.append_link(&mut h, "sym", &long_file).unwrap();
        let (dir, result) = apply_to(&t.bytes());
        result.unwrap();
        assert_eq!(fs::read(dir.path().join(&long_file)).unwrap(), b"g");
        assert_eq!(fs::read(dir.path().join(&pax_name)).unwrap(), b"p");
        assert_eq!(fs::read_link(dir.path().join("sym")).unwrap(), Path::new(&long_file));
        assert!(!dir.path().join("truncated").exists());
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let tar = Tar::new()
            .file("x/old", b"1")
            .file("x/keep", b"k")
            .dir("x/") // a dir over a dir keeps its content
            .dir("x/old/") // a dir over a file replaces it
            .file("y/z", b"2")
            .file("y", b"file over dir")
            .bytes();
        let (dir, result) = apply_to(&tar);
        result.unwrap();
        assert_eq!(fs::read(dir.path().join("x/keep")).unwrap(), b"k");
        assert!(dir.path().join("x/old").is_dir());
        assert_eq!(fs::read(dir.path().join("y")).unwrap(), b"file over dir");
    }

    #[test]
    fn apply_blob_reads_gzip_and_plain() {
        let tar = Tar::new().file("a", b"plain").bytes();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, &tar).unwrap();
        let gz = gz.finish().unwrap();
        let blobs = tempfile::tempdir().unwrap();
        for (name, bytes) in [("plain", &tar), ("gzip", &gz)] {
            let path = blobs.path().join(name);
            fs::write(&path, bytes).unwrap();
            let root = tempfile::tempdir().unwrap();
            apply_blob(&path, root.path(), name).unwrap();
            assert_eq!(fs::read(root.path().join("a")).unwrap(), b"plain", "{name}");
        }
    }
    #[test]
    fn whiteouts_of_no_valid_name_are_refused_and_remove_nothing() {
        // The store's other snapshots sit beside the folder being extracted.
        let store = tempfile::tempdir().unwrap();
        let sibling = store.path().join("other-snapshot");
        fs::create_dir(&sibling).unwrap();
        fs::write(sibling.join("bin"), b"kept").unwrap();
        let root = store.path().join("extracting");
        for name in [".wh..", ".wh.", "./.wh..", "dir/.wh..", "dir/.wh."] {
            fs::create_dir_all(root.join("dir")).unwrap();
            fs::write(root.join("dir/kept"), b"k").unwrap();
            let tar = Tar::new().file(name, b"").bytes();
            let result = apply(&tar[..], &root, "l");
            assert!(matches!(result, Err(LayerError::Unsafe { .. })), "{name}: {result:?}");
            assert_eq!(fs::read(sibling.join("bin")).unwrap(), b"kept", "{name}");
            assert_eq!(fs::read(root.join("dir/kept")).unwrap(), b"k", "{name}");
            fs::remove_dir_all(&root).unwrap();
        }
    }

    #[test]
    fn multi_member_gzip_layers_are_read_to_the_end() {
        // pigz and eStargz: the layer is several gzip members back to back.
        let tar = Tar::new().file("first", b"1").file("second", b"2").bytes();
        let (head, tail) = tar.split_at(1024); // the first entry's header and data
        let mut blob = Vec::new();
        for part in [head, tail] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            io::Write::write_all(&mut gz, part).unwrap();
            blob.extend(gz.finish().unwrap());
        }
        let blobs = tempfile::tempdir().unwrap();
        let path = blobs.path().join("multi");
        fs::write(&path, &blob).unwrap();
        let root = tempfile::tempdir().unwrap();
        apply_blob(&path, root.path(), "multi").unwrap();
        assert_eq!(fs::read(root.path().join("first")).unwrap(), b"1");
        assert_eq!(fs::read(root.path().join("second")).unwrap(), b"2");
    }

    #[test]
    fn a_hardlink_to_a_file_outside_the_layer_says_so() {
        let tar = Tar::new().hardlink("h", "/etc/passwd").bytes();
        let (_dir, result) = apply_to(&tar);
        let msg = result.unwrap_err().to_string();
        assert!(msg.contains("not in this layer"), "{msg}");
        assert!(!msg.contains("No such file"), "{msg}");
    }
}
