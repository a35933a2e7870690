//! The one writer of layer tar entries, for every layer kiln makes: COPY's
//! (`crate::copy`), RUN's ([`super::diff`]) and an imported rootfs's
//! (`crate::image_io`). One set of rules, so the same files give the same
//! bytes whichever way they came in:
//!
//! - names and link targets longer than the header's 100 bytes go into PAX
//!   `path` / `linkpath` records (a truncated copy stays in the header for old
//!   readers), as Go's archive/tar — docker, containerd, BuildKit — writes
//!   and reads them; never GNU `././@LongLink` entries, never a ustar prefix;
//! - extra PAX records (xattrs as `SCHILY.xattr.<name>`, records kept from an
//!   imported entry) share that one PAX header;
//! - an entry's data is exactly the size its header says: a file that grew
//!   while read is cut at that size, one that shrank fails the entry (tar
//!   pads what it got, not what the header says, which would corrupt the
//!   archive).
//!
//! Hard links and whiteouts are entries like any other here: the caller sets
//! the header's type and the link target ([`super::diff`] finds hard links and
//! whiteouts in an upper folder).

use std::io::{self, Read, Write};

use tar::Header;

use crate::fsutil::CopyFailure;

/// Append one entry to `out`: `header` (type, mode, owner, times, size) for
/// the entry `name`, a hard link's or symlink's target `link`, extra PAX
/// `records`, and the entry's data (read up to the header's size). A failure
/// of `data` is a [`CopyFailure::Read`], of `out` a [`CopyFailure::Write`].
pub fn append<W: Write>(
    out: &mut tar::Builder<W>,
    header: &mut Header,
    name: &[u8],
    link: Option<&[u8]>,
    records: &[(String, Vec<u8>)],
    data: impl Read,
) -> Result<(), CopyFailure> {
    let mut pax: Vec<(&str, &[u8])> = Vec::new();
    // A ustar header read from elsewhere may hold part of its old name in the
    // prefix field; the name is written whole below, or in a PAX record.
    if let Some(ustar) = header.as_ustar_mut() {
        ustar.prefix.fill(0);
    }
    if !set_field(&mut header.as_old_mut().name, name) {
        pax.push(("path", name));
    }
    if let Some(link) = link {
        if !set_field(&mut header.as_old_mut().linkname, link) {
            pax.push(("linkpath", link));
        }
    }
    pax.extend(records.iter().filter(|(k, _)| k != "path" && k != "linkpath").map(|(k, v)| (k.as_str(), &v[..])));
    if !pax.is_empty() {
        out.append_pax_extensions(pax).map_err(CopyFailure::Write)?;
    }
    header.set_cksum();
    let size = header.entry_size().map_err(CopyFailure::Write)?;
    let mut data = Exact { inner: data.take(size), count: 0, failed: None };
    match out.append(header, &mut data) {
        Err(e) => Err(data.failed.map_or(CopyFailure::Write(e), CopyFailure::Read)),
        Ok(()) if data.count != size => {
            Err(CopyFailure::Read(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while read")))
        }
        Ok(()) => Ok(()),
    }
}

/// An xattr as the PAX record Go's archive/tar writes for it, or `None` for a
/// name that is not UTF-8 (PAX keys are; Linux xattr names in practice are
/// ASCII).
pub fn xattr_record(name: &std::ffi::OsStr, value: Vec<u8>) -> Option<(String, Vec<u8>)> {
    Some((format!("SCHILY.xattr.{}", name.to_str()?), value))
}

/// Copy `value` into a NUL-padded header field; false when it had to be
/// truncated.
fn set_field(field: &mut [u8], value: &[u8]) -> bool {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
    field[n..].fill(0);
    n == value.len()
}

/// The data of one entry: counts what it hands out, and keeps its own read
/// failure, because the tar builder returns one error for both sides.
struct Exact<R> {
    inner: R,
    count: u64,
    failed: Option<io::Error>,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry as a reader sees it: path, link target, PAX keys, data.
    type Seen = (String, Option<String>, Vec<String>, Vec<u8>);

    fn read_back(tar: &[u8]) -> Vec<Seen> {
        let mut archive = tar::Archive::new(tar);
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut e = entry.unwrap();
            let path = e.path().unwrap().display().to_string();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            let keys = e
                .pax_extensions()
                .unwrap()
                .map(|p| p.map(|r| r.unwrap().key().unwrap().to_owned()).collect())
                .unwrap_or_default();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((path, link, keys, data));
        }
        out
    }

    #[test]
    fn long_names_and_records_go_in_one_pax_header_and_sizes_hold() {
        let long = "d/".repeat(60) + "f";
        let file = |size: u64| {
            let mut h = Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(size);
            h
        };
        let xattr = xattr_record("user.k".as_ref(), b"v".to_vec()).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        append(&mut b, &mut file(3), b"short", None, &[], &b"abc"[..]).unwrap();
        append(&mut b, &mut file(2), long.as_bytes(), None, &[xattr], &b"grown"[..]).unwrap();
        let mut link = Header::new_ustar();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        link.as_ustar_mut().unwrap().prefix[..3].copy_from_slice(b"old");
        append(&mut b, &mut link, b"l", Some(long.as_bytes()), &[], io::empty()).unwrap();
        let shrank = append(&mut b, &mut file(9), b"s", None, &[], &b"abc"[..]);
        assert!(matches!(shrank, Err(CopyFailure::Read(e)) if e.kind() == io::ErrorKind::UnexpectedEof));
        let tar = b.into_inner().unwrap();
        let got = read_back(&tar[..tar.len()]);
        let want = [
            ("short".to_owned(), None, vec![], b"abc".to_vec()),
            (long.clone(), None, vec!["path".to_owned(), "SCHILY.xattr.user.k".to_owned()], b"gr".to_vec()),
            ("l".to_owned(), Some(long.clone()), vec!["linkpath".to_owned()], vec![]),
        ];
        assert_eq!(got[..3], want[..]);
    }
}
