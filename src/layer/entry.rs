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
//!   imported entry) share that one PAX header; overlayfs's own xattrs
//!   ([`super::overlay`]) never go in, whoever passes them;
//! - an entry's data is exactly the size its header says: a file that grew
//!   while read is cut at that size, one that shrank fails the entry (tar
//!   pads what it got, not what the header says, which would corrupt the
//!   archive);
//! - with `SOURCE_DATE_EPOCH` (`epoch`), no time later than it: the header's
//!   mtime (and a GNU header's atime and ctime) and PAX `mtime`, `atime` and
//!   `ctime` records later than the epoch become the epoch, earlier ones stay
//!   (BuildKit's `rewrite-timestamp`). A step's files carry the time it ran;
//!   clamped, two builds of the same input give the same layer.
//!
//! Hard links and whiteouts are entries like any other here: the caller sets
//! the header's type and the link target. Writers that read files from a
//! folder (RUN's upper folder, COPY's sources) share two more rules, kept
//! here: [`read_xattrs`] (which xattrs a file brings along) and [`HardLinks`]
//! (the second and later names of an inode become links to the first name
//! written). An imported tar brings its own link entries and xattr records.

use std::collections::hash_map::{Entry, HashMap};
use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tar::Header;

use super::overlay::is_overlay_xattr;
use crate::fsutil::{io_at, CopyFailure, PathError};

/// The PAX record key prefix of an xattr, as Go's archive/tar names it.
const XATTR: &str = "SCHILY.xattr.";

/// Append one entry to `out`: `header` (type, mode, owner, times, size) for
/// the entry `name`, a hard link's or symlink's target `link`, extra PAX
/// `records`, and the entry's data (read up to the header's size), its times
/// clamped to `epoch` when given. A failure of `data` is a
/// [`CopyFailure::Read`], of `out` a [`CopyFailure::Write`].
pub fn append<W: Write>(
    out: &mut tar::Builder<W>,
    header: &mut Header,
    name: &[u8],
    link: Option<&[u8]>,
    records: &[(String, Vec<u8>)],
    data: impl Read,
    epoch: Option<u64>,
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
    let epoch_text = epoch.map(|e| e.to_string());
    pax.extend(records.iter().filter(|(k, _)| written(k)).map(|(k, v)| match (epoch, &epoch_text) {
        (Some(e), Some(text)) if TIME_RECORDS.contains(&k.as_str()) && pax_time_after(v, e) => {
            (k.as_str(), text.as_bytes())
        }
        _ => (k.as_str(), &v[..]),
    }));
    if let Some(epoch) = epoch {
        clamp_times(header, epoch);
    }
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

/// One layer's tar and the epoch its entries' times are clamped to: what the
/// writers of a whole layer (COPY's, RUN's diffs) pass around, so no entry of
/// theirs forgets the epoch.
pub struct Writer<'a, W: Write> {
    tar: &'a mut tar::Builder<W>,
    epoch: Option<u64>,
}

impl<'a, W: Write> Writer<'a, W> {
    /// Entries into `tar`, their times clamped to `epoch` when given.
    pub fn new(tar: &'a mut tar::Builder<W>, epoch: Option<u64>) -> Self {
        Self { tar, epoch }
    }

    /// [`append`] into this layer.
    pub fn append(
        &mut self,
        header: &mut Header,
        name: &[u8],
        link: Option<&[u8]>,
        records: &[(String, Vec<u8>)],
        data: impl Read,
    ) -> Result<(), CopyFailure> {
        append(self.tar, header, name, link, records, data, self.epoch)
    }
}

/// The PAX records that hold a time, as Go's archive/tar writes them.
const TIME_RECORDS: [&str; 3] = ["mtime", "atime", "ctime"];

/// Set the header's times later than `epoch` to `epoch`. A GNU header's atime
/// and ctime count too: an imported entry may bring them (kiln's own headers
/// leave them zero).
fn clamp_times(header: &mut Header, epoch: u64) {
    if header.mtime().is_ok_and(|t| t > epoch) {
        header.set_mtime(epoch);
    }
    if let Some(gnu) = header.as_gnu_mut() {
        if gnu.atime().is_ok_and(|t| t > epoch) {
            gnu.set_atime(epoch);
        }
        if gnu.ctime().is_ok_and(|t| t > epoch) {
            gnu.set_ctime(epoch);
        }
    }
}

/// Whether a PAX time record (`1700000000.123456789`, decimal seconds,
/// possibly negative) is later than `epoch`. One that does not parse is left
/// as it is, as readers ignore it.
fn pax_time_after(value: &[u8], epoch: u64) -> bool {
    let Ok(text) = std::str::from_utf8(value) else { return false };
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    match secs.parse::<u64>() {
        Ok(secs) => secs > epoch || (secs == epoch && fraction.bytes().any(|b| b != b'0')),
        Err(_) => false,
    }
}

/// An xattr as the PAX record Go's archive/tar writes for it, or `None` for a
/// name that is not UTF-8 (PAX keys are; Linux xattr names in practice are
/// ASCII).
pub fn xattr_record(name: &std::ffi::OsStr, value: Vec<u8>) -> Option<(String, Vec<u8>)> {
    Some((format!("{XATTR}{}", name.to_str()?), value))
}

/// Whether [`append`] writes a record it is given: `path` and `linkpath` are
/// written from its name and link arguments instead, and overlayfs's xattrs
/// describe a snapshot, not the image.
fn written(key: &str) -> bool {
    match key.strip_prefix(XATTR) {
        Some(name) => !is_overlay_xattr(name.as_bytes()),
        None => key != "path" && key != "linkpath",
    }
}

/// The xattrs of `path` (not followed if a symlink) that go into a layer, as
/// PAX records sorted by name: all but overlayfs's own and the host's SELinux
/// label. A filesystem without
/// xattr support simply has none.
pub fn read_xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>, PathError> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(io_at("listing xattrs of", path)(e)),
    };
    let mut xattrs = Vec::new();
    for name in names {
        // security.selinux is the label of the host the file sits on, not part
        // of the image (docker and containerd leave it out too).
        if is_overlay_xattr(name.as_bytes()) || name == "security.selinux" {
            continue;
        }
        // An xattr removed since the listing is simply gone.
        if let Some(value) = xattr::get(path, &name).map_err(io_at("reading xattrs of", path))? {
            xattrs.extend(xattr_record(&name, value));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

/// The first name written of each inode that has several, so that its later
/// names become hard links to it, as docker and BuildKit write them. `T` is
/// whatever the writer needs to name that first entry by.
pub struct HardLinks<T>(HashMap<(u64, u64), T>);

impl<T> Default for HardLinks<T> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<T> HardLinks<T> {
    /// The first name of the inode `meta` describes, if this is a later name
    /// of it; otherwise `None`, and `name()` is kept as that first name when
    /// the inode has other names (`st_nlink > 1`). Folders are never links.
    pub fn first(&mut self, meta: &Metadata, name: impl FnOnce() -> T) -> Option<&T> {
        if !Self::shared(meta) {
            return None;
        }
        self.first_of(meta.dev(), meta.ino(), name)
    }

    /// Whether `meta` is of an inode that may have other names.
    pub fn shared(meta: &Metadata) -> bool {
        meta.nlink() >= 2 && !meta.is_dir()
    }

    /// [`HardLinks::first`] for the inode `ino` on `dev`, known to be shared.
    pub fn first_of(&mut self, dev: u64, ino: u64, name: impl FnOnce() -> T) -> Option<&T> {
        match self.0.entry((dev, ino)) {
            Entry::Occupied(first) => Some(first.into_mut()),
            Entry::Vacant(slot) => {
                slot.insert(name());
                None
            }
        }
    }
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
        append(&mut b, &mut file(3), b"short", None, &[], &b"abc"[..], None).unwrap();
        // Records the writer writes itself or never writes are left out.
        let records = [
            ("path".to_owned(), b"other".to_vec()),
            xattr,
            xattr_record("user.overlay.opaque".as_ref(), b"y".to_vec()).unwrap(),
        ];
        append(&mut b, &mut file(2), long.as_bytes(), None, &records, &b"grown"[..], None).unwrap();
        let mut link = Header::new_ustar();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        link.as_ustar_mut().unwrap().prefix[..3].copy_from_slice(b"old");
        append(&mut b, &mut link, b"l", Some(long.as_bytes()), &[], io::empty(), None).unwrap();
        let shrank = append(&mut b, &mut file(9), b"s", None, &[], &b"abc"[..], None);
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

    #[test]
    fn with_an_epoch_later_times_become_the_epoch_and_earlier_ones_stay() {
        const EPOCH: u64 = 1_700_000_000;
        // (header mtime, atime, ctime, PAX mtime record) → what is written.
        type Times = (u64, u64, u64, &'static str);
        let cases: [(u64, u64, u64, &str, Times); 4] = [
            (EPOCH + 5, EPOCH + 6, EPOCH + 7, "1700000009.5", (EPOCH, EPOCH, EPOCH, "1700000000")),
            (EPOCH - 5, 0, 0, "1699999995.25", (EPOCH - 5, 0, 0, "1699999995.25")),
            (EPOCH, EPOCH, EPOCH, "1700000000.000", (EPOCH, EPOCH, EPOCH, "1700000000.000")),
            (EPOCH, 0, 0, "1700000000.001", (EPOCH, 0, 0, "1700000000")),
        ];
        for (mtime, atime, ctime, record, want) in cases {
            let mut h = Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mtime(mtime);
            h.as_gnu_mut().unwrap().set_atime(atime);
            h.as_gnu_mut().unwrap().set_ctime(ctime);
            let records = [("mtime".to_owned(), record.as_bytes().to_vec())];
            let mut b = tar::Builder::new(Vec::new());
            append(&mut b, &mut h, b"f", None, &records, io::empty(), Some(EPOCH)).unwrap();
            let tar = b.into_inner().unwrap();
            let mut archive = tar::Archive::new(&tar[..]);
            let mut e = archive.entries().unwrap().next().unwrap().unwrap();
            let pax = e.pax_extensions().unwrap().unwrap().map(|r| r.unwrap().value().unwrap().to_owned()).collect();
            let pax: Vec<String> = pax;
            let h = e.header().as_gnu().unwrap();
            let got = (e.header().mtime().unwrap(), h.atime().unwrap(), h.ctime().unwrap(), pax[0].as_str());
            assert_eq!(got, want, "{mtime} {atime} {ctime} {record}");
        }
    }

    #[test]
    fn later_names_of_an_inode_link_to_the_first_and_xattrs_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name);
        std::fs::write(p("a"), "x").unwrap();
        std::fs::hard_link(p("a"), p("b")).unwrap();
        std::fs::write(p("c"), "y").unwrap();
        std::fs::create_dir(p("d")).unwrap();
        let mut links = HardLinks::default();
        let got = ["a", "c", "b", "d", "b"].map(|n| links.first(&std::fs::metadata(p(n)).unwrap(), || n).copied());
        assert_eq!(got, [None, None, Some("a"), None, Some("a")]);

        for (name, value) in [("user.z", "2"), ("user.a", "1"), ("user.overlay.opaque", "y")] {
            xattr::set(p("c"), name, value.as_bytes()).unwrap();
        }
        let want = [("SCHILY.xattr.user.a", "1"), ("SCHILY.xattr.user.z", "2")];
        let want: Vec<_> = want.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
        assert_eq!(read_xattrs(&p("c")).unwrap(), want);
        assert_eq!(read_xattrs(&p("a")).unwrap(), []);
    }
}
