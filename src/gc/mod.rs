//! Garbage collection: what the store may drop, decided in one place.
//!
//! [`reach`] finds the roots (images, build cache entries) and every path
//! each holds; whatever lies in the store's content folders and no root
//! holds is garbage. All of it runs under the store-wide [`StoreLock`] held
//! exclusive (a [`Collector`]), while builds, pulls and loads hold it shared
//! for their whole run, so a collection never takes what a running build has
//! written but not yet named.
//!
//! Build cache pruning follows `docker builder prune`:
//! - without `all`, only dangling entries go: those holding something no
//!   image holds (the cache of a build stage that is in no image, ADD
//!   downloads); an entry whose layers all belong to images stays;
//! - `all` takes every entry;
//! - `until` spares entries used after that time;
//! - `keep_storage` stops as soon as the build cache (what entries hold and
//!   no image does) fits in that many bytes, least recently used first.
//!   After every build the size cap is enforced the same way.
//!
//! Images are never pruned here: `kiln rmi` removes them, then collects what
//! only they held.

mod lock;
mod reach;
mod size;

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use lock::StoreLock;
use reach::{files, Held, Roots};
pub use reach::{CacheEntry, EntryKind, ImageRoot};
pub use size::disk_usage as du;
use size::Sizes;

use crate::store::Store;

/// A hidden temp file (an atomic write's) older than this was left by a
/// killed run: none takes this long.
const STALE_TEMP: Duration = Duration::from_secs(10 * 60);

/// Errors of garbage collection.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("locking the store ({})", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(
        "the image {image} cannot be read (its blob {blob} is not valid JSON), so what it holds \
         cannot be told: nothing was removed; remove the image with `kiln rmi`"
    )]
    Damaged { image: String, blob: String },
    #[error("removing {}", .path.display())]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What a prune may remove (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Every entry, not only dangling ones.
    pub all: bool,
    /// Only entries last used at or before this time.
    pub until: Option<SystemTime>,
    /// Stop once the build cache takes no more than this many bytes.
    pub keep_storage: Option<u64>,
}

/// What a prune or a collection removed.
#[derive(Debug, Default)]
pub struct Pruned {
    /// The build cache entries removed, oldest first.
    pub entries: Vec<String>,
    /// Bytes freed on disk, entries and garbage together.
    pub reclaimed: u64,
}

/// The store locked exclusive: the only way to remove anything.
pub struct Collector {
    store: Store,
    _lock: StoreLock,
}

impl Collector {
    /// Wait until no run holds the store, then hold it.
    pub fn wait(store: &Store) -> Result<Self, GcError> {
        Ok(Self { store: store.clone(), _lock: StoreLock::exclusive(store)? })
    }

    /// Hold the store if no run holds it now.
    pub fn try_now(store: &Store) -> Result<Option<Self>, GcError> {
        Ok(StoreLock::try_exclusive(store)?.map(|lock| Self { store: store.clone(), _lock: lock }))
    }

    /// Remove build cache entries as `options` say, then the garbage.
    pub fn prune(&self, options: &PruneOptions) -> Result<Pruned, GcError> {
        let roots = Roots::read(&self.store)?;
        let image_held = roots.image_held();
        let mut sizes = Sizes::new(&self.store);
        // How many entries hold each path no image holds, and what those take.
        let mut holders: HashMap<&Path, usize> = HashMap::new();
        for e in &roots.entries {
            for p in e.held.iter().filter(|p| !image_held.contains(*p)) {
                *holders.entry(p).or_default() += 1;
            }
        }
        let mut cache_bytes: u64 = holders.keys().map(|p| sizes.of(p)).sum();
        let mut candidates: Vec<&CacheEntry> = roots
            .entries
            .iter()
            .filter(|e| options.all || !shared(e, &image_held))
            .filter(|e| options.until.is_none_or(|cutoff| e.last_used <= cutoff))
            .collect();
        candidates.sort_by(|a, b| (a.last_used, &a.id).cmp(&(b.last_used, &b.id)));
        let mut removed = Vec::new();
        for e in candidates {
            if options.keep_storage.is_some_and(|keep| cache_bytes <= keep) {
                break;
            }
            for p in e.held.iter().filter(|p| !image_held.contains(*p)) {
                let n = holders.get_mut(p.as_path()).expect("counted above");
                *n -= 1;
                if *n == 0 {
                    cache_bytes -= sizes.of(p);
                }
            }
            removed.push(e);
        }
        let mut pruned = Pruned::default();
        // Entries first: killed after this, what they held is plain garbage
        // for the next collection, and no entry ever names a missing blob.
        for e in &removed {
            pruned.reclaimed += sizes.of(&e.file);
            remove(&e.file)?;
            pruned.entries.push(e.id.clone());
        }
        let mut keep = image_held;
        for e in roots.entries.iter().filter(|e| !removed.iter().any(|r| std::ptr::eq(*r, *e))) {
            keep.extend(e.held.iter().cloned());
        }
        pruned.reclaimed += self.sweep(&keep, &mut sizes)?;
        sizes.save();
        Ok(pruned)
    }

    /// Remove what no image and no cache entry holds (after `kiln rmi`).
    pub fn collect(&self) -> Result<Pruned, GcError> {
        self.prune(&PruneOptions { all: false, until: None, keep_storage: Some(u64::MAX) })
    }

    /// Remove every path of the content folders not in `keep`, and what
    /// killed runs left; the bytes freed.
    fn sweep(&self, keep: &Held, sizes: &mut Sizes) -> Result<u64, GcError> {
        let root = self.store.root();
        for dir in ["ingest", "work", "snapshots"] {
            crate::store::sweep_stale(&root.join(dir));
        }
        let snapshots = self.store.snapshots_dir();
        let mut garbage: Vec<PathBuf> = files(&snapshots)
            .into_iter()
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(is_hex64))
            .collect();
        // Each folder with the names its roots hold: what else other parts of
        // kiln keep there (locks, indexes) is never taken for garbage.
        let json = |n: &str| n.ends_with(".json");
        let compressed = |n: &str| n.split_once('.').is_some_and(|(hex, _)| is_hex64(hex));
        let any = |_: &str| true;
        let folders: [(PathBuf, NameFilter); 8] = [
            (self.store.layout().join("blobs/sha256"), is_hex64),
            (snapshots.join("l"), any),
            (root.join("registry/compressed"), compressed),
            (root.join("compressed"), compressed),
            (root.join("registry/sources"), is_hex64),
            (root.join("downloads/blobs"), is_hex64),
            (self.store.cache_dir(), json),
            (root.join("downloads/urls"), json),
        ];
        for (dir, ours) in &folders {
            let named = |p: &PathBuf| p.file_name().and_then(|n| n.to_str()).is_some_and(ours);
            garbage.extend(files(dir).into_iter().filter(named));
            stale_temps(dir)?;
        }
        stale_temps(&self.store.layout())?;
        let mut freed = 0;
        for path in garbage.into_iter().filter(|p| !keep.contains(p)) {
            freed += sizes.of(&path);
            if path.parent() == Some(snapshots.as_path()) {
                remove_snapshot(&path)?;
            } else {
                remove(&path)?;
            }
        }
        Ok(freed)
    }
}

/// Whether every layer `entry` holds is an image's too (`docker builder
/// prune` keeps such entries unless told `--all`).
fn shared(entry: &CacheEntry, image_held: &Held) -> bool {
    entry.held.iter().filter(|p| **p != entry.file).all(|p| image_held.contains(p))
}

/// Which names in a folder are a root's to hold.
type NameFilter = fn(&str) -> bool;

fn is_hex64(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Hidden temp files in `dir` old enough to be a killed run's.
fn stale_temps(dir: &Path) -> Result<(), GcError> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for e in entries.flatten() {
        let old = e.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if e.file_name().to_string_lossy().starts_with(".tmp") && old.is_some_and(|age| age > STALE_TEMP) {
            remove(&e.path())?;
        }
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), GcError> {
    let err = |source| GcError::Remove { path: path.to_owned(), source };
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            // A layer's folder of mode 0555 (a rootless store, without the
            // power to ignore modes) must be opened up before it is emptied.
            for entry in walkdir::WalkDir::new(path).into_iter().filter_map(Result::ok) {
                if entry.file_type().is_dir() {
                    let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700));
                }
            }
            fs::remove_dir_all(path).map_err(err)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(err),
    }
}

/// A snapshot goes at once, by a rename to a name [`crate::store::sweep_stale`]
/// takes away if this process dies while emptying it; then its short link.
fn remove_snapshot(path: &Path) -> Result<(), GcError> {
    let hex = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
    let dir = path.parent().expect("a snapshot is in the snapshots folder");
    let doomed = dir.join(format!(".{}{hex}", crate::store::temp_prefix("gc")));
    fs::rename(path, &doomed).map_err(|source| GcError::Remove { path: path.to_owned(), source })?;
    remove(&dir.join("l").join(&hex[..12]))?;
    remove(&doomed)
}

/// The size cap's default: a tenth of the filesystem holding the store, as
/// BuildKit's default garbage collection policy keeps.
// fsblkcnt_t and the fragment size are not 64 bits on every target.
#[allow(clippy::unnecessary_cast)]
pub fn default_keep_storage(store: &Store) -> u64 {
    match nix::sys::statvfs::statvfs(store.root()) {
        Ok(st) => st.blocks() as u64 * st.fragment_size() as u64 / 10,
        Err(_) => 20_000_000_000,
    }
}

/// Enforce the build cache's size cap now, unless a run holds the store
/// (it will enforce it when it ends). `None` when skipped.
pub fn enforce_cap(store: &Store, keep_storage: u64) -> Result<Option<Pruned>, GcError> {
    if fits_for_sure(store.root(), keep_storage) {
        return Ok(Some(Pruned::default()));
    }
    let Some(collector) = Collector::try_now(store)? else { return Ok(None) };
    collector.prune(&PruneOptions { all: true, until: None, keep_storage: Some(keep_storage) }).map(Some)
}

/// Whether the store's whole filesystem holds no more than `cap` bytes, so
/// the build cache in it cannot hold more: one statfs instead of reading
/// every image and entry and walking the store after each build. Not on an
/// overlay (what a lower layer holds is not counted in the upper's use).
/// Where blocks are shared or compressed the filesystem's use is below what
/// the cap counts; the cap is there to keep the disk from filling, which
/// this bounds all the same.
fn fits_for_sure(root: &Path, cap: u64) -> bool {
    use nix::sys::statfs::{statfs, OVERLAYFS_SUPER_MAGIC};
    let Ok(fs) = statfs(root) else { return false };
    let used = fs.blocks().saturating_sub(fs.blocks_free()).saturating_mul(fs.block_size() as u64);
    fs.filesystem_type() != OVERLAYFS_SUPER_MAGIC && used <= cap
}

/// One image's share of the disk.
#[derive(Debug)]
pub struct ImageUsage {
    /// Its name, if any.
    pub name: Option<String>,
    /// Its manifest.
    pub manifest: kiln_solver::Digest,
    /// All it holds.
    pub size: u64,
    /// What other images hold too.
    pub shared: u64,
}

/// One build cache entry's share of the disk.
#[derive(Debug)]
pub struct EntryUsage {
    /// Its id.
    pub id: String,
    /// What it is.
    pub kind: EntryKind,
    /// What it holds that no image does.
    pub size: u64,
    /// When it was last used.
    pub last_used: SystemTime,
    /// Whether an image holds all its layers (a plain prune keeps it).
    pub shared: bool,
}

/// The store's disk usage, as `docker system df` reports it.
#[derive(Debug, Default)]
pub struct DiskUsage {
    /// Each image.
    pub images: Vec<ImageUsage>,
    /// What all images hold, each path once.
    pub images_size: u64,
    /// What removing every image would free: what no cache entry holds too.
    pub images_reclaimable: u64,
    /// Each build cache entry.
    pub entries: Vec<EntryUsage>,
    /// What entries hold and no image does, each path once: what `prune -a` frees.
    pub cache_size: u64,
}

/// Measure the store. Holds the lock shared: builds may run meanwhile, but
/// no collection changes what is measured.
pub fn disk_usage(store: &Store) -> Result<DiskUsage, GcError> {
    let _lock = StoreLock::shared(store)?;
    let roots = Roots::read(store)?;
    let image_held = roots.image_held();
    let cache_held: Held = roots.entries.iter().flat_map(|e| e.held.iter().cloned()).collect();
    let mut sizes = Sizes::new(store);
    let mut holders: HashMap<&Path, usize> = HashMap::new();
    for p in roots.images.iter().flat_map(|i| &i.held) {
        *holders.entry(p).or_default() += 1;
    }
    let mut usage = DiskUsage::default();
    for image in &roots.images {
        let size = image.held.iter().map(|p| sizes.of(p)).sum();
        let shared = image.held.iter().filter(|p| holders[p.as_path()] > 1).map(|p| sizes.of(p)).sum();
        usage.images.push(ImageUsage { name: image.name.clone(), manifest: image.manifest.clone(), size, shared });
    }
    usage.images_size = image_held.iter().map(|p| sizes.of(p)).sum();
    usage.images_reclaimable = image_held.difference(&cache_held).map(|p| sizes.of(p)).sum();
    for e in &roots.entries {
        let size = e.held.iter().filter(|p| !image_held.contains(*p)).map(|p| sizes.of(p)).sum();
        let shared = shared(e, &image_held);
        usage.entries.push(EntryUsage { id: e.id.clone(), kind: e.kind, size, last_used: e.last_used, shared });
    }
    usage.cache_size = cache_held.difference(&image_held).map(|p| sizes.of(p)).sum();
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_is_known_to_fit_only_when_the_whole_filesystem_does() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!fits_for_sure(dir.path(), 0), "a filesystem holding something fits in no bytes");
        let fs = nix::sys::statfs::statfs(dir.path()).unwrap();
        let overlay = fs.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC;
        assert_eq!(fits_for_sure(dir.path(), u64::MAX), !overlay);
        assert!(!fits_for_sure(&dir.path().join("missing"), u64::MAX));
    }
    use crate::cache::{CacheRecord, CacheStorage, LocalCache};
    use crate::layer::Layer;
    use kiln_solver::{CacheKey, Digest};
    use oci_spec::image::{DescriptorBuilder, MediaType};

    /// A layer: its blob, and its snapshot of `kb` kilobytes.
    fn layer(store: &Store, name: &str, kb: usize) -> Layer {
        let (digest, size) = store.write_blob(name.as_bytes()).unwrap();
        let diff_id = Digest::of(format!("diff {name}").as_bytes());
        let snapshot = store.snapshots_dir().join(diff_id.hex());
        fs::create_dir_all(&snapshot).unwrap();
        fs::write(snapshot.join("data"), vec![7u8; kb * 1000]).unwrap();
        Layer { digest, diff_id, size }
    }

    fn image(store: &Store, name: &str, layers: &[&Layer]) {
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
        let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let (config, _) = store.write_blob(&serde_json::to_vec(&config).unwrap()).unwrap();
        let blobs: Vec<_> = layers.iter().map(|l| serde_json::json!({"digest": l.digest.as_str()})).collect();
        let manifest = serde_json::json!({"config": {"digest": config.as_str()}, "layers": blobs});
        let (digest, size) = store.write_blob(&serde_json::to_vec(&manifest).unwrap()).unwrap();
        let desc = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(crate::digest::to_oci(&digest))
            .size(size)
            .build()
            .unwrap();
        store.tag(name, &desc).unwrap();
    }

    /// A record for `layers`, last used `hours` ago.
    fn record(store: &Store, key: &str, layers: &[&Layer], hours: u64) -> PathBuf {
        let key = CacheKey(Digest::of(key.as_bytes()));
        let layers = layers.iter().map(|l| (*l).clone()).collect();
        LocalCache::new(store).save(&key, &CacheRecord::new(layers, None)).unwrap();
        let path = store.cache_dir().join(format!("{}.json", key.0.hex()));
        let when = SystemTime::now() - Duration::from_secs(hours * 3600);
        fs::File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
        path
    }

    fn held(store: &Store, l: &Layer) -> bool {
        store.has_blob(&l.digest) && store.snapshots_dir().join(l.diff_id.hex()).is_dir()
    }

    #[test]
    fn prunes_follow_docker_builder_prune() {
        let hour = Some(SystemTime::now() - Duration::from_secs(3600));
        // (all, until, keep_storage): which of the records shared, old, new remain.
        for (all, until, keep, want) in [
            (false, None, None, [true, false, false]),
            (true, None, None, [false, false, false]),
            (true, hour, None, [false, false, true]),
            (false, hour, None, [true, false, true]),
            // Room for one dangling layer: the least recently used go first
            // (the shared record frees only its own file, then the old one).
            (true, None, Some(150_000), [false, false, true]),
            (true, None, Some(10_000_000), [true, true, true]),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let (base, top, old, new) = (
                layer(&store, "base", 10),
                layer(&store, "top", 10),
                layer(&store, "old", 100),
                layer(&store, "new", 100),
            );
            image(&store, "app", &[&base, &top]);
            let records = [
                record(&store, "shared", &[&base, &top], 48),
                record(&store, "old", &[&base, &old], 24),
                record(&store, "new", &[&base, &new], 0),
            ];
            let orphan = store.write_blob(b"orphan").unwrap().0;
            // What other parts of kiln keep beside the records is not garbage.
            let other = store.cache_dir().join("locks");
            fs::create_dir_all(&other).unwrap();
            let options = PruneOptions { all, until, keep_storage: keep };
            let pruned = Collector::wait(&store).unwrap().prune(&options).unwrap();
            let case = format!("{options:?}");
            assert_eq!(records.each_ref().map(|r| r.exists()), want, "{case}");
            assert_eq!([held(&store, &old), held(&store, &new)], [want[1], want[2]], "{case}");
            assert!(held(&store, &base) && held(&store, &top), "{case}: the image's layers stay");
            assert!(!store.has_blob(&orphan) && other.is_dir(), "{case}");
            assert_eq!(pruned.entries.len(), want.iter().filter(|w| !**w).count(), "{case}");
            let freed = want.iter().zip([0, 100_000, 100_000]).filter(|(w, _)| !**w).map(|(_, n)| n).sum::<u64>();
            assert!(pruned.reclaimed >= freed, "{case}: {} freed", pruned.reclaimed);
            // The records left still load: nothing they name went.
            let cache = LocalCache::new(&store);
            for (key, kept) in ["shared", "old", "new"].into_iter().zip(want) {
                assert_eq!(cache.load(&CacheKey(Digest::of(key.as_bytes()))).is_some(), kept, "{case} {key}");
            }
        }
    }

    #[test]
    fn a_damaged_image_stops_collection_until_it_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let base = layer(&store, "base", 1);
        image(&store, "app", &[&base]);
        let manifest = store.get("app").unwrap().digest();
        let orphan = store.write_blob(b"orphan").unwrap().0;
        // The config, replaced by something that is not JSON.
        let doc: serde_json::Value = serde_json::from_slice(&fs::read(store.blob_path(&manifest)).unwrap()).unwrap();
        let config: Digest = doc["config"]["digest"].as_str().unwrap().parse().unwrap();
        fs::write(store.blob_path(&config), b"not json").unwrap();
        let err = Collector::wait(&store).unwrap().collect().unwrap_err();
        assert!(matches!(&err, GcError::Damaged { image, .. } if image == "app:latest"), "{err}");
        assert!(store.has_blob(&orphan) && held(&store, &base));
        store.untag("app").unwrap();
        Collector::wait(&store).unwrap().collect().unwrap();
        assert!(!store.has_blob(&orphan) && !store.has_blob(&base.digest));
    }

    #[test]
    fn usage_counts_shared_paths_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (base, a, b) = (layer(&store, "base", 50), layer(&store, "a", 20), layer(&store, "b", 30));
        image(&store, "a", &[&base, &a]);
        image(&store, "b", &[&base, &b]);
        record(&store, "b", &[&base, &b], 0);
        let dangling = layer(&store, "dangling", 40);
        record(&store, "dangling", &[&base, &dangling], 0);
        let usage = disk_usage(&store).unwrap();
        let snap = |l: &Layer| du(&store.snapshots_dir().join(l.diff_id.hex()));
        assert!(usage.images_size >= snap(&base) + snap(&a) + snap(&b));
        assert!(usage.images_size < 2 * snap(&base) + snap(&a) + snap(&b), "base counted once");
        // Only a's own layer is freed by removing the images: b's the cache holds.
        assert!(usage.images_reclaimable >= snap(&a) && usage.images_reclaimable < snap(&a) + snap(&b));
        assert!(usage.cache_size >= snap(&dangling) && usage.cache_size < snap(&dangling) + snap(&b));
        let shared: Vec<bool> = usage.entries.iter().map(|e| e.shared).collect();
        assert_eq!(shared.iter().filter(|s| **s).count(), 1, "{shared:?}");
        let image_a = usage.images.iter().find(|i| i.name.as_deref() == Some("a:latest")).unwrap();
        assert!(image_a.shared >= snap(&base) && image_a.size - image_a.shared >= snap(&a));
    }
}
