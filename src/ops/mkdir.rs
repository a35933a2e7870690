//! WORKDIR's directory: a layer holding the directories of the path that
//! the base lacks (`mkdir -p`, 0755, owned by the stage's USER), as BuildKit's
//! mkdir file op makes it. The layer is there, empty, when nothing was
//! missing: BuildKit's WORKDIR always adds one, and the history counts on it.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kiln_frontend::MkdirOp;

use super::{Engine, EngineError, FsState};
use crate::fsutil::{lexical, resolve_in_root, CopyFailure};
use crate::layer::{entry, LayerWriter};
use crate::users::{Accounts, UserError};

/// Why WORKDIR's directory cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum MkdirError {
    #[error("WORKDIR {path}: /{part} exists and is not a directory")]
    NotADirectory { path: String, part: String },
    #[error("WORKDIR {path}: resolving it in the image")]
    Resolve {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("WORKDIR {path}: the owner (USER {user})")]
    Owner {
        path: String,
        user: String,
        #[source]
        source: Box<UserError>,
    },
    #[error("WORKDIR {path}: writing its layer")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Engine {
    pub(super) fn mkdir(&self, op: &MkdirOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
        let base = &inputs[0];
        let mount = (!base.layers.is_empty()).then(|| self.snapshots.mount(&base.layers, false)).transpose()?;
        let mut writer = LayerWriter::with_snapshot(&self.store)?;
        write_to(op, mount.as_ref().map(|m| m.root.as_path()), writer.tar())?;
        let layer = writer.finish()?;
        Ok(base.with(layer))
    }
}

/// The missing directories of `op.path` in `base` (mounted; `None` for
/// scratch), parents first, into `tar`.
fn write_to<W: Write>(op: &MkdirOp, base: Option<&Path>, tar: &mut tar::Builder<W>) -> Result<(), MkdirError> {
    let path = || op.path.clone();
    // mkdir -p follows the base's symlinks (inside the image), so the
    // directories go where the resolved path leads.
    let rel: PathBuf = match base {
        Some(root) => {
            let host = resolve_in_root(root, Path::new(&op.path))
                .map_err(|source| MkdirError::Resolve { path: path(), source })?;
            host.strip_prefix(root).map(Path::to_owned).unwrap_or_default()
        }
        None => lexical(Path::new(&op.path)).clamped(),
    };
    let (uid, gid) = match op.user.as_str() {
        "" => (0, 0),
        user => base
            .map_or_else(|| Ok(Accounts::default()), Accounts::read)
            .and_then(|a| a.owner(user))
            .map_err(|e| MkdirError::Owner { path: path(), user: user.to_owned(), source: Box::new(e) })?,
    };
    let mut parts: Vec<&Path> = rel.ancestors().filter(|p| !p.as_os_str().is_empty()).collect();
    parts.reverse();
    for part in parts {
        if let Some(meta) = base.and_then(|root| root.join(part).symlink_metadata().ok()) {
            if !meta.is_dir() {
                return Err(MkdirError::NotADirectory { path: path(), part: part.display().to_string() });
            }
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(uid.into());
        h.set_gid(gid.into());
        // Like COPY's parents: a fixed time keeps the layer the same on every build.
        h.set_mtime(0);
        h.set_size(0);
        // No epoch: time 0 is never later than one.
        entry::append(tar, &mut h, part.as_os_str().as_bytes(), None, &[], std::io::empty(), None).map_err(
            |e| match e {
                CopyFailure::Read(source) | CopyFailure::Write(source) => MkdirError::Write { path: path(), source },
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    /// The entries (name, mode, uid, gid) `op` writes on `base`.
    fn entries(op: &MkdirOp, base: Option<&Path>) -> Result<Vec<(String, u32, u64, u64)>, MkdirError> {
        let mut tar = tar::Builder::new(Vec::new());
        write_to(op, base, &mut tar)?;
        let bytes = tar.into_inner().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries = archive.entries().unwrap().map(Result::unwrap);
        Ok(entries
            .map(|e| {
                let h = e.header();
                let name = e.path().unwrap().display().to_string();
                (name, h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap())
            })
            .collect())
    }

    fn op(path: &str, user: &str) -> MkdirOp {
        MkdirOp { path: path.into(), user: user.into() }
    }

    #[test]
    fn only_missing_directories_are_made_owned_by_the_user() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("srv/data")).unwrap();
        fs::write(root.join("etc/passwd"), "app:x:1000:1001::/home/app:/bin/sh\n").unwrap();
        fs::write(root.join("etc/group"), "staff:x:50:\n").unwrap();
        fs::write(root.join("file"), "").unwrap();
        std::os::unix::fs::symlink("/srv", root.join("link")).unwrap();

        let made = |path, user| entries(&op(path, user), Some(root)).unwrap();
        assert_eq!(made("/srv/data", ""), vec![]);
        assert_eq!(
            made("/srv/a/b", "app"),
            [("srv/a".into(), 0o755, 1000, 1001), ("srv/a/b".into(), 0o755, 1000, 1001)]
        );
        assert_eq!(made("/new", "7:staff"), [("new".into(), 0o755, 7, 50)]);
        assert_eq!(made("/link/x", ""), [("srv/x".into(), 0o755, 0, 0)]);
        assert_eq!(entries(&op("/a/b", ""), None).unwrap(), [("a".into(), 0o755, 0, 0), ("a/b".into(), 0o755, 0, 0)]);

        let err = entries(&op("/file/x", ""), Some(root)).unwrap_err().to_string();
        assert_eq!(err, "WORKDIR /file/x: /file exists and is not a directory");
        let err = entries(&op("/y", "nobody"), Some(root)).unwrap_err();
        assert!(
            matches!(&err, MkdirError::Owner { source, .. } if matches!(**source, UserError::NoUser(_))),
            "{err:?}"
        );
    }
}
