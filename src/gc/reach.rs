//! Reachability: the roots of the store and every path each one holds.
//!
//! Roots are the images of the index (named or not) and the build cache's
//! entries: the records in `cache/` and the ADD downloads in `downloads/`;
//! and containers, which hold their images.
//! An image holds its manifest (an index: its manifests, recursively), its
//! config and, for each layer, the layer's blob, its snapshot (by diffID)
//! with its short link, the compressed copies made for pushes and exports,
//! and what registries the blobs were seen on. A cache record holds its own
//! file and the same for each of its layers; a download its record and
//! content. Everything under those folders that no root holds is garbage.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kiln_solver::Digest;
use serde::Deserialize;
use serde_json::Value;

use crate::cache::CacheRecord;
use crate::store::Store;

/// Paths that must stay while their holder does.
pub(crate) type Held = BTreeSet<PathBuf>;

/// Where compressed copies of layers are recorded: `<diffID hex>.<algorithm>`
/// holding the copy's digest. The second is where the layer-format work may
/// move them; both are read.
const COMPRESSED_DIRS: [&str; 2] = ["registry/compressed", "compressed"];

/// An image of the index and what it holds.
#[derive(Debug)]
pub struct ImageRoot {
    /// Its name; `None` for an image kept without one.
    pub name: Option<String>,
    /// Its manifest's digest.
    pub manifest: Digest,
    pub(crate) held: Held,
}

/// What kind of build cache an entry is, as `docker buildx du` types them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A step's result: `cache/<key>.json`.
    Record,
    /// An `ADD <url>`'s content: `downloads/urls/<hash>.json`.
    Download,
}

impl EntryKind {
    /// The name `system df -v` shows.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Record => "regular",
            EntryKind::Download => "source.http",
        }
    }
}

/// One entry of the build cache and what it holds.
#[derive(Debug)]
pub struct CacheEntry {
    /// Its id: the cache key's hex, or the download record's name.
    pub id: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its file; removing it removes the entry.
    pub file: PathBuf,
    /// When it was last used (its file's mtime, touched on every hit).
    pub last_used: SystemTime,
    pub(crate) held: Held,
}

/// Every root of a store.
pub(crate) struct Roots {
    pub images: Vec<ImageRoot>,
    pub entries: Vec<CacheEntry>,
    /// What containers hold: their images, even once those lose their names.
    pub containers: Held,
}

impl Roots {
    /// Read every root of `store`. An image whose manifest or config is
    /// stored but unreadable stops the collection: what it holds cannot be
    /// told, and guessing could take its layers. (A blob that is not stored
    /// holds nothing: a pulled index lists platforms never fetched.)
    pub(crate) fn read(store: &Store) -> Result<Self, super::GcError> {
        let walker = Walker::new(store);
        let mut images = Vec::new();
        for image in store.images()? {
            let manifest = image.digest();
            let mut held = Held::new();
            walker.manifest(&manifest, &mut held, 0);
            if let Some(blob) = walker.damaged.take() {
                let image = image.name.unwrap_or_else(|| manifest.to_string());
                return Err(super::GcError::Damaged { image, blob: blob.to_string() });
            }
            images.push(ImageRoot { name: image.name, manifest, held });
        }
        let mut entries = walker.records();
        entries.extend(walker.downloads());
        let mut containers = Held::new();
        let records = crate::container::Containers::new(store);
        for id in records.ids().unwrap_or_default() {
            // A record torn by a crash holds nothing it can name.
            let Ok(config) = records.config(&id) else { continue };
            if let Ok(manifest) = config.image_id.parse::<Digest>() {
                walker.manifest(&manifest, &mut containers, 0);
            }
        }
        Ok(Roots { images, entries, containers })
    }

    /// What every image holds.
    pub(crate) fn image_held(&self) -> Held {
        self.images.iter().flat_map(|i| i.held.iter().cloned()).chain(self.containers.iter().cloned()).collect()
    }
}

struct Walker<'a> {
    store: &'a Store,
    /// Compressed copies by diffID hex: each record file and the copy's digest.
    compressed: HashMap<String, Vec<(PathBuf, Option<Digest>)>>,
    /// A stored manifest or config that is not JSON, met by the last walk.
    damaged: std::cell::Cell<Option<Digest>>,
}

impl<'a> Walker<'a> {
    fn new(store: &'a Store) -> Self {
        let mut compressed: HashMap<String, Vec<(PathBuf, Option<Digest>)>> = HashMap::new();
        for dir in COMPRESSED_DIRS {
            for path in files(&store.root().join(dir)) {
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
                let Some((hex, _)) = name.split_once('.') else { continue };
                let blob = fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<Digest>().ok());
                compressed.entry(hex.to_owned()).or_default().push((path.clone(), blob));
            }
        }
        Self { store, compressed, damaged: std::cell::Cell::new(None) }
    }

    fn blob(&self, digest: &Digest, held: &mut Held) {
        held.insert(self.store.blob_path(digest));
        held.insert(crate::registry::sources::path(self.store, digest));
    }

    /// A layer: its blob (when it has one of its own) and what its diffID names.
    fn layer(&self, digest: Option<&Digest>, diff_id: Option<&Digest>, held: &mut Held) {
        if let Some(d) = digest {
            self.blob(d, held);
        }
        let Some(diff_id) = diff_id else { return };
        let hex = diff_id.hex();
        let snapshots = self.store.snapshots_dir();
        held.insert(snapshots.join(hex));
        held.insert(snapshots.join("l").join(&hex[..12]));
        for (record, blob) in self.compressed.get(hex).into_iter().flatten() {
            held.insert(record.clone());
            if let Some(b) = blob {
                self.blob(b, held);
            }
        }
    }

    /// A manifest or an index, and all it names that the store has.
    fn manifest(&self, digest: &Digest, held: &mut Held, depth: usize) {
        self.blob(digest, held);
        let Some(doc) = self.json::<Document>(digest) else { return };
        // Indexes of indexes exist; a loop of them cannot (digests), but a
        // damaged store should not recurse forever either.
        if depth < 8 {
            for child in &doc.manifests {
                if let Some(d) = child.digest().filter(|d| self.store.has_blob(d)) {
                    self.manifest(&d, held, depth + 1);
                }
            }
        }
        let config = doc.config.as_ref().and_then(Named::digest);
        let diff_ids: Vec<Option<Digest>> = match config.as_ref() {
            Some(c) => {
                self.blob(c, held);
                let config = self.json::<Config>(c).unwrap_or_default();
                config.rootfs.diff_ids.iter().map(|d| d.parse().ok()).collect()
            }
            None => Vec::new(),
        };
        for (i, layer) in doc.layers.iter().enumerate() {
            let diff_id = diff_ids.get(i).cloned().flatten();
            self.layer(layer.digest().as_ref(), diff_id.as_ref(), held);
        }
    }

    /// A stored blob's JSON, as far as `T` reads it: configs can be large
    /// (a label per line of a 10 MB Dockerfile), so only what reachability
    /// needs is kept. A stored blob that does not parse marks the walk damaged.
    fn json<T: serde::de::DeserializeOwned>(&self, digest: &Digest) -> Option<T> {
        let bytes = fs::read(self.store.blob_path(digest)).ok()?;
        let parsed = serde_json::from_slice(&bytes).ok();
        if parsed.is_none() {
            self.damaged.set(Some(digest.clone()));
        }
        parsed
    }

    fn records(&self) -> Vec<CacheEntry> {
        let mut out = Vec::new();
        for file in files(&self.store.cache_dir()) {
            let Some(id) = file.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let id = id.to_owned();
            let mut held = Held::from([file.clone()]);
            // A record this kiln cannot read (damaged, or another version)
            // holds only itself: it is of no use to this kiln's builds.
            let record = fs::read(&file).ok().and_then(|b| CacheRecord::decode(&b));
            for layer in record.iter().flat_map(|r| &r.layers) {
                self.layer(Some(&layer.digest), Some(&layer.diff_id), &mut held);
            }
            out.push(CacheEntry { id, kind: EntryKind::Record, last_used: mtime(&file), file, held });
        }
        out
    }

    fn downloads(&self) -> Vec<CacheEntry> {
        let dir = self.store.root().join("downloads");
        let mut out = Vec::new();
        for file in files(&dir.join("urls")) {
            let Some(id) = file.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let id = id.to_owned();
            let mut held = Held::from([file.clone()]);
            let record: Option<Value> = fs::read(&file).ok().and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(hex) = record.as_ref().and_then(|r| r["digest"].as_str()) {
                held.insert(dir.join("blobs").join(hex.trim_start_matches("sha256:")));
            }
            out.push(CacheEntry { id, kind: EntryKind::Download, last_used: mtime(&file), file, held });
        }
        out
    }
}

/// What a manifest or an index names.
#[derive(Deserialize)]
struct Document {
    #[serde(default)]
    manifests: Vec<Named>,
    config: Option<Named>,
    #[serde(default)]
    layers: Vec<Named>,
}

/// A descriptor, by its digest.
#[derive(Deserialize)]
struct Named {
    digest: Option<String>,
}

impl Named {
    fn digest(&self) -> Option<Digest> {
        self.digest.as_deref()?.parse().ok()
    }
}

/// What an image config says of its layers.
#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    rootfs: RootFs,
}

#[derive(Deserialize, Default)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

fn mtime(path: &Path) -> SystemTime {
    fs::metadata(path).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The entries of `dir` that are not hidden (temp files start with a dot).
pub(crate) fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> =
        entries.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')).map(|e| e.path()).collect();
    out.sort();
    out
}
