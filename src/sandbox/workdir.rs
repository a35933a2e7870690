//! The working directory of a sandboxed command, resolved inside the new root
//! only (the class of CVE-2024-21626).
//!
//! The path comes from the image or the Dockerfile (`WORKDIR`, `-w`), so it is
//! hostile: `/proc/self/fd/N` is a magic link to whatever descriptor N is, and
//! a plain `chdir` would follow it out of the root. So the folder is opened
//! with openat2 from a descriptor of the root, with RESOLVE_IN_ROOT (symlinks
//! and `..` stay inside it) and RESOLVE_NO_MAGICLINKS (no /proc jumps), missing
//! folders are made with mkdirat below the folder already opened, and the
//! command enters it with fchdir. Afterwards `getcwd` must name a path inside
//! the root, or the command does not run.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{Gid, Uid};

/// Why the working directory cannot be entered. Each names the path as the
/// image or the command line wrote it.
#[derive(Debug, thiserror::Error)]
pub enum WorkdirError {
    #[error("the working directory {0:?} cannot be resolved")]
    Resolve(String, #[source] Errno),
    #[error("the working directory {0:?} cannot be created")]
    Create(String, #[source] Errno),
    #[error("the working directory {0:?} cannot be opened")]
    Open(String, #[source] Errno),
    #[error("the working directory {0:?} leads outside the container (through a /proc magic link)")]
    Escapes(String),
    #[error("the working directory {0:?} is not a directory")]
    NotADirectory(String),
    #[error("the working directory {0:?} is outside the container's root")]
    OutsideRoot(String),
}

type Result<T> = std::result::Result<T, WorkdirError>;

/// Open the working directory `path` (absolute, as the container sees it)
/// below the current root, creating missing folders owned by `uid`:`gid`, as
/// docker does. Runs after pivot_root, so `/` is the container's root.
pub(super) fn open(path: &str, uid: Uid, gid: Gid) -> Result<OwnedFd> {
    let root = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| WorkdirError::Resolve(path.to_owned(), e))?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    let root = unsafe { OwnedFd::from_raw_fd(root) };
    let mut dir = open_in(&root, Path::new(".")).map_err(|e| WorkdirError::Resolve(path.to_owned(), e))?;
    let mut sofar = PathBuf::new();
    // Cleaned as text first, as docker cleans a working directory (Go's
    // filepath.Clean): `/a/../b` is `/b`, and `..` stops at the root.
    for name in crate::fsutil::lexical(Path::new(path)).names {
        sofar.push(name);
        dir = match open_in(&root, &sofar) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                // Below the folder the prefix resolved to, so a symlinked
                // prefix creates the folder where the container will see it.
                match mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(WorkdirError::Create(path.to_owned(), e)),
                }
                let made = open_in(&root, &sofar).map_err(|e| WorkdirError::Open(path.to_owned(), e))?;
                chown(&made, uid, gid);
                made
            }
            Err(Errno::ELOOP) | Err(Errno::EXDEV) => return Err(WorkdirError::Escapes(path.to_owned())),
            Err(Errno::ENOTDIR) => return Err(WorkdirError::NotADirectory(path.to_owned())),
            Err(e) => return Err(WorkdirError::Open(path.to_owned(), e)),
        };
    }
    Ok(dir)
}

/// Open the folder `rel` (relative) with `root` as the root of the lookup:
/// neither `..` nor a symlink, absolute or relative, can leave it, and magic
/// links are refused outright.
fn open_in(root: &OwnedFd, rel: &Path) -> std::result::Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_raw_fd(), rel, how)?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn chown(dir: &OwnedFd, uid: Uid, gid: Gid) {
    // SAFETY: fchownat on a descriptor we own, with an empty path (AT_EMPTY_PATH).
    unsafe { libc::fchownat(dir.as_raw_fd(), c"".as_ptr(), uid.as_raw(), gid.as_raw(), libc::AT_EMPTY_PATH) };
}

/// After fchdir: the kernel must see the process's cwd inside its root.
/// getcwd fails (or, raw, starts with "(unreachable)") for a folder outside.
pub(super) fn check_inside_root(path: &str) -> Result<()> {
    match nix::unistd::getcwd() {
        Ok(cwd) if cwd.is_absolute() => Ok(()),
        _ => Err(WorkdirError::OutsideRoot(path.to_owned())),
    }
}
