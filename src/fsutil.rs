//! Path resolution inside a root folder that is not ours to trust (an image's
//! filesystem mounted on the host): symlinks are followed as the container would
//! see them, and nothing resolves outside the root.

use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

/// An I/O failure on a path: what kiln was doing, where, and the OS's reason.
/// Every module's error enum wraps it, so messages read alike everywhere.
#[derive(Debug, thiserror::Error)]
#[error("{action} {path}")]
pub struct PathError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// `map_err` adapter to any error that wraps a [`PathError`]; modules pin `E`
/// in a one-line helper of their own (`io_err`).
pub fn io_at<E: From<PathError>>(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> E {
    let path = path.to_owned();
    move |source| PathError { action, path, source }.into()
}

/// Open `rel` below the folder `dir` without ever leaving it: no symlink is
/// followed (not even one inside), nor `..` above it, nor a mount crossed.
/// For cleaning up a tree a hostile step wrote (the class of CVE-2024-23652):
/// a symlink where a folder was expected fails with ELOOP instead of
/// redirecting the cleanup to the host.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> std::io::Result<OwnedFd> {
    let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS
            | ResolveFlag::RESOLVE_NO_XDEV,
    );
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let fd = openat2(dir.as_raw_fd(), rel, how)?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Which end of a [`copy`] failed: a full disk is a write, a truncated
/// archive a read, and errors must say which.
#[derive(Debug)]
pub enum CopyFailure {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// `path` below `root`, as `Path::strip_prefix` gives it, by bytes when it
/// can: a path made by joining onto `root` starts with its very bytes, and
/// comparing them costs far less than comparing components, which a walk of
/// many files pays once a file.
pub fn below<'a>(path: &'a Path, root: &Path) -> Option<&'a Path> {
    use std::os::unix::ffi::OsStrExt;
    let rest = path.as_os_str().as_bytes().strip_prefix(root.as_os_str().as_bytes());
    match rest {
        Some([]) => Some(Path::new("")),
        Some([b'/', tail @ ..]) if !tail.starts_with(b"/") && !root.as_os_str().is_empty() => {
            Some(Path::new(OsStr::from_bytes(tail)))
        }
        _ => path.strip_prefix(root).ok(),
    }
}

/// Read until `buf` is full or the reader ends; how much was read.
pub fn read_full(from: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match from.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `io::copy`, telling a failed read from a failed write.
pub fn copy(from: &mut impl std::io::Read, to: &mut impl std::io::Write) -> Result<u64, CopyFailure> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyFailure::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(CopyFailure::Write)?;
        total += n as u64;
    }
}

/// A path resolved lexically, without looking at the filesystem: the one
/// lexical normaliser of the kiln package (copy sources and destinations,
/// .dockerignore patterns, archive entry names, the sandbox's working
/// directory all go through it).
///
/// The frontend keeps its own (`kiln_frontend`'s `convert::clean`): it is a
/// pure crate that cannot depend on this one, and it normalises Dockerfile
/// strings (always UTF-8, always `/`), where this works on host `Path`s whose
/// names may be any bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexical<'a> {
    /// The names left, in order: `.`, empty names and a leading `/` dropped,
    /// each `..` taking the name before it away.
    pub names: Vec<&'a OsStr>,
    /// How many `..` found no name before them to take away: they climb
    /// above where the path starts (or, for an absolute path, stay at `/`).
    pub climbs: usize,
}

impl Lexical<'_> {
    /// The names as a relative path, `..` clamped at the start (`a/../../b` → `b`).
    pub fn clamped(&self) -> PathBuf {
        self.names.iter().collect()
    }
}

/// Resolve `path` lexically (see [`Lexical`]).
pub fn lexical(path: &Path) -> Lexical<'_> {
    let mut out = Lexical { names: Vec::new(), climbs: 0 };
    for c in path.components() {
        match c {
            Component::Normal(n) => out.names.push(n),
            Component::ParentDir => {
                if out.names.pop().is_none() {
                    out.climbs += 1;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// How many symlinks one resolution may follow, as Linux's own limit.
const MAX_HOPS: usize = 40;

/// Resolve `path` (as seen inside the container) to a host path under `root`,
/// following symlinks relative to `root` and clamping `..` at it. Components that
/// do not exist are appended as they are. No component of the result is a
/// symlink, so the host never follows one out of `root`: more than [`MAX_HOPS`]
/// links is an error (ELOOP), never a path that still holds one.
pub fn resolve_in_root(root: &Path, path: &Path) -> std::io::Result<PathBuf> {
    let mut hops = 0;
    let mut todo: Vec<PathBuf> = path.components().rev().map(|c| PathBuf::from(c.as_os_str())).collect();
    let mut current = PathBuf::new(); // relative to root
    while let Some(part) = todo.pop() {
        match part.components().next() {
            None | Some(Component::RootDir) | Some(Component::CurDir) | Some(Component::Prefix(_)) => continue,
            Some(Component::ParentDir) => {
                current.pop();
                continue;
            }
            Some(Component::Normal(_)) => {}
        }
        let candidate = current.join(&part);
        match fs::symlink_metadata(root.join(&candidate)) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = fs::read_link(root.join(&candidate)).unwrap_or_default();
                if target.is_absolute() {
                    current = PathBuf::new();
                }
                todo.extend(target.components().rev().map(|c| PathBuf::from(c.as_os_str())));
            }
            _ => current = candidate,
        }
    }
    Ok(root.join(current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn below_is_strip_prefix() {
        for (path, root) in [
            ("/ctx/a/b", "/ctx"),
            ("/ctx", "/ctx"),
            ("/ctx/", "/ctx"),
            ("/ctxx/a", "/ctx"),
            ("/ctx//a", "/ctx"),
            ("/a/b", "/"),
            ("a/b", ""),
            ("/ctx/a", "/ctx/"),
            ("/other", "/ctx"),
        ] {
            let (path, root) = (Path::new(path), Path::new(root));
            assert_eq!(below(path, root), path.strip_prefix(root).ok(), "{path:?} below {root:?}");
        }
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        for (input, want) in [
            ("/bin/x", "usr/bin/x"),
            ("bin", "usr/bin"),
            ("/abs/passwd", "etc/passwd"),
            ("/up/etc", "etc"),
            ("/../../x", "x"),
            ("/new/dir/", "new/dir"),
        ] {
            assert_eq!(resolve_in_root(root, Path::new(input)).unwrap(), root.join(want), "{input}");
        }
        assert!(resolve_in_root(root, Path::new("/loop")).is_err());
        // A chain one longer than the limit, ending outside the root, must not resolve.
        for i in 0..=MAX_HOPS {
            symlink(format!("l{}", i + 1), root.join(format!("l{i}"))).unwrap();
        }
        symlink("/tmp", root.join(format!("l{}", MAX_HOPS + 1))).unwrap();
        let err = resolve_in_root(root, Path::new("/l0/x")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn paths_resolve_lexically() {
        for (input, names, climbs) in [
            ("a/b", "a/b", 0),
            ("./a//b/", "a/b", 0),
            ("/a/../b", "b", 0),
            ("a/../../b", "b", 1),
            ("/..", "", 1),
            ("../../x/./y/..", "x", 2),
            (".", "", 0),
            ("", "", 0),
        ] {
            let got = lexical(Path::new(input));
            assert_eq!((got.clamped(), got.climbs), (PathBuf::from(names), climbs), "{input:?}");
        }
    }

    #[test]
    fn copy_tells_a_failed_read_from_a_failed_write() {
        struct Failing;
        impl std::io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("read side"))
            }
        }
        impl std::io::Write for Failing {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        assert!(matches!(copy(&mut Failing, &mut Vec::new()), Err(CopyFailure::Read(_))));
        assert!(matches!(copy(&mut &b"data"[..], &mut Failing), Err(CopyFailure::Write(_))));
        let mut out = Vec::new();
        assert_eq!(copy(&mut &b"data"[..], &mut out).unwrap(), 4);
        assert_eq!(out, b"data");
    }
}
