//! The checksum of what a COPY reads, for its cache key: names, types, modes,
//! xattrs, contents and link targets of everything the sources select, and
//! which names are hard links to which. Owners and times are left out, as
//! BuildKit does, and so is the context's own path, so a fresh checkout of
//! the same files, anywhere, hits the same cache.
//!
//! A file's content enters it as the sha256 of its bytes. Those are taken in
//! parallel, and not at all for a file the context index has seen with the
//! same metadata ([`ContextIndex`]): an unchanged context is checked without
//! reading a byte of it.
//!
//! It is computed twice over the same files: once before the step, for the
//! cache key ([`listing`]), and once more from the very bytes that go into
//! the layer as it is written ([`Checksum`] fed by `write_layer`, which also
//! compares each file's digest with the one the key was made of). A file
//! that changed in between gives two different checksums, and the step fails
//! instead of storing a layer under a key that does not describe it. So both
//! passes must see every entry alike, hard links included: a later name of
//! an inode is hashed as a link to the first name (by its path below the
//! source root), its bytes not again.

use std::cell::RefCell;
use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kiln_frontend::CopyOp;
use kiln_solver::Digest;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::plan::{plan, Planned};
use super::{CopyError, SourceRoot};
use crate::context::index::{ContentDigest, ContextIndex, Stat};
use crate::layer::entry::{read_xattrs, HardLinks};

/// A checksum being computed, one selected source and one entry at a time.
/// Both passes feed it in the same order: a source's path, then for each of
/// its entries (the source itself first, then what is below it, sorted) the
/// entry with its body.
pub(crate) struct Checksum(Sha256);

/// What an entry holds besides its name, mode and xattrs.
pub(crate) enum Body<'a> {
    /// Nothing: a folder, a device, a fifo.
    Empty,
    /// A file's bytes, by their sha256.
    File(&'a ContentDigest),
    /// A symlink's target.
    Symlink(&'a Path),
    /// A later name of an inode: the first name's path below the source root.
    HardLink(&'a Path),
}

impl Checksum {
    pub(crate) fn new() -> Self {
        Self(Sha256::new())
    }

    fn field(&mut self, bytes: &[u8]) {
        field(&mut self.0, bytes);
    }

    /// A selected source, by its path relative to the source root.
    pub(crate) fn source(&mut self, rel: &Path) {
        self.field(rel.to_string_lossy().as_bytes());
    }

    /// A source folder `--parents` keeps on the way to a source.
    pub(crate) fn parent(&mut self, host: &Path, rel: &Path) -> Result<fs::Metadata, CopyError> {
        let meta = fs::metadata(host).map_err(|e| CopyError::Read(host.to_owned(), e))?;
        self.parent_entry(rel, meta.mode());
        Ok(meta)
    }

    fn parent_entry(&mut self, rel: &Path, mode: u32) -> Vec<u8> {
        self.field(b"parent");
        self.named(rel, record(mode, 0, &[], Body::Empty))
    }

    /// One entry of a source: its path below the source (empty for the source
    /// itself), its metadata, the xattrs it is written with, and its body.
    pub(crate) fn entry(&mut self, rel: &Path, meta: &Metadata, xattrs: &[(String, Vec<u8>)], body: Body<'_>) {
        self.named(rel, record(meta.mode(), meta.len(), xattrs, body));
    }

    /// An entry's name and record; the record back, for a listing.
    fn named(&mut self, rel: &Path, record: Vec<u8>) -> Vec<u8> {
        self.field(rel.to_string_lossy().as_bytes());
        self.0.update(&record);
        record
    }

    pub(crate) fn finish(self) -> Digest {
        Digest::from_hasher(self.0)
    }
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// All the checksum takes of an entry but its name: its mode, its size
/// (for a file), xattrs and body.
fn record(mode: u32, size: u64, xattrs: &[(String, Vec<u8>)], body: Body<'_>) -> Vec<u8> {
    // Written out, not hashed: these bytes are what the checksum takes.
    let mut out = Vec::with_capacity(64);
    let mut put = |bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    put(&mode.to_le_bytes());
    put(&(xattrs.len() as u64).to_le_bytes());
    for (key, value) in xattrs {
        put(key.as_bytes());
        put(value);
    }
    // A tag for each kind of body, so that no two bodies hash alike.
    match body {
        Body::File(digest) => {
            put(b"data");
            put(&size.to_le_bytes());
            put(digest);
        }
        Body::Empty => put(b""),
        Body::Symlink(target) => {
            put(b"symlink");
            put(target.to_string_lossy().as_bytes());
        }
        Body::HardLink(first) => {
            put(b"hardlink");
            put(first.to_string_lossy().as_bytes());
        }
    }
    out
}

/// A reader that hashes what it reads: a file's bytes, exactly as they are
/// used.
pub(crate) struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Self {
        Hashing { inner, hash: Sha256::new() }
    }

    pub(crate) fn finish(self) -> ContentDigest {
        self.hash.finalize().into()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// What a COPY reads, entry by entry, and the checksum they make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The checksum of the step's cache key (what [`checksum`] gives).
    pub checksum: Digest,
    /// Every entry, in the order the checksum takes them: its path below the
    /// source root as the checksum sees it (`.` for the root itself), and
    /// the digest of all the checksum takes of it but its name — type, mode,
    /// xattrs, and the sha256 of a file's bytes or a link's target — so any
    /// change to an entry changes its digest. A source selected twice is
    /// listed twice. Empty unless asked for.
    pub entries: Vec<(String, Digest)>,
    /// How many files were read: those the index did not know unchanged.
    pub files_read: usize,
}

/// The checksum of everything the sources of `op` select (the first pass),
/// read with no index.
pub fn checksum(from: &SourceRoot, op: &CopyOp) -> Result<Digest, CopyError> {
    Ok(scan(from, op, None, false)?.checksum)
}

/// What `op` reads of `from`, entry by entry, with its checksum; files the
/// `index` of `from` knows unchanged are not read, and it learns the others.
pub fn listing(from: &SourceRoot, op: &CopyOp, index: Option<&ContextIndex>) -> Result<Listing, CopyError> {
    scan(from, op, index, true)
}

/// One entry found, in the checksum's order; a file's content not yet
/// known. There is one per entry of the context, so it is kept small: the
/// rare kinds boxed, the xattrs a boxed slice (no allocation when none).
enum Item {
    /// A selected source: its path below the source root, and on the host.
    Source(Box<(PathBuf, PathBuf)>),
    /// A folder `--parents` keeps: its path below the root, below the pivot, and its mode.
    Parent(Box<(PathBuf, PathBuf, u32)>),
    /// An entry of the last source, by its host path (its path below the
    /// source is what follows the source's).
    Entry { host: PathBuf, mode: u32, xattrs: Box<[(String, Vec<u8>)]>, body: Pending },
}

enum Pending {
    Empty,
    /// A file: what `stat` said of it, and its digest once known (at once
    /// when the index knows the file unchanged).
    File(Stat, Option<ContentDigest>),
    Symlink(PathBuf),
    HardLink(PathBuf),
    /// One of several names of an inode (device, inode, and its body if it
    /// is the first name written), until the names are put in order.
    Linked(Box<(u64, u64, Pending)>),
}

/// An entry of a selected source (the source itself when `is_source`), its
/// body a file's content to come.
fn entry_item(
    host: PathBuf,
    is_source: bool,
    source_is_dir: bool,
    index: Option<&ContextIndex>,
) -> Result<Item, CopyError> {
    let meta = if is_source { fs::metadata(&host) } else { fs::symlink_metadata(&host) }
        .map_err(|e| CopyError::Read(host.clone(), e))?;
    // A file the index knows unchanged: its digest, and whether it had xattrs.
    let known = index
        .filter(|_| meta.is_file())
        .and_then(|index| index.known(crate::fsutil::below(&host, index.root())?, &Stat::of(&meta)));
    // A selected folder is not itself written (its destination is), so it
    // brings no xattrs; nor does a file the index knows had none since.
    let xattr_free = (source_is_dir && is_source) || known.is_some_and(|(_, free)| free);
    let xattrs = if xattr_free { Vec::new() } else { read_xattrs(&host)? };
    let body = if meta.file_type().is_symlink() {
        Pending::Symlink(fs::read_link(&host).map_err(|e| CopyError::Read(host.clone(), e))?)
    } else if meta.is_file() {
        Pending::File(Stat::of(&meta), known.map(|(digest, _)| digest))
    } else {
        Pending::Empty
    };
    let body = match HardLinks::<()>::shared(&meta) {
        true => Pending::Linked(Box::new((meta.dev(), meta.ino(), body))),
        false => body,
    };
    Ok(Item::Entry { host, mode: meta.mode(), xattrs: xattrs.into_boxed_slice(), body })
}

/// The first pass: the walk (names, metadata, xattrs, link targets) in the
/// checksum's order, then the files' contents in parallel, then the checksum
/// fed in order. Nothing holds a file's bytes: memory grows with the number
/// of entries only, a couple of hundred bytes each.
pub(crate) fn scan(
    from: &SourceRoot,
    op: &CopyOp,
    index: Option<&ContextIndex>,
    list: bool,
) -> Result<Listing, CopyError> {
    // Taken before any file's metadata, so before its reading too (see
    // `ContextIndex::record`).
    let started = index.map(ContextIndex::now);
    // By selected source: its own items, then its entries'.
    let mut items: Vec<Vec<Item>> = Vec::new();
    let mut links = HardLinks::default();
    let planned = plan(from, op)?;
    // The folders are walked while the index is read from disk.
    let (_, walks) = rayon::join(
        || index.map(ContextIndex::preload),
        || {
            let walk = |p: &Planned| if p.sel.is_dir { p.sel.walk() } else { Ok(Vec::new()) };
            planned.iter().map(walk).collect::<Result<Vec<_>, _>>()
        },
    );
    for (Planned { sel, parents }, walked) in planned.into_iter().zip(walks?) {
        let mut own = vec![Item::Source(Box::new((sel.rel.clone(), sel.host.clone())))];
        for (host, rel) in parents.iter().flat_map(|(_, dirs)| dirs) {
            let meta = fs::metadata(host).map_err(|e| CopyError::Read(host.clone(), e))?;
            let listed = host.strip_prefix(from.root()).unwrap_or(host).to_owned();
            own.push(Item::Parent(Box::new((listed, rel.clone(), meta.mode()))));
        }
        items.push(own);
        let mut entries = vec![(sel.host.clone(), PathBuf::new())];
        entries.extend(walked);
        // Each entry's stat and xattrs are a path lookup or two in the
        // kernel: tens of thousands of them are what an unchanged context
        // costs, so they are taken in parallel, in order. Which names are
        // later links to an inode depends on that order: settled after.
        let mut found = entries
            .into_par_iter()
            .map(|(host, rel)| entry_item(host, rel.as_os_str().is_empty(), sel.is_dir, index))
            .collect::<Result<Vec<_>, _>>()?;
        for item in &mut found {
            let Item::Entry { host, body, .. } = item else { continue };
            if let Pending::Linked(linked) = body {
                let (dev, ino, _) = **linked;
                let rel = crate::fsutil::below(host, &sel.host).unwrap_or(Path::new(""));
                *body = match links.first_of(dev, ino, || sel.rel.join(rel)) {
                    Some(first) => Pending::HardLink(first.clone()),
                    None => std::mem::replace(&mut linked.2, Pending::Empty),
                };
            }
        }
        items.push(found);
    }

    let read = AtomicUsize::new(0);
    items.par_iter_mut().flat_map(|group| group.par_iter_mut()).try_for_each(|item| -> Result<(), CopyError> {
        if let Item::Entry { host, body: Pending::File(stat, digest @ None), xattrs, .. } = item {
            *digest = Some(content(host, stat, xattrs.is_empty(), index.zip(started), &read)?);
        }
        Ok(())
    })?;

    let mut h = Checksum::new();
    // Sized once: grown by doubling, a listing of tens of thousands of
    // entries would hold up to twice its size at the peak of a big COPY.
    let mut entries = Vec::with_capacity(if list { items.iter().map(Vec::len).sum() } else { 0 });
    let (mut source, mut source_host) = (PathBuf::new(), PathBuf::new());
    for item in items.into_iter().flatten() {
        let (listed, record) = match item {
            Item::Source(source_of) => {
                (source, source_host) = *source_of;
                h.source(&source);
                continue;
            }
            Item::Parent(parent) => {
                let (listed, rel, mode) = *parent;
                (listed, h.parent_entry(&rel, mode))
            }
            Item::Entry { host, mode, xattrs, body } => {
                let (body, size) = match &body {
                    Pending::Empty => (Body::Empty, 0),
                    Pending::File(stat, digest) => {
                        (Body::File(digest.as_ref().expect("every file's digest is taken above")), stat.size())
                    }
                    Pending::Symlink(target) => (Body::Symlink(target), 0),
                    Pending::HardLink(first) => (Body::HardLink(first), 0),
                    Pending::Linked(_) => unreachable!("links are settled once the entries are found"),
                };
                let rel = crate::fsutil::below(&host, &source_host).unwrap_or(Path::new(""));
                let record = h.named(rel, record(mode, size, &xattrs, body));
                (source.join(rel), record)
            }
        };
        if list {
            let listed = listed.to_string_lossy();
            let path = if listed.is_empty() { ".".to_owned() } else { listed.into_owned() };
            entries.push((path, Digest::of(&record)));
        }
    }
    Ok(Listing { checksum: h.finish(), entries, files_read: read.into_inner() })
}

/// The sha256 of the file at `host`, which the index did not know unchanged
/// (see `entry_item`): read, and taught to the index.
fn content(
    host: &Path,
    stat: &Stat,
    xattr_free: bool,
    index: Option<(&ContextIndex, std::time::SystemTime)>,
    read: &AtomicUsize,
) -> Result<ContentDigest, CopyError> {
    let indexed = index.and_then(|(index, started)| Some((index, crate::fsutil::below(host, index.root())?, started)));
    read.fetch_add(1, Ordering::Relaxed);
    let (digest, after) = hash_file(host).map_err(|e| CopyError::Read(host.to_owned(), e))?;
    if let Some((index, rel, started)) = indexed {
        index.record(rel, stat, &Stat::of(&after), digest, xattr_free, started);
    }
    Ok(digest)
}

thread_local! {
    /// Each hashing thread's read buffer: large reads, and no allocation per file.
    static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 256 * 1024]);
}

/// The sha256 of a file's bytes, and its metadata once they are read.
fn hash_file(host: &Path) -> io::Result<(ContentDigest, Metadata)> {
    let mut file = fs::File::open(host)?;
    let mut hash = Sha256::new();
    BUFFER.with_borrow_mut(|buf| loop {
        match file.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => hash.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    })?;
    Ok((hash.finalize().into(), file.metadata()?))
}

#[cfg(test)]
mod tests {
    use super::super::select::tests::context;
    use super::*;
    use crate::layer::LayerWriter;
    use crate::store::Store;
    use kiln_frontend::CopyFrom;

    fn sum(ctx: &SourceRoot, sources: &[String]) -> Result<Digest, CopyError> {
        checksum(ctx, &CopyOp { sources: sources.to_vec(), dest: "/d/".into(), ..CopyOp::default() })
    }

    /// A layer entry: path, type, link target.
    type Seen = (String, char, Option<String>);

    /// `COPY <sources> /dst/` from scratch: the checksums of the first pass and
    /// of the layer written, and the layer's entries.
    fn both_passes(ctx: &SourceRoot, sources: &[&str]) -> (Digest, Digest, Vec<Seen>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sources = sources.iter().map(|s| s.to_string()).collect();
        let op = CopyOp {
            from: CopyFrom::Context,
            sources,
            dest: "/dst/".into(),
            chown: None,
            chmod: None,
            ..CopyOp::default()
        };
        let first = checksum(ctx, &op).unwrap();
        let mut writer = LayerWriter::new(&store).unwrap();
        let second = super::super::write_layer(&op, None, Some(ctx), None, writer.tar(), None).unwrap();
        let layer = writer.finish().unwrap();
        let blob = fs::File::open(store.blob_path(&layer.digest)).unwrap();
        let mut tar = tar::Archive::new(blob);
        let entries = tar.entries().unwrap().map(|e| {
            let e = e.unwrap();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            (e.path().unwrap().display().to_string(), e.header().entry_type().as_byte() as char, link)
        });
        (first, second, entries.collect())
    }

    #[test]
    fn both_passes_agree_on_hard_links_and_xattrs() {
        let (d, ctx) = context(&[("a", "one inode"), ("sub/c", "c")], "");
        let p = |rel: &str| d.path().join(rel);
        fs::hard_link(p("a"), p("b")).unwrap();
        fs::hard_link(p("a"), p("sub/d")).unwrap();
        xattr::set(p("sub/c"), "user.k", b"v").unwrap();
        let l = |target: &str| Some(target.to_owned());
        for (sources, want) in [
            (
                &["."][..],
                &[("dst", '5', None), ("dst/a", '0', None), ("dst/b", '1', l("dst/a")), ("dst/sub", '5', None)][..],
            ),
            (
                &["sub", "b"],
                &[("dst", '5', None), ("dst/c", '0', None), ("dst/d", '0', None), ("dst/b", '1', l("dst/d"))],
            ),
            // The one inode twice onto one path: written whole twice, never a link to itself.
            (&["a", "a"], &[("dst", '5', None), ("dst/a", '0', None), ("dst/a", '0', None)]),
        ] {
            let (first, second, got) = both_passes(&ctx, sources);
            assert_eq!(first, second, "{sources:?}");
            let want: Vec<_> = want.iter().map(|(p, k, l)| (p.to_string(), *k, l.clone())).collect();
            assert_eq!(got[..want.len()], want[..], "{sources:?}");
        }
        let (_, _, all) = both_passes(&ctx, &["."]);
        assert_eq!(all[4..], [("dst/sub/c".into(), '0', None), ("dst/sub/d".into(), '1', l("dst/a"))]);

        // A changed xattr, or a link broken into an equal copy, is another checksum.
        let before = sum(&ctx, &[".".into()]).unwrap();
        xattr::set(p("sub/c"), "user.k", b"w").unwrap();
        let xattr_changed = sum(&ctx, &[".".into()]).unwrap();
        assert_ne!(before, xattr_changed);
        fs::remove_file(p("b")).unwrap();
        fs::write(p("b"), "one inode").unwrap();
        assert_ne!(xattr_changed, sum(&ctx, &[".".into()]).unwrap());
    }

    /// A clock well past every file's ctime: what the index sees of a
    /// context whose files were written a while before the build.
    fn later() -> std::time::SystemTime {
        std::time::SystemTime::now() + std::time::Duration::from_secs(60)
    }

    #[test]
    fn an_indexed_context_is_checked_without_reading_it() {
        let (d, ctx) = context(&[("a", "one"), ("sub/b", "two"), ("sub/c", "three")], "");
        let index = ContextIndex::in_memory(d.path()).with_clock(later);
        let op = CopyOp { sources: vec![".".into()], dest: "/d/".into(), ..CopyOp::default() };
        let cold = listing(&ctx, &op, Some(&index)).unwrap();
        assert_eq!(cold.files_read, 3);
        assert_eq!(cold.checksum, checksum(&ctx, &op).unwrap(), "the index changes nothing of the checksum");
        let paths: Vec<_> = cold.entries.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, [".", "a", "sub", "sub/b", "sub/c"]);

        let warm = listing(&ctx, &op, Some(&index)).unwrap();
        assert_eq!((warm.files_read, &warm.checksum, &warm.entries), (0, &cold.checksum, &cold.entries));

        // Same size, its mtime put back: only the ctime tells, and it is read again.
        let b = d.path().join("sub/b");
        let mtime = fs::metadata(&b).unwrap().modified().unwrap();
        fs::write(&b, "TWO").unwrap();
        fs::File::options().write(true).open(&b).unwrap().set_modified(mtime).unwrap();
        let edited = listing(&ctx, &op, Some(&index)).unwrap();
        assert_eq!(edited.files_read, 1);
        assert_ne!(edited.checksum, cold.checksum);
        let changed: Vec<_> =
            edited.entries.iter().zip(&cold.entries).filter(|(e, c)| e != c).map(|(e, _)| e.0.as_str()).collect();
        assert_eq!(changed, ["sub/b"]);
    }

    #[test]
    fn a_file_too_fresh_to_trust_is_read_again() {
        let (d, ctx) = context(&[("a", "one")], "");
        let index = ContextIndex::in_memory(d.path());
        let op = CopyOp { sources: vec!["a".into()], dest: "/d/".into(), ..CopyOp::default() };
        // Written just now: a write within the same clock tick would not show.
        assert_eq!(listing(&ctx, &op, Some(&index)).unwrap().files_read, 1);
        assert_eq!(listing(&ctx, &op, Some(&index)).unwrap().files_read, 1);
    }

    #[test]
    fn many_files_hash_in_parallel_to_one_checksum_in_a_fixed_order() {
        let names: Vec<String> = (0..300).map(|i| format!("d{}/f{i}", i % 7)).collect();
        let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), n.as_str())).collect();
        let (_d, ctx) = context(&files, "");
        let op = CopyOp { sources: vec![".".into()], dest: "/d/".into(), ..CopyOp::default() };
        let first = listing(&ctx, &op, None).unwrap();
        assert_eq!(first.entries.len(), 1 + 7 + 300);
        for _ in 0..3 {
            assert_eq!(listing(&ctx, &op, None).unwrap().checksum, first.checksum);
        }
        // The same tree elsewhere, written in another order: the same checksum.
        let other = tempfile::tempdir().unwrap();
        for name in names.iter().rev() {
            let p = other.path().join(name);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, name).unwrap();
        }
        let ignore = std::sync::Arc::new(crate::context::dockerignore::DockerIgnore::none());
        let elsewhere = SourceRoot::Context { root: other.path().to_owned(), ignore };
        assert_eq!(listing(&elsewhere, &op, None).unwrap().checksum, first.checksum);
    }

    #[test]
    fn checksum_follows_content_not_times() {
        let (d, ctx) = context(&[("a.txt", "a"), ("sub/x.txt", "x")], "");
        let all = vec![".".to_string()];
        let one = sum(&ctx, &all).unwrap();
        assert_eq!(one, sum(&ctx, &all).unwrap());
        fs::write(d.path().join("sub/x.txt"), "y").unwrap();
        let two = sum(&ctx, &all).unwrap();
        assert_ne!(one, two);
        assert_eq!(sum(&ctx, &["a.txt".into()]).unwrap(), sum(&ctx, &["a.txt".into()]).unwrap());
    }
}
