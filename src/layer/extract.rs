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
//!   written below it, so `a -> /etc` followed by `a/passwd` is refused (an
//!   entry changes only its own path, so the next entry of the same parent
//!   folder reuses the check; an entry of any other parent walks again);
//! - files are created with `O_EXCL` after removing what was there, so a final
//!   component that is a symlink is replaced, never followed.
//!
//! The folder is written by this process alone while it is applied, so checking
//! each path before using it is enough; nobody else races us inside it.
//!
//! OCI whiteouts become overlayfs whiteouts as they are written: `dir/.wh.name`
//! becomes a 0:0 character device `dir/name`, and `dir/.wh..wh..opq` becomes the
//! opaque xattr on `dir`. Flattening an image into one folder (`kiln build -o
//! type=local`) applies its layers one over the other with [`Stack::Flatten`]
//! instead: there a whiteout deletes what it hides in the layers below, under
//! the same rules.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

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

/// How a layer meets what is below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// Into an empty snapshot folder that overlayfs stacks: whiteouts are kept
    /// as overlay whiteouts.
    Overlay,
    /// Onto the folder the layers below were applied to: whiteouts delete
    /// what they hide (an opaque marker, every entry of its folder that this
    /// layer did not write).
    Flatten,
}

/// Apply the layer blob at `path` (plain tar, gzip or zstd, told apart by
/// their magic bytes) to the empty folder `root`.
pub fn apply_blob(path: &Path, root: &Path, layer_name: &str) -> Result<(), LayerError> {
    apply_blob_as(path, root, layer_name, Stack::Overlay)
}

/// [`apply_blob`], the layer meeting what `root` holds as `stack` says.
pub fn apply_blob_as(path: &Path, root: &Path, layer_name: &str, stack: Stack) -> Result<(), LayerError> {
    let read_err = |source| LayerError::Read { layer: layer_name.to_owned(), source };
    let file = File::open(path).map_err(io_err("opening", path))?;
    let tar = super::compress::tar_stream(BufReader::new(file)).map_err(read_err)?;
    apply_as(tar, root, layer_name, stack)
}

/// Apply an uncompressed layer tar read from `reader` to the empty folder
/// `root`. `layer_name` names the layer in errors. Fails on the first entry
/// that would write outside `root`, leaving `root` partly written: callers
/// extract into a temporary folder and discard it on error.
pub fn apply(reader: impl Read, root: &Path, layer_name: &str) -> Result<(), LayerError> {
    apply_as(reader, root, layer_name, Stack::Overlay)
}

/// [`apply_blob_as`] with [`Stack::Flatten`] for a tar that is not an image's
/// layer (a build context): the owners of its files do not matter (COPY sets
/// its own), so an owner this process cannot give is left alone, not an error.
pub fn apply_blob_any_owner(path: &Path, root: &Path, name: &str) -> Result<(), LayerError> {
    let read_err = |source| LayerError::Read { layer: name.to_owned(), source };
    let file = File::open(path).map_err(io_err("opening", path))?;
    let tar = super::compress::tar_stream(BufReader::new(file)).map_err(read_err)?;
    apply_with(tar, root, name, Stack::Flatten, false)
}

fn apply_as(reader: impl Read, root: &Path, layer_name: &str, stack: Stack) -> Result<(), LayerError> {
    apply_with(reader, root, layer_name, stack, true)
}

/// [`apply`], taking big files that are unchanged from the snapshot folder
/// `donor` by hard link (see [`super::donor`]).
pub fn apply_with_donor(
    reader: impl Read,
    root: &Path,
    layer_name: &str,
    donor: Option<&Path>,
) -> Result<(), LayerError> {
    run(reader, Applier::new(root, layer_name, Stack::Overlay, true, donor))
}

fn apply_with(reader: impl Read, root: &Path, layer_name: &str, stack: Stack, owners: bool) -> Result<(), LayerError> {
    run(reader, Applier::new(root, layer_name, stack, owners, None))
}

fn run(reader: impl Read, mut applier: Applier<'_>) -> Result<(), LayerError> {
    let layer_name = applier.layer;
    let read_err = |source| LayerError::Read { layer: layer_name.to_owned(), source };
    // Bounded: a layer may carry a long name record of any size, which tar-rs
    // would read whole into memory.
    let mut archive = tar::Archive::new(super::bounded::Bounded::new(reader));
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
    /// With [`Stack::Flatten`], every path this layer wrote: what an opaque
    /// marker keeps.
    written: Option<HashSet<PathBuf>>,
    /// Whether each file must get its entry's owner (see [`apply_blob_any_owner`]).
    owners: bool,
    /// A snapshot folder whose identical big files are linked, not written.
    donor: Option<&'a Path>,
    /// The parent (relative) of the last entry, found a chain of real
    /// folders by [`Applier::make_parents`]. An entry changes only its own
    /// path, a child of that parent: the chain holds for the next entry of
    /// the same parent (most of them: a tar lists a folder's files
    /// together), which is spared the walk. Any other parent is walked.
    checked_parent: Option<PathBuf>,
    /// The donor's side of the same: whether the donor holds the last
    /// entry's parent as real folders. The donor does not change meanwhile.
    donor_parent: super::donor::ParentSeen,
}

impl<'a> Applier<'a> {
    fn new(root: &'a Path, layer: &'a str, stack: Stack, owners: bool, donor: Option<&'a Path>) -> Self {
        let written = (stack == Stack::Flatten).then(HashSet::new);
        Applier {
            root,
            layer,
            dir_times: Vec::new(),
            written,
            owners,
            donor,
            checked_parent: None,
            donor_parent: Default::default(),
        }
    }

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
                if self.written.is_some() {
                    return self.remove_lower(&parent);
                }
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
            if self.written.is_some() {
                return Ok(());
            }
            // A whiteout is never skipped: losing one would resurrect a deleted file.
            return mknod(&path, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(|e| io_err("creating whiteout", &path)(e.into()));
        }

        let path = parent.join(OsStr::from_bytes(base));
        let is_dir = kind == EntryType::Directory;
        let kept_dir = self.remove(&path, is_dir)?;
        match kind {
            EntryType::Regular | EntryType::Continuous if self.donated(&rel, &meta, &mut entry, &path)? => {
                self.wrote(path);
                return Ok(());
            }
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
                fs::hard_link(&target, &path).map_err(io_err("hardlinking", &path))?;
                self.wrote(path);
                return Ok(());
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
            self.dir_times.push((path.clone(), meta.mtime));
        }
        self.wrote(path);
        Ok(())
    }

    /// Whether the donor's file took the place of the regular file `entry`
    /// at `path`, with all its metadata. When it could not, but the bytes
    /// were read, the file is written from them and its metadata set.
    fn donated<R: Read>(
        &mut self,
        rel: &Path,
        meta: &Meta,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
    ) -> Result<bool, LayerError> {
        let Some(root) = self.donor.filter(|_| meta.xattrs.is_empty() && self.owners) else {
            return Ok(false);
        };
        let wanted = super::donor::Wanted {
            rel,
            size: entry.size(),
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            mtime: &meta.mtime,
        };
        let Some(found) = super::donor::candidate(root, &wanted, &mut self.donor_parent) else {
            return Ok(false);
        };
        let linked = super::donor::link_or_write(entry, found, path).map_err(|e| match e {
            crate::fsutil::CopyFailure::Read(e) => self.read_err(e),
            crate::fsutil::CopyFailure::Write(e) => io_err("writing", path)(e),
        })?;
        if !linked {
            self.set_meta(path, meta, EntryType::Regular)?;
        }
        Ok(true)
    }

    /// Note that this layer wrote `path` (only [`Stack::Flatten`] asks).
    fn wrote(&mut self, path: PathBuf) {
        if let Some(written) = &mut self.written {
            written.insert(path);
        }
    }

    /// Remove what the layers below left in `dir`: every entry this layer did
    /// not write, and below the folders it did, the same.
    fn remove_lower(&self, dir: &Path) -> Result<(), LayerError> {
        let written = self.written.as_ref().expect("only flattening removes lower entries");
        for entry in fs::read_dir(dir).map_err(io_err("reading", dir))? {
            let path = entry.map_err(io_err("reading", dir))?.path();
            if !written.contains(&path) {
                self.remove(&path, false)?;
            } else if fs::symlink_metadata(&path).map_err(io_err("inspecting", &path))?.is_dir() {
                self.remove_lower(&path)?;
            }
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
    fn make_parents(&mut self, rel: &Path, name: &str) -> Result<PathBuf, LayerError> {
        let mut dir = self.root.to_owned();
        let Some(parent) = rel.parent() else {
            return Ok(dir);
        };
        if self.checked_parent.as_deref() == Some(parent) {
            dir.push(parent);
            return Ok(dir);
        }
        self.checked_parent = None;
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
                    fs::DirBuilder::new().mode(0o755).create(&dir).map_err(io_err("creating", &dir))?;
                    self.wrote(dir.clone());
                }
                Err(e) => return Err(io_err("inspecting", &dir)(e)),
            }
        }
        self.checked_parent = Some(parent.to_owned());
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
            Ok(()) => {}
            // EINVAL: the id is not mapped in our user namespace (rootless
            // without a big enough subordinate range); EPERM: we may not give
            // files away. Keeping the file ours would silently make it root's
            // in the image, so the layer cannot be used here.
            Err(Errno::EINVAL) | Err(Errno::EPERM) if !self.owners => {}
            Err(Errno::EINVAL) | Err(Errno::EPERM) => {
                let rel = path.strip_prefix(self.root).unwrap_or(path);
                let mapping = crate::sandbox::userns::IdMapping::current();
                return Err(LayerError::Unmapped(Box::new(super::UnmappedOwner {
                    layer: self.layer.to_owned(),
                    entry: format!("/{}", rel.display()),
                    uid: meta.uid,
                    gid: meta.gid,
                    hint: mapping.more_ids_hint().unwrap_or_else(|| "kiln may not give files away here".into()),
                })));
            }
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
pub(crate) fn parse_pax_time(value: &str) -> Option<TimeSpec> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().ok()? };
    Some(TimeSpec::new(secs, nanos))
}

pub(super) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LayerError {
    crate::fsutil::io_at(action, path)
}

// The tests are long enough to need their own file, kept beside this one.
#[cfg(test)]
#[path = "extract_tests.rs"]
mod tests;
