//! Snapshots: every layer is extracted once into `snapshots/<diffID hex>/`, and a
//! filesystem made of layers is an overlayfs mount with those folders as lower
//! dirs — plus a fresh upper dir when it is writable, which then holds exactly
//! the changes made through the mount.
//!
//! Mounts are made in kiln's private mount namespace (see `main`), so one that is
//! not unmounted (a crash, a kill) vanishes with the process instead of leaking.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use tempfile::TempDir;

use crate::layer::{extract, Layer, LayerError};
use crate::store::Store;

/// Errors of snapshots and mounts.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("extracting layer {0}")]
    Extract(String, #[source] LayerError),
    #[error("mounting an overlay of {layers} layer(s) on {target}")]
    Mount {
        layers: usize,
        target: PathBuf,
        #[source]
        source: nix::errno::Errno,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.to_owned();
    move |source| SnapshotError::Io { action, path, source }
}

/// Extracts layers and mounts them.
#[derive(Clone)]
pub struct Snapshotter {
    store: Store,
}

/// A mounted filesystem; unmounted and removed on drop.
pub struct Mount {
    /// Where the filesystem is mounted.
    pub root: PathBuf,
    /// The upper dir of a writable mount: the changes.
    pub upper: Option<PathBuf>,
    _dir: TempDir,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = umount2(&self.root, MntFlags::MNT_DETACH);
    }
}

impl Snapshotter {
    pub fn new(store: &Store) -> Self {
        Self { store: store.clone() }
    }

    /// The folder holding `layer` extracted, extracting it the first time.
    pub fn ensure(&self, layer: &Layer) -> Result<PathBuf, SnapshotError> {
        let dir = self.store.snapshots_dir().join(layer.diff_id.hex());
        if dir.is_dir() {
            return Ok(dir);
        }
        // Extract beside it and rename, so a snapshot folder is always complete;
        // a concurrent extraction of the same layer loses the rename harmlessly.
        let tmp = tempfile::Builder::new()
            .prefix(".extract-")
            .tempdir_in(self.store.snapshots_dir())
            .map_err(io("creating a folder in", &self.store.snapshots_dir()))?;
        let blob = self.store.blob_path(&layer.digest);
        extract::apply_blob(&blob, tmp.path(), layer.digest.as_str())
            .map_err(|e| SnapshotError::Extract(layer.digest.to_string(), e))?;
        match fs::rename(tmp.path(), &dir) {
            Ok(()) => {
                let _ = tmp.keep();
            }
            Err(_) if dir.is_dir() => {}
            Err(e) => return Err(io("renaming into", &dir)(e)),
        }
        Ok(dir)
    }

    /// Mount `layers` (bottom first). Writable mounts get an upper dir.
    pub fn mount(&self, layers: &[Layer], writable: bool) -> Result<Mount, SnapshotError> {
        let mut lowers = layers.iter().map(|l| self.ensure(l)).collect::<Result<Vec<_>, _>>()?;
        lowers.reverse(); // overlayfs lists the top layer first
        let dir = tempfile::Builder::new()
            .prefix("mnt-")
            .tempdir_in(self.store.work_dir())
            .map_err(io("creating a folder in", &self.store.work_dir()))?;
        let root = dir.path().join("merged");
        let empty = dir.path().join("empty");
        for d in [&root, &empty] {
            fs::create_dir(d).map_err(io("creating", d))?;
        }
        // An empty bottom layer: overlayfs needs two lower dirs when it has no upper
        // dir, and one when the stack is empty (FROM scratch).
        lowers.push(empty);
        let lowerdir = lowers.iter().map(|p| escape(p)).collect::<Vec<_>>().join(":");
        // userxattr: opaque-dir markers live in user.overlay.* xattrs, the only ones
        // an overlay mounted inside a user namespace (rootless) can use, so every
        // mount — and every extracted snapshot — agrees on one format.
        let mut data = format!("lowerdir={lowerdir},userxattr");
        let mut upper = None;
        if writable {
            let (u, w) = (dir.path().join("upper"), dir.path().join("work"));
            for d in [&u, &w] {
                fs::create_dir(d).map_err(io("creating", d))?;
            }
            data.push_str(&format!(",upperdir={},workdir={}", escape(&u), escape(&w)));
            upper = Some(u);
        }
        let flags = if writable { MsFlags::empty() } else { MsFlags::MS_RDONLY };
        mount(Some("overlay"), &root, Some("overlay"), flags, Some(data.as_str()))
            .map_err(|source| SnapshotError::Mount { layers: layers.len(), target: root.clone(), source })?;
        Ok(Mount { root, upper, _dir: dir })
    }
}

/// overlayfs separates options with `,` and lower dirs with `:`; escape both.
fn escape(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "\\\\").replace(':', "\\:").replace(',', "\\,")
}
