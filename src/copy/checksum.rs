//! The checksum of what a COPY reads, for its cache key: names, types, modes,
//! xattrs, contents and link targets of everything the sources select, and
//! which names are hard links to which. Owners and times are left out, as
//! BuildKit does, so a fresh checkout of the same files hits the same cache.
//!
//! It is computed twice over the same files: once before the step, for the
//! cache key ([`checksum`]), and once more from the very bytes that go into
//! the layer as it is written ([`Checksum`] fed by `write_layer`). A file that
//! changed in between gives two different checksums, and the step fails
//! instead of storing a layer under a key that does not describe it. So both
//! passes must see every entry alike, hard links included: a later name of
//! an inode is hashed as a link to the first name (by its path below the
//! source root), its bytes not again.

use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kiln_solver::Digest;
use sha2::{Digest as _, Sha256};

use super::plan::{plan, Planned};
use super::{CopyError, SourceRoot};
use crate::layer::entry::{read_xattrs, HardLinks};
use kiln_frontend::CopyOp;

/// A checksum being computed, one selected source and one entry at a time.
/// Both passes feed it in the same order: a source's path, then for each of
/// its entries (the source itself first, then what is below it, sorted) the
/// entry, then a file's bytes.
pub(crate) struct Checksum(Sha256);

/// What an entry holds besides its name, mode and xattrs.
pub(crate) enum Body<'a> {
    /// Its own content: a file's bytes, which follow through
    /// [`Checksum::reader`]; nothing for a folder or a device.
    Own,
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
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// A selected source, by its path relative to the source root.
    pub(crate) fn source(&mut self, rel: &Path) {
        self.field(rel.to_string_lossy().as_bytes());
    }

    /// A source folder `--parents` keeps on the way to a source.
    pub(crate) fn parent(&mut self, host: &Path, rel: &Path) -> Result<fs::Metadata, CopyError> {
        let meta = fs::metadata(host).map_err(|e| CopyError::Read(host.to_owned(), e))?;
        self.field(b"parent");
        self.entry(rel, &meta, &[], Body::Own);
        Ok(meta)
    }

    /// One entry of a source: its path below the source (empty for the source
    /// itself), its metadata, the xattrs it is written with, and its body.
    pub(crate) fn entry(&mut self, rel: &Path, meta: &Metadata, xattrs: &[(String, Vec<u8>)], body: Body<'_>) {
        self.field(rel.to_string_lossy().as_bytes());
        self.field(&meta.mode().to_le_bytes());
        self.0.update((xattrs.len() as u64).to_le_bytes());
        for (key, value) in xattrs {
            self.field(key.as_bytes());
            self.field(value);
        }
        // A tag for each kind of body, so that no two bodies hash alike.
        match body {
            Body::Own if meta.is_file() => {
                self.field(b"data");
                self.0.update(meta.len().to_le_bytes());
            }
            Body::Own => self.field(b""),
            Body::Symlink(target) => {
                self.field(b"symlink");
                self.field(target.to_string_lossy().as_bytes());
            }
            Body::HardLink(first) => {
                self.field(b"hardlink");
                self.field(first.to_string_lossy().as_bytes());
            }
        }
    }

    /// `inner`, hashed as it is read: the file's bytes, exactly as they are used.
    pub(crate) fn reader<R: Read>(&mut self, inner: R) -> Hashing<'_, R> {
        Hashing { inner, checksum: self }
    }

    pub(crate) fn finish(self) -> Digest {
        Digest::from_hasher(self.0)
    }
}

/// A reader that feeds a [`Checksum`] what it reads.
pub(crate) struct Hashing<'a, R> {
    inner: R,
    checksum: &'a mut Checksum,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.checksum.0.update(&buf[..n]);
        Ok(n)
    }
}

/// The checksum of everything the sources of `op` select (the first pass).
pub fn checksum(from: &SourceRoot, op: &CopyOp) -> Result<Digest, CopyError> {
    let mut h = Checksum::new();
    let mut links = HardLinks::default();
    for Planned { sel, parents } in plan(from, op)? {
        h.source(&sel.rel);
        for (host, rel) in parents.iter().flat_map(|(_, dirs)| dirs) {
            h.parent(host, rel)?;
        }
        let mut entries = vec![(sel.host.clone(), PathBuf::new())];
        if sel.is_dir {
            entries.extend(sel.walk().collect::<Result<Vec<_>, _>>()?);
        }
        for (host, rel) in entries {
            let meta = if rel.as_os_str().is_empty() { fs::metadata(&host) } else { fs::symlink_metadata(&host) }
                .map_err(|e| CopyError::Read(host.clone(), e))?;
            // A selected folder is not itself written (its destination is),
            // so it brings no xattrs.
            let xattrs = if sel.is_dir && rel.as_os_str().is_empty() { Vec::new() } else { read_xattrs(&host)? };
            if let Some(first) = links.first(&meta, || sel.rel.join(&rel)) {
                h.entry(&rel, &meta, &xattrs, Body::HardLink(first));
                continue;
            }
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&host).map_err(|e| CopyError::Read(host.clone(), e))?;
                h.entry(&rel, &meta, &xattrs, Body::Symlink(&target));
                continue;
            }
            h.entry(&rel, &meta, &xattrs, Body::Own);
            if meta.is_file() {
                let f = fs::File::open(&host).map_err(|e| CopyError::Read(host.clone(), e))?;
                io::copy(&mut h.reader(f), &mut io::sink()).map_err(|e| CopyError::Read(host.clone(), e))?;
            }
        }
    }
    Ok(h.finish())
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
        let second = super::super::write_layer(&op, None, Some(ctx), writer.tar(), None).unwrap();
        let layer = writer.finish().unwrap();
        let blob = fs::File::open(store.blob_path(&layer.digest)).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(blob));
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
