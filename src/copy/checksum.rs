//! The checksum of what a COPY reads, for its cache key: names, types, modes,
//! contents and link targets of everything the sources select. Owners and
//! times are left out, as BuildKit does, so a fresh checkout of the same files
//! hits the same cache.
//!
//! It is computed twice over the same files: once before the step, for the
//! cache key ([`checksum`]), and once more from the very bytes that go into
//! the layer as it is written ([`Checksum`] fed by `write_layer`). A file that
//! changed in between gives two different checksums, and the step fails
//! instead of storing a layer under a key that does not describe it.

use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use kiln_solver::Digest;
use sha2::{Digest as _, Sha256};

use super::{select, CopyError, SourceRoot};

/// A checksum being computed, one selected source and one entry at a time.
/// Both passes feed it in the same order: a source's path, then for each of
/// its entries (the source itself first, then what is below it, sorted) the
/// entry, then a file's bytes.
pub(crate) struct Checksum(Sha256);

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

    /// One entry of a source: its path below the source (empty for the source
    /// itself), its metadata and, for a symlink, its target. A file's bytes
    /// follow through [`Checksum::reader`].
    pub(crate) fn entry(&mut self, rel: &Path, meta: &Metadata, link: Option<&Path>) {
        self.field(rel.to_string_lossy().as_bytes());
        self.field(&meta.mode().to_le_bytes());
        if let Some(target) = link {
            self.field(target.to_string_lossy().as_bytes());
        } else if meta.is_file() {
            self.0.update(meta.len().to_le_bytes());
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

/// The checksum of everything the sources select (the first pass).
pub fn checksum(from: &SourceRoot, sources: &[String]) -> Result<Digest, CopyError> {
    let mut h = Checksum::new();
    for sel in select(from, sources)? {
        h.source(&sel.rel);
        let mut entries = vec![(sel.host.clone(), PathBuf::new())];
        if sel.is_dir {
            entries.extend(sel.walk().collect::<Result<Vec<_>, _>>()?);
        }
        for (host, rel) in entries {
            let meta = if rel.as_os_str().is_empty() { fs::metadata(&host) } else { fs::symlink_metadata(&host) }
                .map_err(|e| CopyError::Read(host.clone(), e))?;
            let link = meta
                .file_type()
                .is_symlink()
                .then(|| fs::read_link(&host).map_err(|e| CopyError::Read(host.clone(), e)))
                .transpose()?;
            h.entry(&rel, &meta, link.as_deref());
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

    #[test]
    fn checksum_follows_content_not_times() {
        let (d, ctx) = context(&[("a.txt", "a"), ("sub/x.txt", "x")], "");
        let all = vec![".".to_string()];
        let one = checksum(&ctx, &all).unwrap();
        assert_eq!(one, checksum(&ctx, &all).unwrap());
        fs::write(d.path().join("sub/x.txt"), "y").unwrap();
        let two = checksum(&ctx, &all).unwrap();
        assert_ne!(one, two);
        assert_eq!(checksum(&ctx, &["a.txt".into()]).unwrap(), checksum(&ctx, &["a.txt".into()]).unwrap());
    }
}
