//! The context index: what each file of a build context held when it was
//! last read, keyed by what `stat` says of it (size, mtime, ctime, inode,
//! device), so that a file whose metadata has not changed since is not read
//! again. A no-op rebuild of a big context reads no file contents at all.
//!
//! One index per context folder, in the store at
//! `context-index/<sha256 of the folder's canonical path>`. It is only ever a
//! cache: a missing, truncated or corrupt file is an empty index, a failed
//! write is no error, and nothing it holds reaches a cache key except a
//! digest the same bytes would give.
//!
//! The racy-git problem: a file written twice within one tick of its
//! filesystem's clock keeps the same metadata, so a digest taken between the
//! two writes would describe the first content forever. So a digest is only
//! trusted (kept on disk, and reused) when the file's ctime is older than the
//! moment its reading started by more than the clock's granularity: any later
//! write then gives a later ctime. ctime, not mtime, because `touch -d` can
//! set an mtime but nothing but the kernel sets a ctime. A file too fresh is
//! simply read again next time, when it is old enough.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

/// The first bytes of an index file; a new layout gets a new magic, and an
/// old file is then simply not read.
const MAGIC: &[u8; 8] = b"kilnci02";
/// At most this many entries are written (about 100 bytes each): the files
/// the last builds read come first, older ones go past it.
const MAX_ENTRIES: usize = 500_000;
/// At most this many index files in the store; the least recently written go.
const MAX_FILES: usize = 64;
/// How old a ctime with sub-millisecond digits must be to be trusted: such a
/// filesystem keeps nanoseconds, and the kernel stamps files from a clock
/// that lags by at most one tick (10 ms at HZ=100).
const FINE_MARGIN: Duration = Duration::from_millis(50);
/// The same for a ctime that is a whole millisecond (most likely a whole
/// second: ext3, FAT's two seconds, some FUSE filesystems).
const COARSE_MARGIN: Duration = Duration::from_secs(3);

/// What `stat` says of a file, as far as its content goes: a file whose
/// `Stat` is the same was not written since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
}

impl Stat {
    pub fn of(meta: &Metadata) -> Self {
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        Stat {
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the file was last changed early enough before `started` that
    /// a change after it would show in its ctime.
    fn settled_before(&self, started: SystemTime) -> bool {
        let margin = if self.ctime_ns % 1_000_000 == 0 { COARSE_MARGIN } else { FINE_MARGIN };
        let started = started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
        self.ctime_ns.saturating_add(margin.as_nanos() as i64) < started
    }
}

/// A sha256 of a file's bytes.
pub type ContentDigest = [u8; 32];

struct Entry {
    stat: Stat,
    digest: ContentDigest,
    /// Whether the digest may be reused by a file with the same `stat`
    /// (see the module's note on racy files), and so be written out.
    trusted: bool,
    /// Whether the file had no xattrs (none a layer keeps) when read: its
    /// ctime would have moved with any since, so a file with the same `stat`
    /// needs no listing of them.
    xattr_free: bool,
    /// Whether this process looked it up or recorded it: those are written
    /// first when the index is bounded.
    used: AtomicBool,
}

/// The index of one context folder. Shared by the steps of a build: every
/// method takes `&self`.
pub struct ContextIndex {
    root: PathBuf,
    /// Where it is kept; `None` for one that lives in memory only.
    file: Option<PathBuf>,
    // Read by every hashing thread at once; written when a file is read.
    // Loaded from `file` when first needed, or ahead by `preload`.
    state: OnceLock<RwLock<State>>,
    clock: fn() -> SystemTime,
}

#[derive(Default)]
struct State {
    /// By path below the root.
    /// By path below the root, as bytes: a `Path` hashes component by
    /// component, which a no-op build of many files pays once a file.
    entries: HashMap<OsString, Entry>,
    /// Whether a trusted entry was added or changed since it was read.
    dirty: bool,
}

impl ContextIndex {
    /// The index of the folder `root` (canonical), kept in `dir`; an
    /// unreadable one is an empty one.
    pub fn open(dir: &Path, root: &Path) -> Self {
        let file = dir.join(hex::encode(Sha256::digest(root.as_os_str().as_bytes())));
        ContextIndex { root: root.to_owned(), file: Some(file), state: OnceLock::new(), clock: SystemTime::now }
    }

    /// Read the index from its file now, if it was not yet: a walk of its
    /// folder does this beside the walk (reading 40,000 entries takes
    /// about as long as looking at 8,000 files).
    pub fn preload(&self) {
        self.state();
    }

    fn state(&self) -> &RwLock<State> {
        self.state.get_or_init(|| {
            let entries = self.file.as_ref().and_then(|f| fs::read(f).ok()).and_then(|b| decode(&b));
            RwLock::new(State { entries: entries.unwrap_or_default(), dirty: false })
        })
    }

    /// An index that is never written, for a folder read once.
    pub fn in_memory(root: &Path) -> Self {
        ContextIndex {
            root: root.to_owned(),
            file: None,
            state: OnceLock::from(RwLock::default()),
            clock: SystemTime::now,
        }
    }

    /// The folder it indexes.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The time to pass to [`ContextIndex::record`] for a file about to be
    /// read: taken before its metadata is.
    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// The digest of the file at `rel` (below the root), if it was read
    /// before with the same metadata and can be trusted not to have changed.
    pub fn lookup(&self, rel: &Path, stat: &Stat) -> Option<ContentDigest> {
        self.known(rel, stat).map(|(digest, _)| digest)
    }

    /// [`ContextIndex::lookup`], and with the digest whether the file had no
    /// xattrs when it was read (any change to them since would have changed
    /// its ctime): one lookup for both, which an unchanged context makes
    /// once per file.
    pub fn known(&self, rel: &Path, stat: &Stat) -> Option<(ContentDigest, bool)> {
        let state = self.state().read().unwrap_or_else(|e| e.into_inner());
        let entry = state.entries.get(rel.as_os_str())?;
        entry.used.store(true, Ordering::Relaxed);
        (entry.trusted && entry.stat == *stat).then_some((entry.digest, entry.xattr_free))
    }

    /// The file at `rel` was read, from a time `started` taken before its
    /// metadata `before`, and held `digest`; `after` is its metadata once read.
    /// `xattr_free`: no xattrs were found on it, listed after `before`.
    pub fn record(
        &self,
        rel: &Path,
        before: &Stat,
        after: &Stat,
        digest: ContentDigest,
        xattr_free: bool,
        started: SystemTime,
    ) {
        let trusted = before == after && before.settled_before(started);
        let entry = Entry { stat: *before, digest, trusted, xattr_free, used: AtomicBool::new(true) };
        let mut state = self.state().write().unwrap_or_else(|e| e.into_inner());
        let old = state.entries.insert(rel.as_os_str().to_owned(), entry);
        let same = old.is_some_and(|o| {
            o.trusted == trusted && o.stat == *before && o.digest == digest && o.xattr_free == xattr_free
        });
        state.dirty |= trusted && !same;
    }

    /// The digest the file at `rel` had when it was last looked up or read:
    /// what the cache key was made of, for the layer to be checked against.
    pub fn planned(&self, rel: &Path) -> Option<ContentDigest> {
        let state = self.state().read().unwrap_or_else(|e| e.into_inner());
        state.entries.get(rel.as_os_str()).map(|e| e.digest)
    }

    /// Write the index if it learned anything: into a file of its own
    /// beside the old one, renamed over it, so a reader sees one whole
    /// index or the other. Only trusted entries are written, those used by
    /// this process first, at most [`MAX_ENTRIES`].
    pub fn save(&self) -> io::Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let bytes = {
            let mut state = self.state().write().unwrap_or_else(|e| e.into_inner());
            if !state.dirty {
                return Ok(());
            }
            state.dirty = false;
            encode(&state.entries)
        };
        let dir = file.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
        tmp.write_all(&bytes)?;
        tmp.persist(file).map_err(|e| e.error)?;
        evict(dir, MAX_FILES);
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: fn() -> SystemTime) -> Self {
        self.clock = clock;
        self
    }
}

/// The layout: [`MAGIC`], the count, then per entry the path's length and
/// bytes, size, mtime, ctime, inode, device (little endian), the digest and
/// whether it was xattr-free (one byte); last, the sha256 of all that, so a torn or damaged file reads as none.
fn encode(entries: &HashMap<OsString, Entry>) -> Vec<u8> {
    let mut kept: Vec<_> = entries.iter().filter(|(_, e)| e.trusted).collect();
    if kept.len() > MAX_ENTRIES {
        kept.sort_by_key(|(_, e)| !e.used.load(Ordering::Relaxed));
        kept.truncate(MAX_ENTRIES);
    }
    let mut out = Vec::with_capacity(16 + kept.len() * 112);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(kept.len() as u64).to_le_bytes());
    for (path, e) in kept {
        let path = path.as_bytes();
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path);
        let s = e.stat;
        for n in [s.size, s.mtime_ns as u64, s.ctime_ns as u64, s.ino, s.dev] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&e.digest);
        out.push(u8::from(e.xattr_free));
    }
    let sum = Sha256::digest(&out);
    out.extend_from_slice(&sum);
    out
}

/// The entries of an index file; `None` for anything but a whole, intact one.
fn decode(bytes: &[u8]) -> Option<HashMap<OsString, Entry>> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != sum {
        return None;
    }
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let count = r.u64()?;
    let mut entries = HashMap::with_capacity(count.min(MAX_ENTRIES as u64) as usize);
    for _ in 0..count {
        let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        let path = std::ffi::OsStr::from_bytes(r.take(len)?).to_owned();
        let (size, mtime_ns, ctime_ns, ino, dev) = (r.u64()?, r.u64()? as i64, r.u64()? as i64, r.u64()?, r.u64()?);
        let digest = r.take(32)?.try_into().ok()?;
        let xattr_free = match r.take(1)? {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        let stat = Stat { size, mtime_ns, ctime_ns, ino, dev };
        entries.insert(path, Entry { stat, digest, trusted: true, xattr_free, used: AtomicBool::new(false) });
    }
    r.0.is_empty().then_some(entries)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Remove the least recently written index files past `keep` (a context
/// folder built once, such as a test's, would otherwise stay forever).
fn evict(dir: &Path, keep: usize) {
    let Ok(read) = fs::read_dir(dir) else { return };
    let mut files: Vec<(SystemTime, PathBuf)> =
        read.filter_map(Result::ok).filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path()))).collect();
    if files.len() <= keep {
        return;
    }
    files.sort();
    for (_, path) in &files[..files.len() - keep] {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(size: u64, ctime_s: i64) -> Stat {
        Stat { size, mtime_ns: 7, ctime_ns: ctime_s * 1_000_000_000 + 123, ino: 1, dev: 2 }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn reuses_only_settled_digests_with_the_same_metadata() {
        let index = ContextIndex::in_memory(Path::new("/ctx"));
        let a = Path::new("a");
        let s = stat(3, 100);
        assert_eq!(index.lookup(a, &s), None);
        // Read in the same instant it was written: not trusted, but planned.
        index.record(a, &s, &s, [1; 32], true, UNIX_EPOCH + Duration::from_nanos(100_000_000_123));
        assert_eq!(index.lookup(a, &s), None);
        assert_eq!(index.planned(a), Some([1; 32]));
        // Changed while it was read: not trusted either.
        index.record(a, &s, &stat(4, 101), [1; 32], true, at(200));
        assert_eq!(index.lookup(a, &s), None);
        index.record(a, &s, &s, [2; 32], true, at(200));
        assert_eq!(index.lookup(a, &s), Some([2; 32]));
        for other in [stat(4, 100), stat(3, 101), Stat { mtime_ns: 8, ..s }, Stat { ino: 9, ..s }, Stat { dev: 9, ..s }]
        {
            assert_eq!(index.lookup(a, &other), None, "{other:?}");
        }
        assert_eq!(index.lookup(Path::new("b"), &s), None);
    }

    #[test]
    fn a_coarse_ctime_needs_seconds_to_settle() {
        let whole = Stat { ctime_ns: 100_000_000_000, ..stat(1, 0) };
        assert!(!whole.settled_before(at(101)));
        assert!(whole.settled_before(at(104)));
        let fine = stat(1, 100);
        assert!(!fine.settled_before(UNIX_EPOCH + Duration::from_nanos(100_010_000_123)));
        assert!(fine.settled_before(at(101)));
    }

    #[test]
    fn saves_trusted_entries_and_reads_back_only_intact_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new("/some/context");
        let index = ContextIndex::open(dir.path(), root);
        index.record(Path::new("kept"), &stat(1, 1), &stat(1, 1), [3; 32], true, at(100));
        index.record(Path::new("racy"), &stat(1, 100), &stat(1, 100), [4; 32], true, at(100));
        index.save().unwrap();
        let files: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].file_name().unwrap().len(), 64);

        let again = ContextIndex::open(dir.path(), root);
        assert_eq!(again.lookup(Path::new("kept"), &stat(1, 1)), Some([3; 32]));
        assert_eq!(again.planned(Path::new("racy")), None);
        // Another folder has an index of its own.
        assert_eq!(ContextIndex::open(dir.path(), Path::new("/other")).lookup(Path::new("kept"), &stat(1, 1)), None);

        let bytes = fs::read(&files[0]).unwrap();
        for (case, bad) in [
            ("truncated", bytes[..bytes.len() - 1].to_vec()),
            ("empty", Vec::new()),
            ("flipped", {
                let mut b = bytes.clone();
                b[20] ^= 1;
                b
            }),
        ] {
            fs::write(&files[0], bad).unwrap();
            let index = ContextIndex::open(dir.path(), root);
            assert_eq!(index.lookup(Path::new("kept"), &stat(1, 1)), None, "{case}");
        }
    }

    #[test]
    fn writes_only_what_it_learned_and_keeps_few_files() {
        let dir = tempfile::tempdir().unwrap();
        let index = ContextIndex::open(dir.path(), Path::new("/c"));
        index.save().unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing learned, nothing written");
        for i in 0..MAX_FILES + 3 {
            let index = ContextIndex::open(dir.path(), Path::new(&format!("/c{i}")));
            index.record(Path::new("f"), &stat(1, 1), &stat(1, 1), [5; 32], true, at(100));
            index.save().unwrap();
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), MAX_FILES);
    }
}
