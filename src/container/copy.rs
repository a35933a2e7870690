//! `kiln cp`: files between a container and the host, both ways. Inside the
//! container every path is resolved with openat2's RESOLVE_IN_ROOT against
//! a descriptor of the container's root (a running one's through
//! `/proc/PID/root`; a stopped one's filesystem mounted here, its lock held),
//! so an absolute symlink or `..` in the container is taken as the container
//! takes it and never leads out of it; each name below is then opened from
//! its folder's descriptor with O_NOFOLLOW, and symlinks are copied as
//! symlinks, never followed.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};

use super::state::{io, Containers, Status};
use super::ContainerError;
use crate::store::Store;

/// Which way `kiln cp` copies.
pub enum Direction {
    /// `CONTAINER:SRC HOST_DEST`.
    Out { src: String, dest: PathBuf },
    /// `HOST_SRC CONTAINER:DEST`.
    In { src: PathBuf, dest: String },
}

/// Copy as `direction` says, in container `reference`.
pub fn copy(store: &Store, reference: &str, direction: &Direction) -> Result<(), ContainerError> {
    let containers = Containers::new(store);
    let id = containers.find(reference)?;
    let config = containers.config(&id)?;
    let state = containers.state(&id)?;
    // A stopped one's filesystem is mounted here meanwhile, held so that no
    // monitor mounts it too.
    let mut _held = None;
    let mut _mount = None;
    let root_path = if state.status == Status::Running {
        let init = super::processes::init_of(state.pid).ok_or(ContainerError::NotRunning(config.name.clone()))?;
        // Rootless kiln runs `cp` in the user's own namespace (see main.rs):
        // joined, it is the container's root, whose files are its own.
        if !nix::unistd::geteuid().is_root() {
            crate::sandbox::join::enter_user_namespace(init).map_err(ContainerError::Join)?;
        }
        PathBuf::from(format!("/proc/{init}/root"))
    } else {
        _held = Some(containers.hold_stopped(&id)?.ok_or(ContainerError::Running(config.name.clone()))?);
        let digest = config.image_id.parse().map_err(|_| ContainerError::NoSuchContainer(reference.to_owned()))?;
        let (_, layers) = crate::image::read(store, &digest)?;
        let mount = crate::snapshot::Snapshotter::new(store)
            .mount_kept(&layers, &containers.dir(&id).join("fs"))
            .map_err(ContainerError::Mount)?;
        let root = mount.root.clone();
        _mount = Some(mount);
        root
    };
    let root: OwnedFd = File::open(&root_path).map_err(io("opening the container's root", &root_path))?.into();
    let fail = |what: &str, path: &str| {
        let what = format!("{what} {path} in container {}", config.name);
        move |e: std::io::Error| ContainerError::Copy(what, e)
    };
    match direction {
        Direction::Out { src, dest } => {
            let (parent, name) = split(src);
            let dir = open_in_root(root.as_fd_borrowed(), &parent, OFlag::O_DIRECTORY).map_err(fail("opening", src))?;
            let dest = if dest.is_dir() { dest.join(name.as_deref().unwrap_or(".")) } else { dest.clone() };
            match name {
                Some(name) => copy_out(dir.as_fd_borrowed(), &name, &dest).map_err(fail("copying", src)),
                None => copy_dir_out(&dir, &dest).map_err(fail("copying", src)),
            }
        }
        Direction::In { src, dest } => {
            let meta = fs::symlink_metadata(src).map_err(io("reading", src))?;
            let base = src.file_name().map(|n| n.to_string_lossy().into_owned());
            // Into a folder that is there: under its own name, as cp does.
            let (dir, name) = match open_in_root(root.as_fd_borrowed(), Path::new(dest), OFlag::O_DIRECTORY) {
                Ok(dir) => (dir, base.unwrap_or_else(|| ".".to_owned())),
                Err(_) => {
                    let (parent, name) = split(dest);
                    let dir = open_in_root(root.as_fd_borrowed(), &parent, OFlag::O_DIRECTORY)
                        .map_err(fail("opening the folder of", dest))?;
                    (dir, name.unwrap_or_else(|| ".".to_owned()))
                }
            };
            copy_in(src, &meta, &dir, &name).map_err(fail("writing", dest))
        }
    }
}

/// A path in the container split into its folder and last name; `None`
/// when it names a folder by itself (`/`, `dir/.`, `dir/..`).
fn split(path: &str) -> (PathBuf, Option<String>) {
    let path = Path::new(path);
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !path.as_os_str().as_encoded_bytes().ends_with(b"/.") => {
            (parent.to_owned(), Some(name.to_string_lossy().into_owned()))
        }
        _ => (path.to_owned(), None),
    }
}

trait Borrow {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_>;
}

impl Borrow for OwnedFd {
    fn as_fd_borrowed(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// Open `rel` as the container sees it from `root`: its symlinks and `..`
/// resolved inside `root`, never a magic link.
fn open_in_root(root: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> std::io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let fd = openat2(root.as_raw_fd(), rel, how)?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `name` in the folder `dir`, by a path the kernel resolves from the
/// descriptor itself: the last name is the only one looked up.
fn at(dir: &OwnedFd, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

fn copy_out(dir: BorrowedFd<'_>, name: &str, dest: &Path) -> std::io::Result<()> {
    let owned = dir.try_clone_to_owned()?;
    let path = at(&owned, name);
    let meta = fs::symlink_metadata(&path)?;
    if meta.file_type().is_symlink() {
        let _ = fs::remove_file(dest);
        std::os::unix::fs::symlink(fs::read_link(&path)?, dest)
    } else if meta.is_dir() {
        let sub = open_in_root(dir, Path::new(name), OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)?;
        copy_dir_out(&sub, dest)
    } else if meta.is_file() {
        let mut from = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path)?;
        let mut to = File::create(dest)?;
        std::io::copy(&mut from, &mut to)?;
        to.set_permissions(fs::Permissions::from_mode(meta.permissions().mode() & 0o7777))
    } else {
        Ok(()) // devices, sockets and fifos are not copied
    }
}

fn copy_dir_out(dir: &OwnedFd, dest: &Path) -> std::io::Result<()> {
    if !dest.is_dir() {
        fs::create_dir(dest)?;
    }
    for entry in fs::read_dir(at(dir, "."))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        copy_out(std::os::fd::AsFd::as_fd(dir), &name, &dest.join(&name))?;
    }
    Ok(())
}

fn copy_in(src: &Path, meta: &fs::Metadata, dir: &OwnedFd, name: &str) -> std::io::Result<()> {
    let target = at(dir, name);
    let ft = meta.file_type();
    if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, &target)
    } else if ft.is_dir() {
        if name != "." {
            match fs::create_dir(&target) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                r => r?,
            }
        }
        let sub = open_in_root(std::os::fd::AsFd::as_fd(dir), Path::new(name), OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW)?;
        fs::set_permissions(at(&sub, "."), fs::Permissions::from_mode(meta.permissions().mode() & 0o7777))?;
        for entry in fs::read_dir(src)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            copy_in(&entry.path(), &fs::symlink_metadata(entry.path())?, &sub, &name)?;
        }
        Ok(())
    } else if ft.is_file() {
        // O_NOFOLLOW: a symlink the container put at that name is refused,
        // not written through.
        let mut to = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(meta.permissions().mode() & 0o7777)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)?;
        std::io::copy(&mut File::open(src)?, &mut to)?;
        to.set_permissions(fs::Permissions::from_mode(meta.permissions().mode() & 0o7777))
    } else {
        Ok(())
    }
}
