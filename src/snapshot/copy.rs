//! The copy snapshotter: no mount at all. A filesystem is a full copy of its
//! layers (each applied over the ones below, whiteouts deleting what they
//! hide: [`Stack::Flatten`]), and a step's changes are found afterwards by
//! comparing the folder with what it held before — docker's vfs driver and
//! containers-storage's "naive diff".
//!
//! What "before" was is a [`Baseline`]: for every path, the identity of the
//! inode there (device, number, birth time) and its ctime. The kernel sets a
//! ctime on every change of content or metadata, and nothing can set it back,
//! so an inode whose ctime is the recorded one is unchanged. ctime has the
//! granularity of the kernel's clock tick, so the baseline is only handed out
//! once the clock has moved past the newest ctime it holds: whatever the step
//! changes later gets a later ctime.
//!
//! The layer is what an overlay's upper folder would have held, in the same
//! order: changed and new entries, the folders above them, a `.wh.` whiteout
//! for each deleted name, and `.wh..wh..opq` on a folder that replaced
//! another (a new inode where a folder or anything else was).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::layer::diff::{append_entry, append_whiteout};
use crate::layer::entry::{HardLinks, Writer};
use crate::layer::extract::{self, Stack};
use crate::layer::{Layer, LayerError};
use crate::store::Store;

use super::SnapshotError;

/// One inode as the baseline saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ident {
    dev: u64,
    ino: u64,
    born: Option<SystemTime>,
    ctime: (i64, i64),
    is_dir: bool,
    /// Mode, owner and group: what makes a folder changed (see [`Walk::dir`]).
    mode_owner: (u32, u32, u32),
}

impl Ident {
    fn of(meta: &fs::Metadata) -> Self {
        Ident {
            dev: meta.dev(),
            ino: meta.ino(),
            born: meta.created().ok(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            is_dir: meta.is_dir(),
            mode_owner: (meta.mode(), meta.uid(), meta.gid()),
        }
    }

    /// The same inode (inode numbers are reused; birth times tell them apart
    /// where the filesystem keeps them).
    fn same_inode(&self, other: &Ident) -> bool {
        (self.dev, self.ino, self.born) == (other.dev, other.ino, other.born)
    }
}

/// What the copy held before the step ran.
pub(super) struct Baseline {
    /// Every path below the root, relative.
    entries: HashMap<PathBuf, Ident>,
    /// Each folder's names, sorted as the diff walks them.
    children: HashMap<PathBuf, Vec<OsString>>,
}

/// Apply `layers` (bottom first) to the empty folder `root`.
pub(super) fn populate(store: &Store, layers: &[Layer], root: &Path) -> Result<(), SnapshotError> {
    for layer in layers {
        let blob = store.blob_path(&layer.digest);
        extract::apply_blob_as(&blob, root, layer.digest.as_str(), Stack::Flatten)
            .map_err(|e| SnapshotError::Extract(layer.digest.to_string(), e))?;
    }
    Ok(())
}

impl Baseline {
    /// Record `root`, then wait for the clock to pass its newest ctime. `scratch`
    /// is a folder on the same filesystem, outside `root`, to read the clock.
    pub(super) fn record(root: &Path, scratch: &Path) -> Result<Self, SnapshotError> {
        let mut baseline = Baseline { entries: HashMap::new(), children: HashMap::new() };
        let mut newest = (0, 0);
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            let dir = root.join(&rel);
            let mut names = Vec::new();
            for entry in fs::read_dir(&dir).map_err(io("reading", &dir))? {
                let entry = entry.map_err(io("reading", &dir))?;
                let path = entry.path();
                let meta = fs::symlink_metadata(&path).map_err(io("inspecting", &path))?;
                let ident = Ident::of(&meta);
                newest = newest.max(ident.ctime);
                let child = rel.join(entry.file_name());
                if ident.is_dir {
                    stack.push(child.clone());
                }
                baseline.entries.insert(child, ident);
                names.push(entry.file_name());
            }
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            baseline.children.insert(rel, names);
        }
        wait_past(scratch, newest)?;
        Ok(baseline)
    }

    /// Append what changed in `root` since [`Baseline::record`] to `out`.
    /// Times later than `epoch` are written as `epoch`.
    pub(super) fn write_diff<W: Write>(
        &self,
        root: &Path,
        out: &mut tar::Builder<W>,
        epoch: Option<u64>,
    ) -> Result<(), LayerError> {
        let out = &mut Writer::new(out, epoch);
        let mut walk = Walk { baseline: self, root, out, links: HardLinks::default(), pending: Vec::new() };
        walk.dir(Path::new(""), true)
    }
}

/// Sleep until a file made in `scratch` gets a ctime after `newest`.
fn wait_past(scratch: &Path, newest: (i64, i64)) -> Result<(), SnapshotError> {
    let probe = scratch.join("clock");
    let start = Instant::now();
    loop {
        fs::write(&probe, b"").map_err(io("writing", &probe))?;
        let meta = fs::symlink_metadata(&probe).map_err(io("inspecting", &probe))?;
        let _ = fs::remove_file(&probe);
        // A clock that never moves (it cannot, but a second is plenty) must not hang a build.
        if (meta.ctime(), meta.ctime_nsec()) > newest || start.elapsed() > Duration::from_secs(1) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError {
    crate::fsutil::io_at(action, path)
}

fn layer_io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LayerError {
    crate::fsutil::io_at(action, path)
}

/// The folders kiln's sandbox may create at the root to mount on; their
/// mount points are removed after the step (`MountPoints::clean`). While the
/// step runs they are busy mount points it cannot remove, so one that was there
/// before and is gone now was removed by that cleaning, not by the step.
const MOUNT_DIRS: [&str; 4] = ["etc", "proc", "dev", "sys"];

struct Walk<'a, W: Write> {
    baseline: &'a Baseline,
    root: &'a Path,
    out: &'a mut Writer<'a, W>,
    links: HardLinks<Vec<u8>>,
    /// Unchanged folders above the current one, not written yet: an overlay's
    /// upper folder holds them (copied up) once anything below them changed.
    pending: Vec<(PathBuf, bool)>,
}

impl<W: Write> Walk<'_, W> {
    /// Walk the folder `rel`; `compare` when it is the baseline's own folder
    /// (else everything below it is new).
    fn dir(&mut self, rel: &Path, compare: bool) -> Result<(), LayerError> {
        let dir = self.root.join(rel);
        let mut now: Vec<OsString> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(layer_io("reading", &dir))? {
            now.push(entry.map_err(layer_io("reading", &dir))?.file_name());
        }
        let mut names = now.clone();
        if compare {
            names.extend(self.baseline.children.get(rel).into_iter().flatten().cloned());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        names.dedup();
        for name in names {
            let child = rel.join(&name);
            let path = self.root.join(&child);
            let old = if compare { self.baseline.entries.get(&child) } else { None };
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let cleaned = rel.as_os_str().is_empty() && MOUNT_DIRS.iter().any(|d| name == *d);
                    if old.is_some() && !cleaned {
                        self.flush()?;
                        // Root's, mode 0, as overlayfs makes them, dated
                        // by the change of its folder.
                        let parent = fs::symlink_metadata(&dir).map_err(layer_io("inspecting", &dir))?;
                        let rel_bytes = child.as_os_str().as_bytes();
                        append_whiteout(self.out, rel_bytes, (0, 0), parent.mtime(), &path)?;
                    }
                    continue;
                }
                Err(e) => return Err(layer_io("inspecting", &path)(e)),
            };
            let ident = Ident::of(&meta);
            let same = old.is_some_and(|o| o.same_inode(&ident) && o.is_dir == ident.is_dir);
            // A folder's ctime also moves when the sandbox adds a mount point
            // to it and the cleaning removes it again, where an overlay keeps
            // no trace: a folder counts as changed by its own mode and owner,
            // and is written anyway when something below it is.
            let unchanged = same
                && old.is_some_and(|o| {
                    if ident.is_dir {
                        o.mode_owner == ident.mode_owner
                    } else {
                        o.ctime == ident.ctime
                    }
                });
            let rel_bytes = child.as_os_str().as_bytes().to_vec();
            if ident.is_dir {
                if unchanged {
                    self.pending.push((child.clone(), false));
                } else {
                    self.flush()?;
                    let opaque = old.is_some() && !same;
                    append_entry(self.out, &mut self.links, &path, &rel_bytes, &meta, opaque)?;
                    self.pending.push((child.clone(), true));
                }
                self.dir(&child, same)?;
                self.pending.pop();
            } else if !unchanged {
                self.flush()?;
                append_entry(self.out, &mut self.links, &path, &rel_bytes, &meta, false)?;
            }
        }
        Ok(())
    }

    /// Write the unchanged folders above an entry about to be written.
    fn flush(&mut self) -> Result<(), LayerError> {
        for (rel, written) in &mut self.pending {
            if !*written {
                let path = self.root.join(&*rel);
                let meta = fs::symlink_metadata(&path).map_err(layer_io("inspecting", &path))?;
                append_entry(self.out, &mut self.links, &path, rel.as_os_str().as_bytes(), &meta, false)?;
                *written = true;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `kind name [-> link]` of each entry of a tar.
    fn listing(tar: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e.link_name().unwrap().map(|l| format!(" -> {}", l.display())).unwrap_or_default();
                format!("{:?} {}{link}", e.header().entry_type(), e.path().unwrap().display())
            })
            .collect()
    }

    #[test]
    fn the_diff_holds_what_an_overlay_upper_folder_would() {
        let dir = tempfile::tempdir().unwrap();
        let (root, scratch) = (dir.path().join("root"), dir.path().join("scratch"));
        fs::create_dir(&scratch).unwrap();
        for d in ["b", "d", "same", "proc"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in ["a", "b/c", "d/e", "keep", "same/u"] {
            fs::write(root.join(f), f).unwrap();
        }
        let baseline = Baseline::record(&root, &scratch).unwrap();

        fs::write(root.join("a"), "changed").unwrap();
        fs::remove_file(root.join("b/c")).unwrap();
        // A folder replaced by another (made first, so it cannot reuse the inode).
        fs::create_dir(root.join("d2")).unwrap();
        fs::write(root.join("d2/f"), "f").unwrap();
        fs::remove_dir_all(root.join("d")).unwrap();
        fs::rename(root.join("d2"), root.join("d")).unwrap();
        fs::hard_link(root.join("keep"), root.join("keep-link")).unwrap();
        fs::write(root.join("n"), "new").unwrap();
        // A mount point the sandbox's cleaning removed: not the step's deletion.
        fs::remove_dir(root.join("proc")).unwrap();

        let mut out = tar::Builder::new(Vec::new());
        baseline.write_diff(&root, &mut out, None).unwrap();
        let got = listing(&out.into_inner().unwrap());
        let want = [
            "Regular a",
            "Directory b/",
            "Regular b/.wh.c",
            "Directory d/",
            "Regular d/.wh..wh..opq",
            "Regular d/f",
            "Regular keep",
            "Link keep-link -> keep",
            "Regular n",
        ];
        assert_eq!(got, want);

        // Nothing changed, nothing written.
        let baseline = Baseline::record(&root, &scratch).unwrap();
        let mut out = tar::Builder::new(Vec::new());
        baseline.write_diff(&root, &mut out, None).unwrap();
        assert_eq!(listing(&out.into_inner().unwrap()), Vec::<String>::new());
    }
}
