//! A new snapshot's unchanged files taken from an older snapshot (the
//! *donor*: what the same step made last time) by hard link, instead of
//! written again.
//!
//! A COPY of a big context in which one small file changed makes a whole new
//! layer: its blob must be written, but its snapshot would write every
//! unchanged file a second time, doubling what reaches the disk and making an
//! inode per file. Linked from the donor, those files cost a directory entry
//! each.
//!
//! A donor's file is linked only when it is what extracting the entry would
//! write: a regular file reached below the donor's root through no symlink,
//! with the entry's size, mode, owner and mtime, no xattrs on either side,
//! and the same bytes, compared as the entry is read (so the blob's bytes and
//! the snapshot's stay one and the same, whatever the donor holds). Snapshots
//! are never written once in place, so two of them sharing an inode share a
//! read-only file: overlayfs copies it up before any change.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::sys::time::TimeSpec;

use crate::fsutil::{read_full, CopyFailure};

const CHUNK: usize = 256 * 1024;

/// What an entry must be for a donor's file to stand in for it.
pub(super) struct Wanted<'a> {
    pub rel: &'a Path,
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: &'a TimeSpec,
}

/// The last parent folder looked for in the donor, and whether the donor
/// holds it as real folders (no symlink on the way): the next entry of the
/// same folder need not walk it again.
#[derive(Debug, Default)]
pub(super) struct ParentSeen(Option<(PathBuf, bool)>);

/// A donor's file that may hold an entry's bytes.
pub(super) struct Candidate {
    path: PathBuf,
    file: File,
    size: u64,
}

/// Find in the snapshot folder `root` the file that could be `wanted`, by
/// everything but its bytes. Files of every size are looked for: a link
/// costs a comparison of bytes mostly in the page cache, where a new file
/// costs an inode, its blocks and its metadata (a one-file change in a
/// context of 40,000 small files: its COPY 3.5 -> 3.1 s, and half the
/// inodes).
pub(super) fn candidate(root: &Path, wanted: &Wanted<'_>, seen: &mut ParentSeen) -> Option<Candidate> {
    let parent = wanted.rel.parent()?;
    let mut path = root.to_owned();
    match &seen.0 {
        Some((known, real)) if known == parent => {
            if !real {
                return None;
            }
            path.push(parent);
        }
        _ => {
            let real = parent.components().all(|part| {
                path.push(part);
                fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir())
            });
            seen.0 = Some((parent.to_owned(), real));
            if !real {
                return None;
            }
        }
    }
    path.push(wanted.rel.file_name()?);
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path).ok()?;
    let meta = file.metadata().ok()?;
    let fits = meta.is_file()
        && meta.len() == wanted.size
        && meta.mode() & 0o7777 == wanted.mode & 0o7777
        && u64::from(meta.uid()) == wanted.uid
        && u64::from(meta.gid()) == wanted.gid
        && meta.mtime() == wanted.mtime.tv_sec()
        && meta.mtime_nsec() == wanted.mtime.tv_nsec()
        && xattr::FileExt::list_xattr(&file).ok()?.next().is_none();
    fits.then_some(Candidate { path, file, size: wanted.size })
}

/// Write the entry read from `entry` at `path` (which does not exist): as a
/// link to the candidate when its bytes are the entry's (true), else as a
/// new file (false) whose metadata the caller sets.
pub(super) fn link_or_write(entry: &mut impl Read, donor: Candidate, path: &Path) -> Result<bool, CopyFailure> {
    let Candidate { path: donor_path, mut file, size } = donor;
    // Most files are small: buffers of their size, not two chunks each.
    let len = usize::try_from(size).unwrap_or(CHUNK).clamp(1, CHUNK);
    let (mut ours, mut theirs) = (vec![0u8; len], vec![0u8; len]);
    let mut same = 0u64;
    loop {
        let n = read_full(entry, &mut ours).map_err(CopyFailure::Read)?;
        if n == 0 {
            break;
        }
        let m = read_full(&mut file, &mut theirs[..n]).unwrap_or(0);
        if m != n || ours[..n] != theirs[..n] {
            // They part here: what matched comes from the donor, the rest
            // from the entry.
            let mut out = create(path).map_err(CopyFailure::Write)?;
            file.rewind().map_err(CopyFailure::Write)?;
            copy_exact(&mut (&mut file).take(same), &mut out, same)?;
            out.write_all(&ours[..n]).map_err(CopyFailure::Write)?;
            crate::fsutil::copy(entry, &mut out)?;
            return Ok(false);
        }
        same += n as u64;
    }
    match fs::hard_link(&donor_path, path) {
        Ok(()) => Ok(true),
        // Too many links already (EMLINK), say: the same bytes, written.
        Err(_) => {
            let mut out = create(path).map_err(CopyFailure::Write)?;
            file.rewind().map_err(CopyFailure::Write)?;
            copy_exact(&mut file, &mut out, same)?;
            Ok(false)
        }
    }
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

/// Copy all of `from`, which must be `len` bytes long (a donor's file
/// cannot change, but a short read must not pass for its bytes).
fn copy_exact(from: &mut impl Read, to: &mut File, len: u64) -> Result<(), CopyFailure> {
    let copied = crate::fsutil::copy(from, to)?;
    if copied != len {
        let short = io::Error::new(io::ErrorKind::UnexpectedEof, "the donor snapshot's file got shorter");
        return Err(CopyFailure::Write(short));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn donor_file(root: &Path, rel: &str, bytes: &[u8]) -> (PathBuf, fs::Metadata) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        (path, meta)
    }

    fn wanted<'a>(rel: &'a Path, meta: &fs::Metadata, mtime: &'a TimeSpec) -> Wanted<'a> {
        Wanted { rel, size: meta.len(), mode: 0o100644, uid: meta.uid().into(), gid: meta.gid().into(), mtime }
    }

    fn mtime_of(meta: &fs::Metadata) -> TimeSpec {
        TimeSpec::new(meta.mtime(), meta.mtime_nsec())
    }

    /// A look with nothing seen before.
    fn find(donor: &Path, wanted: &Wanted<'_>) -> Option<Candidate> {
        candidate(donor, wanted, &mut ParentSeen::default())
    }

    #[test]
    fn the_same_bytes_are_linked_and_others_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (donor, new) = (dir.path().join("donor"), dir.path().join("new"));
        fs::create_dir(&new).unwrap();
        let bytes: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let (donor_path, meta) = donor_file(&donor, "big/blob", &bytes);
        let (rel, mtime) = (Path::new("big/blob"), mtime_of(&meta));

        let found = find(&donor, &wanted(rel, &meta, &mtime)).expect("a candidate");
        assert!(link_or_write(&mut &bytes[..], found, &new.join("same")).unwrap());
        assert_eq!(fs::metadata(new.join("same")).unwrap().ino(), meta.ino());

        // One byte differs after the first chunks: a new file, every byte the entry's.
        let mut changed = bytes.clone();
        changed[2 * CHUNK + 5] ^= 1;
        let found = find(&donor, &wanted(rel, &meta, &mtime)).unwrap();
        assert!(!link_or_write(&mut &changed[..], found, &new.join("changed")).unwrap());
        assert_ne!(fs::metadata(new.join("changed")).unwrap().ino(), meta.ino());
        assert_eq!(fs::read(new.join("changed")).unwrap(), changed);
        assert_eq!(fs::read(&donor_path).unwrap(), bytes, "the donor is left alone");
    }

    #[test]
    fn no_candidate_unless_everything_but_the_bytes_fits() {
        let dir = tempfile::tempdir().unwrap();
        let donor = dir.path().join("donor");
        let bytes = vec![7u8; 4096];
        let (_, meta) = donor_file(&donor, "a/file", &bytes);
        let (rel, mtime) = (Path::new("a/file"), mtime_of(&meta));
        assert!(find(&donor, &wanted(rel, &meta, &mtime)).is_some());

        let later = TimeSpec::new(mtime.tv_sec() + 1, 0);
        let mut other = wanted(rel, &meta, &mtime);
        other.mode = 0o100755;
        assert!(find(&donor, &other).is_none(), "mode");
        assert!(find(&donor, &wanted(rel, &meta, &later)).is_none(), "mtime");
        assert!(find(&donor, &Wanted { size: meta.len() + 1, ..wanted(rel, &meta, &mtime) }).is_none(), "size");
        assert!(find(&donor, &Wanted { uid: 4242, ..wanted(rel, &meta, &mtime) }).is_none(), "owner");
        assert!(find(&donor, &wanted(Path::new("a/missing"), &meta, &mtime)).is_none(), "missing");

        // Small and empty files are linked too.
        let new = dir.path().join("new");
        fs::create_dir(&new).unwrap();
        for (name, bytes) in [("a/small", &b"tiny"[..]), ("a/empty", &b""[..])] {
            let (_, small) = donor_file(&donor, name, bytes);
            let small_mtime = mtime_of(&small);
            let found = find(&donor, &wanted(Path::new(name), &small, &small_mtime)).expect(name);
            let path = new.join(name.replace('/', "-"));
            assert!(link_or_write(&mut &bytes[..], found, &path).unwrap(), "{name}");
            assert_eq!(fs::metadata(&path).unwrap().ino(), small.ino(), "{name}");
        }

        // A folder on the way that is a symlink (here, to the donor's own
        // `a`) is never gone through, nor is a symlink as the file.
        std::os::unix::fs::symlink("a", donor.join("via")).unwrap();
        assert!(find(&donor, &wanted(Path::new("via/file"), &meta, &mtime)).is_none());
        std::os::unix::fs::symlink("a/file", donor.join("link")).unwrap();
        assert!(find(&donor, &wanted(Path::new("link"), &meta, &mtime)).is_none());

        // What was seen of a parent serves the next look in it, and only it.
        let mut seen = ParentSeen::default();
        assert!(candidate(&donor, &wanted(Path::new("via/file"), &meta, &mtime), &mut seen).is_none());
        assert!(candidate(&donor, &wanted(Path::new("via/file"), &meta, &mtime), &mut seen).is_none());
        assert!(candidate(&donor, &wanted(rel, &meta, &mtime), &mut seen).is_some());
        assert!(candidate(&donor, &wanted(rel, &meta, &mtime), &mut seen).is_some());
        assert!(candidate(&donor, &wanted(Path::new("via/file"), &meta, &mtime), &mut seen).is_none());
    }
}
