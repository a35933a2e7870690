//! What a COPY's destination holds as its layer is written: the base's files
//! (mounted read-only), overlaid with the entries written so far.
//!
//! A folder of the base that the layer writes below is written into the
//! layer too, with the base's own mode, owner and xattrs: the layer's
//! extraction would otherwise make it 0755, and in the overlay the upper
//! folder's attributes are the ones seen (`COPY x /tmp/` must leave /tmp 1777).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{append_entry, CopyError, Out};
use crate::layer::entry::read_xattrs;

/// What a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Dir,
    /// A file, symlink or node: never gone into.
    Other,
}

/// The destination filesystem as the layer changes it.
pub(super) struct Tree<'a> {
    base: Option<&'a Path>,
    /// What this layer wrote, by path below the root.
    made: HashMap<PathBuf, Kind>,
}

impl<'a> Tree<'a> {
    /// `base` is the mounted filesystem copied into, `None` for an empty one.
    pub(super) fn new(base: Option<&'a Path>) -> Self {
        Self { base, made: HashMap::new() }
    }

    /// What `rel` (below the root) holds now, if anything. A symlink of the
    /// base is not followed: it is no folder to copy into.
    pub(super) fn kind(&self, rel: &Path) -> Option<Kind> {
        if rel.as_os_str().is_empty() {
            return Some(Kind::Dir);
        }
        if let Some(kind) = self.made.get(rel) {
            return Some(*kind);
        }
        let meta = self.base?.join(rel).symlink_metadata().ok()?;
        Some(if meta.is_dir() { Kind::Dir } else { Kind::Other })
    }

    pub(super) fn is_dir(&self, rel: &Path) -> bool {
        self.kind(rel) == Some(Kind::Dir)
    }

    /// Record that the layer wrote `rel`.
    pub(super) fn made(&mut self, rel: &Path, kind: Kind) {
        self.made.insert(rel.to_owned(), kind);
    }

    /// Make sure `dir` and its parents are folders: each missing one is
    /// written 0755 and owned by `owner`, each of the base's written as the
    /// base has it; a file on the way is an error.
    pub(super) fn mkdir_all(&mut self, tar: &mut Out<'_>, dir: &Path, owner: (u32, u32)) -> Result<(), CopyError> {
        let mut chain: Vec<&Path> = dir.ancestors().filter(|p| !p.as_os_str().is_empty()).collect();
        chain.reverse();
        for path in chain {
            if self.made.get(path) == Some(&Kind::Dir) {
                continue;
            }
            let mut h = tar::Header::new_gnu();
            let mut xattrs = Vec::new();
            match self.kind(path) {
                Some(Kind::Other) => return Err(CopyError::NotADirectory(format!("/{}", path.display()))),
                Some(Kind::Dir) => {
                    let host = self.base.map(|b| b.join(path)).unwrap_or_default();
                    let meta = fs::symlink_metadata(&host).map_err(|e| CopyError::Read(host.clone(), e))?;
                    h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
                    xattrs = read_xattrs(&host)?;
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_uid(owner.0.into());
                    h.set_gid(owner.1.into());
                    h.set_mtime(0);
                }
            }
            h.set_size(0);
            append_entry(tar, &mut h, path, None, &xattrs, io::empty(), path)?;
            self.made(path, Kind::Dir);
        }
        Ok(())
    }
}
