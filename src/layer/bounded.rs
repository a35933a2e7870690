//! A tar stream whose extension records are bounded in size.
//!
//! tar-rs reads a GNU long name or long link (`L`, `K`) and a PAX extended
//! header (`x`, `g`) whole into memory before it hands out the entry they
//! describe, whatever size their header claims: a small gzip'd archive can so
//! make kiln allocate gigabytes. [`Bounded`] watches the headers as the bytes
//! go by and fails the read of any such record larger than [`MAX_EXTENSION`],
//! before tar-rs starts reading it.

use std::io::{self, Read};

/// The largest extension record accepted: far beyond any real path (Linux's
/// PATH_MAX is 4 KiB) or PAX header, far below what would hurt.
pub const MAX_EXTENSION: u64 = 1024 * 1024;

const BLOCK: u64 = 512;

/// The error of a record over the bound, inside the `io::Error` reads return.
#[derive(Debug, thiserror::Error)]
#[error(
    "a tar {what} record of {size} bytes is larger than the {} MiB allowed; this is no real file name or \
     PAX header: rebuild the archive with a standard tar",
    MAX_EXTENSION / 1024 / 1024
)]
pub struct TooLarge {
    what: &'static str,
    size: u64,
}

/// Whether `e` is a record refused for its size: the stream is a tar, if a hostile one.
pub fn refused(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|e| e.is::<TooLarge>())
}

/// `inner`, a tar stream, checked as described in the module's doc.
pub struct Bounded<R> {
    inner: R,
    /// Bytes handed out so far.
    pos: u64,
    /// Where the next header starts.
    next_header: u64,
    header: Vec<u8>,
    /// The data of a PAX `x` record being read (bounded), to learn a `size`
    /// that overrides the next entry's header, so we keep in step with tar-rs.
    pax: Option<(u64, Vec<u8>)>,
    pax_size: Option<u64>,
}

impl<R: Read> Bounded<R> {
    pub fn new(inner: R) -> Self {
        Bounded { inner, pos: 0, next_header: 0, header: Vec::new(), pax: None, pax_size: None }
    }

    /// Look at `bytes`, which start at `self.pos`.
    fn watch(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if let Some((end, data)) = &mut self.pax {
                let take = (*end - self.pos).min(bytes.len() as u64) as usize;
                data.extend_from_slice(&bytes[..take]);
                self.pos += take as u64;
                bytes = &bytes[take..];
                if self.pos == *end {
                    self.pax_size = pax_size(data);
                    self.pax = None;
                }
                continue;
            }
            if self.pos < self.next_header {
                let skip = (self.next_header - self.pos).min(bytes.len() as u64) as usize;
                self.pos += skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            let take = (BLOCK as usize - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..take]);
            self.pos += take as u64;
            bytes = &bytes[take..];
            if self.header.len() == BLOCK as usize {
                self.header_read()?;
            }
        }
        Ok(())
    }

    fn header_read(&mut self) -> io::Result<()> {
        let block = std::mem::take(&mut self.header);
        self.next_header = self.pos;
        if block.iter().all(|&b| b == 0) {
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&block);
        let mut size = header.entry_size()?;
        let kind = block[156];
        let extension = matches!(kind, b'L' | b'K' | b'x' | b'g');
        if extension && size > MAX_EXTENSION {
            let what = match kind {
                b'L' => "GNU long name",
                b'K' => "GNU long link",
                _ => "PAX extended header",
            };
            return Err(io::Error::new(io::ErrorKind::InvalidData, TooLarge { what, size }));
        }
        if !extension {
            if let Some(pax) = self.pax_size.take() {
                size = pax;
            }
        } else if kind == b'x' {
            self.pax = Some((self.pos + size, Vec::new()));
        }
        self.next_header = self
            .pos
            .checked_add(size.div_ceil(BLOCK) * BLOCK)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "tar entry size overflows"))?;
        Ok(())
    }
}

/// The `size` record of PAX extended header data, as tar-rs reads it.
fn pax_size(data: &[u8]) -> Option<u64> {
    tar::PaxExtensions::new(data)
        .filter_map(Result::ok)
        .filter(|e| e.key_bytes() == b"size")
        .filter_map(|e| e.value().ok()?.parse().ok())
        .last()
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.watch(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar with one file whose name is `len` bytes, in a GNU long name record.
    fn long_name_tar(len: usize) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        tar.append_data(&mut h, "a".repeat(len), &b"abc"[..]).unwrap();
        tar.into_inner().unwrap()
    }

    fn names(tar: &[u8]) -> io::Result<Vec<usize>> {
        let mut archive = tar::Archive::new(Bounded::new(tar));
        let mut out = Vec::new();
        for e in archive.entries()? {
            out.push(e?.path()?.as_os_str().len());
        }
        Ok(out)
    }

    #[test]
    fn a_huge_gnu_long_name_is_refused_before_it_is_read() {
        assert_eq!(names(&long_name_tar(300)).unwrap(), [300]);
        let err = names(&long_name_tar(2 * 1024 * 1024)).unwrap_err();
        assert!(err.to_string().contains("GNU long name record"), "{err}");
    }

    #[test]
    fn keeps_in_step_with_pax_sizes() {
        let mut tar = tar::Builder::new(Vec::new());
        tar.append_pax_extensions([("size", &b"1000"[..]), ("path", &b"p"[..])]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        h.set_cksum();
        let mut data = h.as_bytes().to_vec();
        data.extend(vec![0u8; 1024]);
        let mut bytes = tar.into_inner().unwrap();
        // Drop the end-of-archive blocks the builder wrote.
        bytes.truncate(bytes.len() - 1024);
        bytes.extend(&data);
        // The 1000 bytes of data hold what looks like a huge long-name header:
        // it is data, not a header, so it is not refused.
        let mut fake = tar::Header::new_gnu();
        fake.set_entry_type(tar::EntryType::GNULongName);
        fake.set_size(1 << 40);
        fake.set_cksum();
        let at = bytes.len() - 1024;
        bytes[at..at + 512].copy_from_slice(fake.as_bytes());
        bytes.extend(vec![0u8; 1024]);
        assert_eq!(names(&bytes).unwrap(), [1]);
    }
}
