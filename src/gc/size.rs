//! What things in the store take on disk: allocated blocks (`st_blocks`), as
//! `du` counts them, not apparent lengths, and a file with several links
//! counted once.
//!
//! Walking a snapshot costs a `stat` per file, and the size cap is checked
//! after every build, so snapshot sizes are remembered in
//! `<root>/snapshot-sizes.json` (diffID hex → bytes). A snapshot never
//! changes once it is in place, so an entry is good until the snapshot goes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::store::Store;

/// Sizes of paths in one store, remembered for one collection.
pub(crate) struct Sizes {
    snapshots: PathBuf,
    memo_path: PathBuf,
    memo: BTreeMap<String, u64>,
    changed: bool,
    seen: HashMap<PathBuf, u64>,
}

impl Sizes {
    pub(crate) fn new(store: &Store) -> Self {
        let memo_path = store.root().join("snapshot-sizes.json");
        let memo = fs::read(&memo_path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        Self { snapshots: store.snapshots_dir(), memo_path, memo, changed: false, seen: HashMap::new() }
    }

    /// Bytes `path` takes (0 when it is gone).
    pub(crate) fn of(&mut self, path: &Path) -> u64 {
        if let Some(&n) = self.seen.get(path) {
            return n;
        }
        let snapshot = (path.parent() == Some(self.snapshots.as_path()))
            .then(|| path.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .flatten();
        let n = match snapshot.as_ref().and_then(|s| self.memo.get(s)) {
            Some(&n) if path.is_dir() => n,
            _ => {
                let n = disk_usage(path);
                if let Some(s) = snapshot.filter(|_| path.is_dir()) {
                    self.memo.insert(s, n);
                    self.changed = true;
                }
                n
            }
        };
        self.seen.insert(path.to_owned(), n);
        n
    }

    /// Forget the snapshots that are gone; keep what was learnt. Only called
    /// under the exclusive lock: nobody else writes the file then.
    pub(crate) fn save(mut self) {
        let before = self.memo.len();
        let snapshots = self.snapshots.clone();
        self.memo.retain(|hex, _| snapshots.join(hex).is_dir());
        if self.changed || self.memo.len() != before {
            let bytes = serde_json::to_vec(&self.memo).expect("sizes serialise");
            // Only a hint: a store that cannot keep it just walks again.
            let _ = crate::store::write_hint(&self.memo_path, &bytes);
        }
    }
}

/// `du -s --block-size=1` of `path`, without following symlinks, each inode once.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    let mut inodes = HashSet::new();
    walkdir::WalkDir::new(path)
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.nlink() < 2 || m.is_dir() || inodes.insert((m.dev(), m.ino())))
        .map(|m| m.blocks() * 512)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_count_once_and_snapshot_sizes_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let snap = store.snapshots_dir().join("ab".repeat(32));
        fs::create_dir_all(&snap).unwrap();
        fs::write(snap.join("f"), vec![1u8; 100_000]).unwrap();
        let one = disk_usage(&snap);
        fs::hard_link(snap.join("f"), snap.join("g")).unwrap();
        assert_eq!(disk_usage(&snap), one);
        assert!(one >= 100_000);
        let mut sizes = Sizes::new(&store);
        assert_eq!(sizes.of(&snap), one);
        sizes.save();
        // Remembered: a change behind kiln's back is not seen (snapshots never change).
        fs::write(snap.join("h"), vec![1u8; 100_000]).unwrap();
        assert_eq!(Sizes::new(&store).of(&snap), one);
        fs::remove_dir_all(&snap).unwrap();
        Sizes::new(&store).save();
        assert_eq!(fs::read(dir.path().join("snapshot-sizes.json")).unwrap(), b"{}");
        assert_eq!(Sizes::new(&store).of(&snap), 0);
    }
}
