//! COPY: the selected files are written straight into a layer tar — no sandbox,
//! no diff. The filesystem copied into is only looked at (mounted read-only) to
//! resolve the destination the way the container would see it: symlinks such as
//! `/bin -> usr/bin` are followed, and an existing directory means "into it".
//!
//! Entries follow the rules of the layer entry writer ([`entry`]), as RUN's
//! do: xattrs are kept (but overlayfs's), and the later names of an inode
//! among the files one COPY writes become hard links to the first, as
//! BuildKit copies them.

mod archive;
mod checksum;
mod dest;
mod mode;
mod pattern;
mod plan;
mod select;

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kiln_frontend::{CopyFrom, CopyOp, InlineFile};
use kiln_solver::Digest;

use crate::context::index::{ContentDigest, ContextIndex, Stat};
use crate::fsutil::{resolve_in_root, CopyFailure, PathError};
use crate::layer::entry::{self, read_xattrs, HardLinks};
use crate::layer::{LayerSink, LayerTar};
use crate::users::{Accounts, UserError};

pub(crate) use checksum::scan;
pub use checksum::{checksum, listing, Listing};
use checksum::{Body, Checksum, Hashing};
use dest::{Kind, Tree};
use mode::Chmod;
use plan::{plan, Planned};
use select::Selected;
pub use select::{select, SourceRoot};

/// Why a COPY failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("COPY failed: file not found in build context or excluded by .dockerignore: {0}")]
    NotInContext(String),
    #[error("COPY failed: {0}: no such file or directory in the source stage or image")]
    NotInSource(String),
    #[error("COPY failed: forbidden path outside the build context: {0}")]
    Outside(String),
    #[error("COPY failed: no source files were specified")]
    NoSources,
    #[error("COPY failed: invalid --chown {0:?}: {1}")]
    Chown(String, String),
    #[error(
        "COPY failed: invalid --chmod {0:?}: expected an octal mode such as 755, or a symbolic one such as u+x or a=rX"
    )]
    Chmod(String),
    #[error("ADD failed: archive {archive}: entry {entry}: {why}")]
    BadArchive { archive: PathBuf, entry: PathBuf, why: &'static str },
    #[error("COPY failed: invalid --exclude: {0}")]
    Exclude(String),
    #[error("COPY failed: copying {0} into a non-directory")]
    NotADirectory(String),
    #[error(
        "COPY failed: cannot copy to non-directory: {0}: the image has a file or symlink there where the source \
         has a folder; remove it first (RUN rm) or copy to another path"
    )]
    FolderOverFile(String),
    #[error(
        "COPY failed: cannot replace to directory {0} with file: the image has a folder there where the source \
         has a file or symlink; remove it first (RUN rm -r) or copy to another path"
    )]
    FileOverFolder(String),
    #[error(
        "COPY failed: {0}: a file named .wh.* would be a whiteout in the image's layer, deleting a file of the \
         image rather than being copied; rename it, or leave it out with .dockerignore or --exclude"
    )]
    Whiteout(String),
    #[error("reading {0}")]
    Read(PathBuf, #[source] io::Error),
    #[error("writing the COPY layer")]
    Write(#[source] io::Error),
    #[error(transparent)]
    Io(#[from] PathError),
    #[error(
        "COPY failed: the build context changed while it was read: its files no longer match the \
         checksum of the step's cache key (build again once they stop changing)"
    )]
    Changed,
    #[error(
        "COPY failed: the build context changed while it was read: the content of {0} no longer matches the \
         checksum of the step's cache key (build again once it stops changing)"
    )]
    ChangedFile(PathBuf),
}

/// The first name an inode with several was written under: its path in the
/// layer (what a link entry names) and below the source root (what the
/// checksum names).
type FirstName = (PathBuf, PathBuf);

/// Ownership and mode overrides of a COPY.
struct Overrides {
    owner: Option<(u32, u32)>,
    chmod: Option<Chmod>,
    keep_owner: bool,
}

/// Write the layer of `op` into `tar`. `base` is the filesystem copied into
/// (mounted; `None` for scratch), `from` where the sources come from (`None`
/// for the files of the Dockerfile itself). Returns the [`checksum`] of what
/// was written, computed from the very bytes that went into the layer: the
/// caller compares it with the checksum the step's cache key was made of.
/// With the `planned` index of `from`, each file's bytes are also checked
/// as it is written against the digest the key was made of, so a file that
/// changed in between is named.
///
/// Each selected source is copied in turn as BuildKit does: into `dest` when
/// `dest` ends in `/` or is a folder by then (in the base, or made by an
/// earlier source), else onto `dest` itself, so that the last of several
/// files onto one file name wins.
///
/// Times later than `epoch` (`SOURCE_DATE_EPOCH`) are written as `epoch`.
pub fn write_layer(
    op: &CopyOp,
    base: Option<&Path>,
    from: Option<&SourceRoot>,
    planned: Option<&ContextIndex>,
    tar: &mut LayerTar,
    epoch: Option<u64>,
) -> Result<Digest, CopyError> {
    let owner = op.chown.as_deref().map(|c| parse_chown(c, base)).transpose()?;
    let chmod =
        op.chmod.as_deref().map(|m| Chmod::parse(m).ok_or_else(|| CopyError::Chmod(m.to_owned()))).transpose()?;
    // --link: the files land as on an empty filesystem (BuildKit copies onto
    // scratch and merges the result): nothing of the base's destination is
    // read, its symlinks not followed, its folders not kept. BuildKit does
    // not link a copy with --chmod: that one is an ordinary copy.
    let base = if op.link && op.chmod.is_none() { None } else { base };
    // The destination inside the image, with symlinks of the base resolved.
    let dest = match base {
        Some(root) => {
            let host =
                resolve_in_root(root, Path::new(&op.dest)).map_err(|e| CopyError::Read(op.dest.clone().into(), e))?;
            host.strip_prefix(root).map(Path::to_owned).unwrap_or_default()
        }
        None => crate::fsutil::lexical(Path::new(&op.dest)).clamped(),
    };
    let keep_owner = from.is_some_and(|f| matches!(f, SourceRoot::Fs { .. }));
    let mut tar = entry::Writer::new(tar, epoch);
    let mut w = Writer {
        tar: &mut tar,
        tree: Tree::new(base),
        o: Overrides { owner, chmod, keep_owner },
        links: HardLinks::default(),
        checksum: Checksum::new(),
        planned,
    };
    let into = op.dest.ends_with('/');
    match (&op.from, from) {
        (CopyFrom::Inline(files), _) => {
            for f in files {
                w.inline(&dest, into, f)?;
            }
        }
        (_, None) => return Err(CopyError::NoSources),
        (_, Some(from)) => {
            for Planned { sel, parents } in plan(from, op)? {
                w.checksum.source(&sel.rel);
                match parents {
                    Some((below, dirs)) => {
                        w.mkdir_all(&dest)?;
                        for (host, rel) in dirs {
                            w.source_dir(&host, &dest.join(&rel), &rel)?;
                        }
                        w.selected(&dest.join(below), false, &sel)?;
                    }
                    None if op.unpack && !sel.is_dir && archive::is_archive(&sel.host) => w.unpack(&dest, &sel)?,
                    None => w.selected(&dest, into, &sel)?,
                }
            }
        }
    }
    Ok(w.checksum.finish())
}

/// The state of one COPY's layer being written.
struct Writer<'a, 'b, 'c> {
    tar: &'a mut Out<'c>,
    tree: Tree<'b>,
    o: Overrides,
    links: HardLinks<FirstName>,
    checksum: Checksum,
    /// The context's index, holding the digest each file had for the cache key.
    planned: Option<&'b ContextIndex>,
}

impl Writer<'_, '_, '_> {
    /// The folders to `dir`, made as BuildKit's MkdirAll makes them: the
    /// missing ones 0755 and owned per --chown.
    fn mkdir_all(&mut self, dir: &Path) -> Result<(), CopyError> {
        let owner = self.o.owner.unwrap_or((0, 0));
        self.tree.mkdir_all(self.tar, dir, owner)
    }

    /// One selected source: a file copied into or onto `dest`, a folder's
    /// contents into it.
    fn selected(&mut self, dest: &Path, into: bool, sel: &Selected) -> Result<(), CopyError> {
        match (into, dest.parent()) {
            (true, _) => self.mkdir_all(dest)?,
            (false, Some(parent)) => self.mkdir_all(parent)?,
            (false, None) => {}
        }
        if !sel.is_dir {
            let target = if self.tree.is_dir(dest) { dest.join(&sel.name) } else { dest.to_owned() };
            if let Some(parent) = target.parent() {
                self.mkdir_all(parent)?;
            }
            if target.as_os_str().is_empty() {
                return Err(CopyError::NotADirectory("/".into()));
            }
            let file = File { host: &sel.host, path: &target, source: &sel.rel, rel: Path::new("") };
            return self.append(file);
        }
        // The folder itself is not written (its destination is), but it is
        // part of the checksum: as the first pass saw it.
        let meta = fs::metadata(&sel.host).map_err(|e| CopyError::Read(sel.host.clone(), e))?;
        self.checksum.entry(Path::new(""), &meta, &[], Body::Empty);
        match self.tree.kind(dest) {
            Some(Kind::Dir) => self.mkdir_all(dest)?,
            Some(Kind::Other) => return Err(CopyError::NotADirectory(format!("/{}", dest.display()))),
            // A new destination folder takes the source folder's mode (and
            // --chmod), as BuildKit copies it.
            None => {
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                self.override_header(&mut h, &meta);
                h.set_size(0);
                append_entry(self.tar, &mut h, dest, None, &[], io::empty(), &sel.host)?;
                self.tree.made(dest, Kind::Dir);
            }
        }
        for (host, rel) in sel.walk()? {
            self.append(File { host: &host, path: &dest.join(&rel), source: &sel.rel, rel: &rel })?;
        }
        Ok(())
    }

    /// A source folder `--parents` keeps on the way to a source (`rel` below
    /// the pivot), written at `path` with its own mode when missing there.
    fn source_dir(&mut self, host: &Path, path: &Path, rel: &Path) -> Result<(), CopyError> {
        let meta = self.checksum.parent(host, rel)?;
        match self.tree.kind(path) {
            Some(Kind::Dir) => self.mkdir_all(path),
            Some(Kind::Other) => Err(CopyError::NotADirectory(format!("/{}", path.display()))),
            None => {
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                self.override_header(&mut h, &meta);
                h.set_size(0);
                append_entry(self.tar, &mut h, path, None, &[], io::empty(), host)?;
                self.tree.made(path, Kind::Dir);
                Ok(())
            }
        }
    }

    /// A heredoc file, copied as a file named after it would be (mode 0644,
    /// as BuildKit makes it, unless --chmod).
    fn inline(&mut self, dest: &Path, into: bool, f: &InlineFile) -> Result<(), CopyError> {
        match (into, dest.parent()) {
            (true, _) => self.mkdir_all(dest)?,
            (false, Some(parent)) => self.mkdir_all(parent)?,
            (false, None) => {}
        }
        let target = if self.tree.is_dir(dest) { dest.join(&f.name) } else { dest.to_owned() };
        if let Some(parent) = target.parent() {
            self.mkdir_all(parent)?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(self.o.chmod.as_ref().map_or(0o644, |c| c.apply(0o644, false)));
        let (uid, gid) = self.o.owner.unwrap_or((0, 0));
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        h.set_mtime(0);
        h.set_size(f.content.len() as u64);
        append_entry(self.tar, &mut h, &target, None, &[], f.content.as_bytes(), Path::new(&f.name))?;
        self.tree.made(&target, Kind::Other);
        Ok(())
    }

    /// ADD of a local archive: its entries extracted into `dest`.
    fn unpack(&mut self, dest: &Path, sel: &Selected) -> Result<(), CopyError> {
        let meta = fs::metadata(&sel.host).map_err(|e| CopyError::Read(sel.host.clone(), e))?;
        let xattrs = read_xattrs(&sel.host)?;
        // BuildKit makes the destination with plain MkdirAll: 0755, root's.
        self.tree.mkdir_all(self.tar, dest, (0, 0))?;
        let file = fs::File::open(&sel.host).map_err(|e| CopyError::Read(sel.host.clone(), e))?;
        let first = self.links.first(&meta, || (dest.to_owned(), sel.rel.clone())).map(|(_, s)| s.clone());
        let owner = self.o.owner;
        let tar = &mut *self.tar;
        let tree = &mut self.tree;
        match first {
            Some(first) => {
                archive::extract(file, (&sel.host, &sel.written), dest, owner, tar, tree)?;
                self.checksum.entry(Path::new(""), &meta, &xattrs, Body::HardLink(&first));
            }
            None => {
                let mut data = Hashing::new(file);
                archive::extract(&mut data, (&sel.host, &sel.written), dest, owner, tar, tree)?;
                let digest = data.finish();
                self.check_planned(&sel.host, &digest)?;
                self.checksum.entry(Path::new(""), &meta, &xattrs, Body::File(&digest));
            }
        }
        Ok(())
    }

    /// The digest the planned index holds for the file at `host` with the
    /// metadata `meta`, when it trusts it (see [`ContextIndex::lookup`]).
    fn known_digest(&self, host: &Path, meta: &fs::Metadata) -> Option<ContentDigest> {
        let index = self.planned?;
        index.lookup(crate::fsutil::below(host, index.root())?, &Stat::of(meta))
    }

    /// A file whose bytes are not those its step's cache key was made of
    /// fails the step, named.
    fn check_planned(&self, host: &Path, written: &ContentDigest) -> Result<(), CopyError> {
        let Some(index) = self.planned else { return Ok(()) };
        let Some(rel) = crate::fsutil::below(host, index.root()) else { return Ok(()) };
        match index.planned(rel) {
            Some(planned) if planned != *written => Err(changed(self.planned, host)),
            _ => Ok(()),
        }
    }

    /// --chown, --chmod and the owner rule of the source applied to `h`.
    fn override_header(&self, h: &mut tar::Header, meta: &fs::Metadata) {
        if !self.o.keep_owner {
            h.set_uid(0);
            h.set_gid(0);
        }
        if let Some((uid, gid)) = self.o.owner {
            h.set_uid(uid.into());
            h.set_gid(gid.into());
        }
        if let Some(chmod) = &self.o.chmod {
            if !meta.file_type().is_symlink() {
                h.set_mode(chmod.apply(meta.mode(), meta.is_dir()));
            }
        }
    }

    /// Append `file`; a later name of an inode already written becomes a
    /// hard link to the first.
    fn append(&mut self, file: File<'_>) -> Result<(), CopyError> {
        let File { host, path, source, rel } = file;
        let meta = fs::symlink_metadata(host).map_err(|e| CopyError::Read(host.to_owned(), e))?;
        let xattrs = read_xattrs(host)?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        self.override_header(&mut h, &meta);
        // BuildKit copies a folder only into a folder, and will not replace a
        // folder with anything else; a layer entry would silently replace.
        match (self.tree.kind(path), meta.is_dir()) {
            (Some(Kind::Other), true) => return Err(CopyError::FolderOverFile(format!("/{}", path.display()))),
            (Some(Kind::Dir), false) => return Err(CopyError::FileOverFolder(format!("/{}", path.display()))),
            _ => {}
        }
        self.tree.made(path, if meta.is_dir() { Kind::Dir } else { Kind::Other });
        let target = meta.file_type().is_symlink().then(|| fs::read_link(host)).transpose();
        let target = target.map_err(|e| CopyError::Read(host.to_owned(), e))?;
        let first = self.links.first(&meta, || (path.to_owned(), source.join(rel))).cloned();
        // What the context index vouches for by this very stat, asked before
        // the tar is borrowed.
        let known = if first.is_none() && meta.is_file() { self.known_digest(host, &meta) } else { None };
        let planned = self.planned;
        let tar = &mut *self.tar;
        // The digest of a file's bytes, hashed as they are written.
        let written = match &first {
            Some((first, _)) if first != path => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                append_entry(tar, &mut h, path, Some(first), &xattrs, io::empty(), host)?;
                None
            }
            _ if target.is_some() || !meta.is_file() => {
                h.set_size(0);
                append_entry(tar, &mut h, path, target.as_deref(), &xattrs, io::empty(), host)?;
                None
            }
            _ => {
                let f = fs::File::open(host).map_err(|e| CopyError::Read(host.to_owned(), e))?;
                // The size the header says, from the same stat as the checksum's.
                h.set_size(meta.size());
                if let Some(known) = known {
                    // The context index vouches for these bytes by the file's
                    // metadata, as it did for the cache key: not hashed again,
                    // but the file must not change while it is read.
                    let mut f = f;
                    append_entry(tar, &mut h, path, None, &xattrs, &mut f, host)?;
                    let after = f.metadata().map_err(|e| CopyError::Read(host.to_owned(), e))?;
                    if Stat::of(&after) != Stat::of(&meta) {
                        return Err(changed(planned, host));
                    }
                    Some(known)
                } else if first.is_none() {
                    let mut data = Hashing::new(f);
                    append_entry(tar, &mut h, path, None, &xattrs, &mut data, host)?;
                    Some(data.finish())
                } else {
                    // Two sources landing on one path: the inode again under its
                    // own first name, written whole (a link to itself would not
                    // extract), its bytes hashed once, as the first pass does.
                    append_entry(tar, &mut h, path, None, &xattrs, f, host)?;
                    None
                }
            }
        };
        if let Some(digest) = &written {
            self.check_planned(host, digest)?;
        }
        let body = match (&first, &target, &written) {
            (Some((_, first_source)), _, _) => Body::HardLink(first_source),
            (None, Some(target), _) => Body::Symlink(target),
            (None, None, Some(digest)) => Body::File(digest),
            (None, None, None) => Body::Empty,
        };
        self.checksum.entry(rel, &meta, &xattrs, body);
        Ok(())
    }
}

/// One file a COPY writes.
struct File<'a> {
    /// Its path on the host.
    host: &'a Path,
    /// Its path in the layer.
    path: &'a Path,
    /// The selected source it is part of, relative to the source root.
    source: &'a Path,
    /// Its path below that source, as the checksum names it.
    rel: &'a Path,
}

/// Where a COPY's entries go.
type Out<'a> = entry::Writer<'a, LayerSink>;

/// Append one entry through the layer entry writer; a failed read is named by `host`.
/// The file at `host` changed since its step's cache key was made from the
/// `planned` index.
fn changed(planned: Option<&ContextIndex>, host: &Path) -> CopyError {
    let below_root = planned.and_then(|index| crate::fsutil::below(host, index.root()));
    CopyError::ChangedFile(below_root.unwrap_or(host).to_owned())
}

fn append_entry(
    tar: &mut Out<'_>,
    h: &mut tar::Header,
    path: &Path,
    link: Option<&Path>,
    xattrs: &[(String, Vec<u8>)],
    data: impl io::Read,
    host: &Path,
) -> Result<(), CopyError> {
    // A context could otherwise delete the image's files by naming one of
    // its own `.wh.x`: the layer format has no way to say "a file, literally".
    if path.iter().any(|c| c.as_bytes().starts_with(b".wh.")) {
        return Err(CopyError::Whiteout(format!("/{}", path.display())));
    }
    let link = link.map(|l| l.as_os_str().as_bytes());
    tar.append(h, path.as_os_str().as_bytes(), link, xattrs, data).map_err(|e| match e {
        CopyFailure::Read(e) => CopyError::Read(host.to_owned(), e),
        CopyFailure::Write(e) => CopyError::Write(e),
    })
}

/// `--chown=user[:group]`: numbers, or names looked up in the base's /etc/passwd and /etc/group.
fn parse_chown(spec: &str, base: Option<&Path>) -> Result<(u32, u32), CopyError> {
    let accounts = base.map(Accounts::read).transpose();
    accounts.and_then(|a| a.unwrap_or_default().owner(spec)).map_err(|e| {
        let why = match e {
            UserError::NoUser(_) => "no such user in the image's /etc/passwd".to_owned(),
            UserError::NoGroup(_) => "no such group in the image's /etc/group".to_owned(),
            e => e.to_string(),
        };
        CopyError::Chown(spec.to_owned(), why)
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod chown_tests {
    use super::*;

    #[test]
    fn chown_ids() {
        let base = tempfile::tempdir().unwrap();
        fs::create_dir(base.path().join("etc")).unwrap();
        let passwd = "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\nhuge:x:99999999999:1::/:/bin/sh\n\
                      minus:x:4294967295:1::/:/bin/sh\nnogid:x:7\n";
        fs::write(base.path().join("etc/passwd"), passwd).unwrap();
        fs::write(base.path().join("etc/group"), "wheel:x:10:\nbig:x:4294967296:\n").unwrap();
        let e = |why: &str| Err(why.to_owned());
        for (spec, want) in [
            ("0", Ok((0, 0))),
            ("1000:50", Ok((1000, 50))),
            ("4294967294:4294967294", Ok((4294967294, 4294967294))),
            ("app", Ok((1000, 1001))),
            ("app:wheel", Ok((1000, 10))),
            ("7:wheel", Ok((7, 10))),
            ("99999999999:1", e("uid 99999999999 is out of range: ids go from 0 to 4294967294")),
            ("1:99999999999", e("gid 99999999999 is out of range: ids go from 0 to 4294967294")),
            ("4294967295", e("uid 4294967295 is out of range: ids go from 0 to 4294967294")),
            ("0:4294967295", e("gid 4294967295 is out of range: ids go from 0 to 4294967294")),
            ("18446744073709551617", e("uid 18446744073709551617 is out of range: ids go from 0 to 4294967294")),
            ("huge", e("the image's /etc/passwd gives huge the uid 99999999999 is out of range: ids go from 0 to 4294967294")),
            ("minus", e("the image's /etc/passwd gives minus the uid 4294967295 is out of range: ids go from 0 to 4294967294")),
            ("nogid", e("the image's /etc/passwd gives nogid no numeric gid")),
            ("0:big", e("the image's /etc/group gives big the gid 4294967296 is out of range: ids go from 0 to 4294967294")),
            ("-1", e("no such user in the image's /etc/passwd")),
            ("app:nobody", e("no such group in the image's /etc/group")),
        ] {
            let got = parse_chown(spec, Some(base.path())).map_err(|err| match err {
                CopyError::Chown(s, why) if s == spec => why,
                other => panic!("{spec}: {other}"),
            });
            assert_eq!(got, want, "--chown={spec}");
        }
    }
}
