//! Why a step missed the cache (`kiln build --explain`, and one line of
//! plain progress).
//!
//! A cache key is a hash: it says that something changed, not what. So each
//! step keeps a small "last seen" record of what fed its key
//! ([`record::StepRecord`]: the instruction as written, the ARGs in scope, a
//! RUN's environment, the base image's digest, the checksum of the files it
//! read, its inputs' keys), and the list of those files with a digest each
//! ([`record::Listing`]). On a miss the previous record is compared with this
//! build's; when only an input differs, the blame goes to that input, and on
//! to its own inputs (a COPY that missed because the RUN before it did names
//! the RUN's change). Only the first step that missed is explained: every
//! later miss follows from it, or is told the same way on the next build.
//!
//! Records live in `<root>/explain/<slot>.json` (and `<slot>.files.json`),
//! one per *slot*: a step's identity across edits of the Dockerfile, the
//! sha256 of (the context folder's canonical path, the Dockerfile's, the
//! stage's name — or its index when it has none —, the step's number in the
//! stage as in `[build 2/4]`). An image read by `COPY --from` is slotted by
//! its name instead. Unlike cache keys, slots depend on paths on purpose: a
//! record says what *this project's* step was last time, and two projects
//! must not compare with each other. A record is rewritten only when the
//! step's key changed, so a build that hits everywhere writes nothing, and
//! once the step's result is saved, so a failed step leaves the last good
//! record. One file per slot keeps the folder bounded by the steps of the
//! projects built; the listing is capped (see [`record::MAX_LISTED_FILES`]).
//!
//! Secret-looking ARG and ENV names (BuildKit's `SecretsUsedInArgOrEnv`
//! rule) keep only a digest of their value, and a change of one is shown
//! as `(hidden)`.

pub(crate) mod record;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kiln_frontend::{Op, StepPlace};
use kiln_solver::{CacheKey, Digest, Lookup, Vertex};
use sha2::{Digest as _, Sha256};

pub use record::Change;
use record::{Base, Input, Listing, StepRecord, Value, RECORD_VERSION};

use crate::store::Store;

/// The first step of a build that missed the cache, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// Its `#N` in progress.
    pub index: usize,
    /// The instruction, as written.
    pub step: String,
    /// What changed (at least one).
    pub changes: Vec<Change>,
}

/// `--no-cache-filter` named a stage the Dockerfile does not have.
#[derive(Debug, thiserror::Error)]
#[error("--no-cache-filter {name}: the Dockerfile has no stage named {name:?} (its stages: {known}); name stages with FROM … AS NAME")]
pub struct UnknownStage {
    name: String,
    known: String,
}

/// The vertices `--no-cache-filter` makes run, each with the stage name that
/// asked for it. Stage names compare as BuildKit compares them, ignoring case.
/// A stage's FROM is not one of them: its base is what other stages share,
/// and reading it again gives the same layers.
pub fn no_cache_filter(
    places: &BTreeMap<Digest, Vec<StepPlace>>,
    stage_names: &[Option<String>],
    filter: &[String],
) -> Result<BTreeMap<Digest, String>, UnknownStage> {
    let mut stages = BTreeMap::new();
    for name in filter {
        let lower = name.to_ascii_lowercase();
        let found: Vec<usize> =
            (0..stage_names.len()).filter(|&i| stage_names[i].as_deref() == Some(&*lower)).collect();
        if found.is_empty() {
            let known: Vec<&str> = stage_names.iter().flatten().map(String::as_str).collect();
            let known = if known.is_empty() { "none has a name".to_owned() } else { known.join(", ") };
            return Err(UnknownStage { name: name.clone(), known });
        }
        stages.extend(found.into_iter().map(|i| (i, lower.clone())));
    }
    Ok(places
        .iter()
        .filter_map(|(digest, places)| {
            let mut steps = places.iter().filter(|p| p.step > 1);
            steps.find_map(|p| stages.get(&p.stage)).map(|name| (digest.clone(), name.clone()))
        })
        .collect())
}

/// What the build knows of one vertex once it was looked up.
struct Seen {
    index: usize,
    step: String,
    slot: Option<String>,
    prev: Option<StepRecord>,
    record: StepRecord,
    /// Shared with its pending write: a big COPY lists tens of thousands of files.
    listing: Option<Arc<Listing>>,
    /// The digests of its inputs, in order.
    inputs: Vec<Digest>,
    /// It ran because of `--no-cache`/`--no-cache-filter`, or read what did.
    forced: bool,
}

/// A record to write once its step's result is saved: slot, record, listing.
type Pending = (String, StepRecord, Option<Arc<Listing>>);

/// One build's explanations: records read and written, the first miss told.
pub struct Explainer {
    dir: PathBuf,
    project: String,
    places: BTreeMap<Digest, Vec<StepPlace>>,
    stage_names: Vec<Option<String>>,
    no_cache: bool,
    filtered: BTreeMap<Digest, String>,
    seen: Mutex<HashMap<Digest, Seen>>,
    /// Records of steps that missed, written once their result is saved.
    pending: Mutex<HashMap<CacheKey, Pending>>,
    told: AtomicBool,
    tell: Box<dyn Fn(&Miss) + Send + Sync>,
}

impl Explainer {
    /// An explainer for one build of `project` (the context's and the
    /// Dockerfile's canonical paths), telling the first miss to `tell`.
    pub fn new(
        store: &Store,
        project: String,
        places: BTreeMap<Digest, Vec<StepPlace>>,
        stage_names: Vec<Option<String>>,
        tell: impl Fn(&Miss) + Send + Sync + 'static,
    ) -> Self {
        Self {
            dir: store.root().join("explain"),
            project,
            places,
            stage_names,
            no_cache: false,
            filtered: BTreeMap::new(),
            seen: Mutex::default(),
            pending: Mutex::default(),
            told: AtomicBool::new(false),
            tell: Box::new(tell),
        }
    }

    /// Why steps run although their result is stored: `--no-cache`, and the
    /// vertices `--no-cache-filter` names (see [`no_cache_filter`]).
    pub fn forced(mut self, no_cache: bool, filtered: BTreeMap<Digest, String>) -> Self {
        self.no_cache = no_cache;
        self.filtered = filtered;
        self
    }

    /// A vertex was looked up. `files` lists what it read (path, digest),
    /// asked only when its content checksum is not the one recorded.
    pub(crate) fn looked_up(&self, lookup: &Lookup<'_, Op>, files: impl FnOnce() -> Option<Vec<(String, Digest)>>) {
        let vertex = lookup.vertex;
        let place = self.places.get(&vertex.digest).and_then(|p| p.first());
        let slot = self.slot(vertex, place);
        let prev = slot.as_ref().and_then(|s| StepRecord::decode(&std::fs::read(self.path(s, "json")).ok()?));
        // Listed before the lock is taken: it may read many files.
        let content_changed = prev.as_ref().map(|p| p.content.as_ref()) != Some(lookup.content);
        let listing = match (lookup.content, content_changed) {
            (Some(content), true) => files().map(|f| Arc::new(Listing::new(Some(content.clone()), f))),
            _ => None,
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let inputs = vertex.inputs.iter().zip(lookup.input_keys);
        let inputs = inputs.map(|(d, key)| Input { slot: seen.get(d).and_then(|s| s.slot.clone()), key: key.clone() });
        let record = self.record(lookup, place, inputs.collect());
        let forced = self.no_cache
            || self.filtered.contains_key(&vertex.digest)
            || vertex.inputs.iter().any(|d| seen.get(d).is_some_and(|s| s.forced));
        let step = place.map_or_else(|| vertex.name.clone(), |p| p.text.clone());
        let inputs = vertex.inputs.clone();
        let entry = Seen { index: lookup.index, step, slot, prev, record, listing, inputs, forced };
        if let Some(slot) = &entry.slot {
            let changed = entry.prev.as_ref().map(|p| &p.key) != Some(lookup.key);
            if lookup.cached && changed {
                self.write(slot, &entry.record, entry.listing.as_deref());
            } else if !lookup.cached {
                let pending = (slot.clone(), entry.record.clone(), entry.listing.clone());
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(lookup.key.clone(), pending);
            }
        }
        let first_miss = !lookup.cached && !self.told.swap(true, Ordering::Relaxed);
        seen.insert(vertex.digest.clone(), entry);
        if first_miss {
            let entry = &seen[&vertex.digest];
            let miss =
                Miss { index: entry.index, step: entry.step.clone(), changes: self.changes(&seen, &vertex.digest) };
            drop(seen);
            (self.tell)(&miss);
        }
    }

    /// The key the step looked up with `key` had the last time it ran in
    /// this project, when that was another.
    pub(crate) fn previous_key(&self, key: &CacheKey) -> Option<CacheKey> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.values().find(|s| &s.record.key == key)?;
        entry.prev.as_ref().map(|p| p.key.clone())
    }

    /// The result of the step that missed with `key` is saved: its record
    /// becomes the last seen.
    pub(crate) fn saved(&self, key: &CacheKey) {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        if let Some((slot, record, listing)) = pending {
            self.write(&slot, &record, listing.as_deref());
        }
    }

    /// What fed `lookup`'s key, as a record.
    fn record(&self, lookup: &Lookup<'_, Op>, place: Option<&StepPlace>, inputs: Vec<Input>) -> StepRecord {
        let op = &lookup.vertex.op;
        let args: Vec<(String, Value)> =
            place.map(|p| p.args.iter().map(|(n, v)| (n.clone(), Value::of(n, v))).collect()).unwrap_or_default();
        let env = match op {
            Op::Exec(e) => e
                .env
                .iter()
                .filter_map(|kv| kv.split_once('='))
                .filter(|(n, _)| !args.iter().any(|(a, _)| a == n))
                .map(|(n, v)| (n.to_owned(), Value::of(n, v)))
                .collect(),
            _ => Vec::new(),
        };
        let base = match op {
            Op::Image { name, digest } => Some(Base { name: name.clone(), digest: digest.clone() }),
            _ => None,
        };
        StepRecord {
            version: RECORD_VERSION,
            key: lookup.key.clone(),
            op: Digest::of(&serde_json::to_vec(op).unwrap_or_default()),
            text: place.map_or_else(|| lookup.vertex.name.clone(), |p| p.text.clone()),
            args,
            env,
            base,
            content: lookup.content.cloned(),
            inputs,
        }
    }

    /// Why `vertex` (looked up already) did not hit.
    fn changes(&self, seen: &HashMap<Digest, Seen>, digest: &Digest) -> Vec<Change> {
        let entry = &seen[digest];
        if self.no_cache {
            return vec![Change::NoCache];
        }
        if let Some(stage) = self.filtered.get(digest) {
            return vec![Change::NoCacheFilter(stage.clone())];
        }
        // An input that ran because of the filter: the blame is there.
        let forced_input = entry.inputs.iter().find(|d| seen.get(*d).is_some_and(|s| s.forced));
        let Some(prev) = &entry.prev else {
            return match forced_input {
                Some(d) => vec![self.blame(seen, d)],
                None => vec![Change::New],
            };
        };
        let prev_listing = match (&entry.listing, &entry.slot) {
            (Some(_), Some(slot)) => std::fs::read(self.path(slot, "files.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Listing>(&b).ok())
                .filter(|l| l.content == prev.content),
            _ => None,
        };
        let files = prev_listing.as_ref().zip(entry.listing.as_deref());
        let own = record::diff(prev, &entry.record, files);
        if !own.is_empty() {
            return own;
        }
        if let Some(d) = forced_input {
            return vec![self.blame(seen, d)];
        }
        // The first input whose key is not the one recorded.
        let moved = entry
            .inputs
            .iter()
            .zip(&entry.record.inputs)
            .enumerate()
            .find(|(i, (_, now))| prev.inputs.get(*i).is_none_or(|was| was.key != now.key));
        match moved {
            Some((_, (d, _))) => vec![self.blame(seen, d)],
            None if prev.key == entry.record.key => vec![Change::Gone],
            None => vec![Change::Definition],
        }
    }

    /// The input `digest` changed: why.
    fn blame(&self, seen: &HashMap<Digest, Seen>, digest: &Digest) -> Change {
        let input = &seen[digest];
        Change::Input { index: input.index, step: input.step.clone(), changes: self.changes(seen, digest) }
    }

    fn slot(&self, vertex: &Vertex<Op>, place: Option<&StepPlace>) -> Option<String> {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(b"kiln-explain-slot-v1");
        field(self.project.as_bytes());
        match (place, &vertex.op) {
            (Some(p), _) => {
                let stage = match self.stage_names.get(p.stage) {
                    Some(Some(name)) => format!("name:{name}"),
                    _ => format!("index:{}", p.stage),
                };
                field(stage.as_bytes());
                field(p.step.to_string().as_bytes());
            }
            (None, Op::Image { name, .. }) => {
                field(b"image");
                field(name.as_bytes());
            }
            _ => return None,
        }
        Some(Digest::from_hasher(h).hex().to_owned())
    }

    fn path(&self, slot: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{slot}.{ext}"))
    }

    /// Failing to keep a record costs only the next explanation: never an error.
    fn write(&self, slot: &str, record: &StepRecord, listing: Option<&Listing>) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        if let Some(listing) = listing {
            let bytes = serde_json::to_vec(listing).expect("a listing serialises");
            let _ = crate::store::write_hint(&self.path(slot, "files.json"), &bytes);
        }
        let _ = crate::store::write_hint(&self.path(slot, "json"), &record.encode());
    }
}

impl Miss {
    /// One line: `COPY . /app — 3 files changed: src/a.rs, src/b.rs, src/c.rs`.
    pub fn summary(&self) -> String {
        format!("{} — {}", self.step, describe(&self.changes))
    }

    /// Every change, one line each, files listed (up to a limit).
    pub fn details(&self) -> Vec<String> {
        let mut lines = vec![format!("cache miss: {}", self.step)];
        details(&self.changes, 1, &mut lines);
        lines
    }

    /// Whether the miss is what the user asked for or could not avoid (a
    /// first build, `--no-cache`, `--no-cache-filter`), so plain progress need
    /// not tell it.
    pub fn is_expected(&self) -> bool {
        fn expected(changes: &[Change]) -> bool {
            match changes.first() {
                Some(Change::New | Change::NoCache | Change::NoCacheFilter(_)) => true,
                Some(Change::Input { changes, .. }) => expected(changes),
                _ => false,
            }
        }
        expected(&self.changes)
    }
}

/// Paths shown per kind of file change in `--explain`'s details.
const SHOWN_PATHS: usize = 50;

fn describe(changes: &[Change]) -> String {
    let Some(first) = changes.first() else { return "changed".to_owned() };
    let more = match changes.len() {
        1 => String::new(),
        2 => " (and 1 more change)".to_owned(),
        n => format!(" (and {} more changes)", n - 1),
    };
    format!("{}{more}", short(first))
}

fn short(change: &Change) -> String {
    match change {
        Change::New => "no earlier build of this step in this store".to_owned(),
        Change::NoCache => "--no-cache".to_owned(),
        Change::NoCacheFilter(stage) => format!("--no-cache-filter {stage}"),
        Change::Instruction { old, new } => format!("instruction changed: {old} → {new}"),
        Change::Base { old, new, old_digest, new_digest } if old == new => {
            format!("base image {new} changed: {} → {}", brief(old_digest), brief(new_digest))
        }
        Change::Base { old, new, old_digest, new_digest } => {
            format!("base image changed: {old} ({}) → {new} ({})", brief(old_digest), brief(new_digest))
        }
        Change::Arg { name, old, new } => format!("build arg {name} changed: {old} → {new}"),
        Change::Env { name, old, new } => format!("ENV {name} changed: {old} → {new}"),
        Change::Files { added, removed, changed } => {
            let mut counts = Vec::new();
            for (n, what) in [(changed.len(), "changed"), (added.len(), "added"), (removed.len(), "removed")] {
                if n > 0 {
                    let noun = if counts.is_empty() {
                        if n == 1 {
                            " file"
                        } else {
                            " files"
                        }
                    } else {
                        ""
                    };
                    counts.push(format!("{n}{noun} {what}"));
                }
            }
            let all: Vec<&String> = changed.iter().chain(added).chain(removed).collect();
            let mut shown = all.iter().take(3).map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
            if all.len() > 3 {
                shown.push_str(", …");
            }
            format!("{}: {shown}", counts.join(", "))
        }
        Change::Content => "the files it reads changed".to_owned(),
        Change::Input { index, step, changes } => format!("its input #{index} {step} changed: {}", describe(changes)),
        Change::Definition => "its definition changed (a flag, USER, WORKDIR, SHELL or the like)".to_owned(),
        Change::Gone => "its stored result is gone (pruned), so it runs again".to_owned(),
    }
}

fn details(changes: &[Change], depth: usize, lines: &mut Vec<String>) {
    let pad = "  ".repeat(depth);
    for change in changes {
        match change {
            Change::Files { added, removed, changed } => {
                for (what, paths) in [("changed", changed), ("added", added), ("removed", removed)] {
                    for path in paths.iter().take(SHOWN_PATHS) {
                        lines.push(format!("{pad}{what}: {path}"));
                    }
                    if paths.len() > SHOWN_PATHS {
                        lines.push(format!("{pad}… and {} more {what}", paths.len() - SHOWN_PATHS));
                    }
                }
            }
            Change::Input { index, step, changes } => {
                lines.push(format!("{pad}because its input #{index} {step} changed:"));
                details(changes, depth + 1, lines);
            }
            other => lines.push(format!("{pad}{}", short(other))),
        }
    }
}

/// `sha256:` and 12 hex digits, as docker shortens IDs.
fn brief(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", hex.get(..12).unwrap_or(hex))
}
