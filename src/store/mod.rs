//! The local store: a content store of blobs and an image store, laid out so the
//! `oci/` folder is a valid OCI image layout (skopeo, umoci and friends read it as
//! `oci:<root>/oci:<name>`), plus kiln's own state beside it.
//!
//! ```text
//! <root>/oci/{oci-layout,index.json,blobs/sha256/…}   the OCI image layout
//! <root>/ingest/                                      blobs being written
//! <root>/snapshots/<diffID hex>/                      layers extracted once
//! <root>/snapshots/l/<short id>                       short links to them, for overlay's lowerdir
//! <root>/cache/<cache key hex>.json                   build cache: key → result
//! <root>/registry/sources/<blob hex>                  where a blob was seen on registries (mounts)
//! <root>/registry/compressed/<diffID hex>.<alg>       the compressed copy of a layer (its digest)
//! <root>/downloads/{urls,blobs}/                      ADD <url> answers and contents
//! <root>/cache-mounts/                                RUN --mount=type=cache folders
//! <root>/work/                                        scratch space of running steps
//! <root>/store.lock                                   runs shared, garbage collection exclusive (`crate::gc`)
//! <root>/snapshot-sizes.json                          what each snapshot takes on disk (`crate::gc`)
//! ```
//!
//! What no image or cache entry holds is removed by [`crate::gc`], which owns reachability.

mod blob_pipe;
mod blobs;
mod images;
pub mod reference;
pub mod trash;

use std::fs;
use std::path::{Path, PathBuf};

#[cfg(test)]
pub(crate) use blob_pipe::{cached_bytes, takes_direct_writes};
pub(crate) use blobs::{write_atomic, write_hint};
pub use blobs::{BlobWriter, Staged};
pub use images::{StoredImage, Untagging};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error("blob {expected} failed verification: its content hashes to {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {0} is not in the store")]
    MissingBlob(String),
    #[error("{what} {digest} is not valid JSON")]
    Json {
        what: &'static str,
        digest: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("no image named {0:?} (see `kiln images`)")]
    NoSuchImage(String),
    #[error("cannot remove {name:?}: {why}")]
    InUse { name: String, why: String },
    #[error("the image ID {id:?} is ambiguous: it starts the IDs of {}; write more of it", .matches.join(", "))]
    AmbiguousId { id: String, matches: Vec<String> },
    #[error("the image {id:?} has several names ({}): remove them by name", .names.join(", "))]
    ManyNames { id: String, names: Vec<String> },
    #[error("invalid image name {0:?}: {1}")]
    BadName(String, &'static str),
}

pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    crate::fsutil::io_at(action, path)
}

/// The name prefix of a temporary file or folder owned by this process:
/// `<kind>.<pid>.`, so a later kiln can tell what a killed one left behind.
pub fn temp_prefix(kind: &str) -> String {
    format!("{kind}.{}.", std::process::id())
}

/// Remove what processes that are gone left in `dir` (see [`temp_prefix`]).
/// Their mounts went with them (kiln mounts in a private namespace), so only
/// files and folders remain, and nothing in use is touched.
pub(crate) fn sweep_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.trim_start_matches('.').split('.').nth(1)?.parse::<i32>().ok())
        else {
            continue;
        };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH);
        if gone {
            let path = entry.path();
            let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        }
    }
}

/// Create the store's root folder 0700, or tighten an existing one to it.
/// Snapshots hold image files as the layers made them — setuid binaries,
/// device nodes, folders of any mode — so nobody but the store's owner may
/// reach anything below the root, whatever modes the layers carry.
fn private_root(root: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_err("creating", parent))?;
    }
    match fs::DirBuilder::new().mode(0o700).create(root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && root.is_dir() => {}
        Err(e) => return Err(io_err("creating", root)(e)),
    }
    // The mode asked of mkdir passes through the umask; set it outright.
    let mode = fs::metadata(root).map_err(io_err("inspecting", root))?.permissions().mode();
    if mode & 0o7777 != 0o700 {
        fs::set_permissions(root, fs::Permissions::from_mode(0o700)).map_err(io_err("making private", root))?;
    }
    Ok(())
}

/// The store at one root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Open the store at `root`, creating its folders when missing.
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        let store = Store { root: root.to_owned() };
        private_root(root)?;
        for dir in ["oci/blobs/sha256", "ingest", "snapshots", "cache", "work"] {
            let p = root.join(dir);
            fs::create_dir_all(&p).map_err(io_err("creating", &p))?;
        }
        let layout = store.layout().join("oci-layout");
        if !layout.exists() {
            blobs::write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = store.layout().join("index.json");
        if !index.exists() {
            images::write_index(&index, &images::empty_index())?;
        }
        for dir in ["ingest", "work", "snapshots"] {
            sweep_stale(&root.join(dir));
        }
        Ok(store)
    }

    /// The store's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The OCI image layout folder.
    pub fn layout(&self) -> PathBuf {
        self.root.join("oci")
    }

    /// Where extracted layers live.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// Scratch space for running steps; everything under it is disposable.
    pub fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    /// Build cache entries.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// What each build context's files held when last read
    /// (`context::index`): a cache, safe to delete.
    pub fn context_index_dir(&self) -> PathBuf {
        self.root.join("context-index")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_sweeps_what_dead_processes_left_but_not_what_live_ones_use() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path()).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!("work/mnt.{dead}.abc"));
        let live = dir.path().join(format!("work/{}x", temp_prefix("mnt")));
        let stale_blob = dir.path().join(format!("ingest/blob.{dead}.x"));
        let stale_extract = dir.path().join(format!("snapshots/.extract.{dead}.x"));
        for d in [&stale, &live, &stale_extract] {
            fs::create_dir_all(d.join("sub")).unwrap();
        }
        fs::write(&stale_blob, b"half").unwrap();
        Store::open(dir.path()).unwrap();
        assert!(!stale.exists() && !stale_blob.exists() && !stale_extract.exists());
        assert!(live.exists());
    }
}
