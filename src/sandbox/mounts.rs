//! The spec's own mounts (RUN --mount, later `kiln run -v`), made over the
//! root filesystem before the pivot, after kiln's /proc, /dev and /sys.
//!
//! The root is an image, and the image (or an earlier step) decides what its
//! paths are: `/cache` may be a symlink to `/../../../etc`. So a target is
//! never handed to mount(2) as a path. It is opened with openat2's
//! RESOLVE_IN_ROOT from a descriptor of the root, which resolves symlinks as
//! the container would see them and never above the root; the missing
//! folders on the way are made one at a time from the descriptor of their
//! parent; and the mount goes onto `/proc/self/fd/N`, the exact inode that
//! was opened (runc does the same since CVE-2021-30465). The source is
//! pinned the same way, so a source swapped for a symlink after the engine
//! checked it is refused rather than followed.
//!
//! What is made here is predicted by the engine before the step runs
//! ([`planned_points`]), with the same resolution, so that
//! `rootfs::MountPoints` removes exactly those points from the step's layer.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{fstat, Mode, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};

use super::spec::{SpecMount, SpecMountKind};
use super::syscall::{Syscall, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

/// Why a mount of the spec could not be made. Each names the container path.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("opening the mount source {0}")]
    Source(PathBuf, #[source] Errno),
    #[error("the mount source {0} is a symlink; pass the path it points to")]
    SourceIsSymlink(PathBuf),
    #[error("resolving the mount target {0} inside the root")]
    Target(String, #[source] Errno),
    #[error("the mount target {0} changed while its mount point was made")]
    Changed(String),
    #[error("creating the mount target {0}")]
    Create(String, #[source] Errno),
    #[error("mounting on {0}")]
    Mount(String, #[source] Errno),
    #[error("mounting on {0}: a bind mount needs open_tree, mount_setattr and move_mount (Linux 5.12 or later)")]
    Unsupported(String),
    #[error("the mount target {0} is in the sandbox's {1} (through the image's symlinks): mount somewhere else")]
    KernelFs(String, &'static str),
}

type Result<T> = std::result::Result<T, MountError>;

/// Mount every one of `mounts` over `root`, in order (a later target may lie
/// inside an earlier mount).
pub(crate) fn mount_all(sys: &dyn Syscall, root: &Path, mounts: &[SpecMount]) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    let root_fd = open_root(root).map_err(|e| MountError::Target("/".into(), e))?;
    for m in mounts {
        mount_one(sys, root, root_fd.as_fd(), m)?;
    }
    Ok(())
}

/// A bind's error; the new mount API missing is said so.
fn bind_failed(target: &str, e: Errno) -> MountError {
    match e {
        Errno::ENOSYS => MountError::Unsupported(target.to_owned()),
        e => MountError::Mount(target.to_owned(), e),
    }
}

/// Refuse a target on the sandbox's /proc or /sys, reached through the
/// image's symlinks (the frontend refuses those paths as written): a mount
/// there could hide what `rootfs` makes read-only or masks.
fn refuse_kernel_fs(target: &OwnedFd, name: &str) -> Result<()> {
    use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
    match fstatfs(target).map(|st| st.filesystem_type()) {
        Ok(t) if t == PROC_SUPER_MAGIC => Err(MountError::KernelFs(name.to_owned(), "/proc")),
        Ok(t) if t == SYSFS_MAGIC => Err(MountError::KernelFs(name.to_owned(), "/sys")),
        _ => Ok(()),
    }
}

fn mount_one(sys: &dyn Syscall, root_path: &Path, root: BorrowedFd<'_>, m: &SpecMount) -> Result<()> {
    let failed = |e| MountError::Mount(m.target.clone(), e);
    match &m.kind {
        SpecMountKind::Bind { source, readonly } => {
            let src = open_source(source)?;
            let is_dir = fstat(src.as_raw_fd()).is_ok_and(|st| kind(st.st_mode) == SFlag::S_IFDIR);
            let target = open_target(root_path, root, &m.target, !is_dir)?;
            refuse_kernel_fs(&target, &m.target)?;
            // A detached copy of the source, made nosuid, nodev (and
            // read-only) before it is attached to the very inode opened
            // above: nothing is looked up by path after the checks, so a
            // step swapping the mount point for a symlink meanwhile cannot
            // send the mount, or a remount, elsewhere. Flags are only set,
            // so those a user namespace locks stay.
            let tree = sys.open_tree_clone(src.as_fd()).map_err(|e| bind_failed(&m.target, e))?;
            let mut attr = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
            if *readonly {
                attr |= MOUNT_ATTR_RDONLY;
            }
            sys.set_tree_attr(tree.as_fd(), attr).map_err(|e| bind_failed(&m.target, e))?;
            sys.move_mount(tree.as_fd(), target.as_fd()).map_err(|e| bind_failed(&m.target, e))
        }
        SpecMountKind::Tmpfs { size } => {
            let target = open_target(root_path, root, &m.target, false)?;
            refuse_kernel_fs(&target, &m.target)?;
            let data = match size {
                Some(size) => format!("mode=1777,size={size}"),
                None => "mode=1777".to_owned(),
            };
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            sys.mount(Some("tmpfs"), Path::new(&fd_path(&target)), Some("tmpfs"), flags, Some(&data)).map_err(failed)
        }
    }
}

/// The flags a remount of the mount holding `path` must keep: in a user
/// namespace the kernel locks a mount's nosuid, nodev, noexec, read-only and
/// atime flags, and a remount that drops one fails with EPERM.
pub(crate) fn locked_flags_of(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else { return MsFlags::empty() };
    let f = st.flags();
    [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(st, _)| f.contains(*st))
    .fold(MsFlags::empty(), |acc, (_, ms)| acc | ms)
}

/// The magic link of `fd`: mount(2) given it reaches exactly that inode.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn kind(mode: libc::mode_t) -> SFlag {
    SFlag::from_bits_truncate(mode) & SFlag::S_IFMT
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: callers pass a descriptor the kernel just returned, owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn open_root(root: &Path) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    nix::fcntl::open(root, flags, Mode::empty()).map(owned)
}

/// The engine's source, its last component not followed: the engine checked
/// it (a cache sub-folder holds no symlink), and a link put there since is
/// refused.
fn open_source(source: &Path) -> Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd =
        nix::fcntl::open(source, flags, Mode::empty()).map(owned).map_err(|e| MountError::Source(source.into(), e))?;
    match fstat(fd.as_raw_fd()) {
        Ok(st) if kind(st.st_mode) == SFlag::S_IFLNK => Err(MountError::SourceIsSymlink(source.into())),
        Ok(_) => Ok(fd),
        Err(e) => Err(MountError::Source(source.into(), e)),
    }
}

/// `path` opened (O_PATH) as the container would resolve it: symlinks
/// followed, but never above `root`, and no magic link.
fn open_in_root(root: BorrowedFd<'_>, path: impl AsRef<Path>) -> nix::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let rel = relative(path.as_ref());
    openat2(root.as_raw_fd(), rel.as_path(), how).map(owned)
}

/// `path` below the root, `.` for the root itself.
fn relative(path: &Path) -> PathBuf {
    let rel: PathBuf = path.components().filter(|c| !matches!(c, Component::RootDir)).collect();
    if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    }
}

/// Open the target, making what is missing of it: folders on the way, and
/// at the end a folder, or an empty file when a file is mounted there. A
/// symlink to a missing path (`/cache -> /var/cache`) gets the path it
/// names made, inside the root, as docker does: the target is first
/// resolved the container's way ([`crate::fsutil::resolve_in_root`], as
/// [`planned_points`] does), then made along that symlink-free path, each
/// name from a descriptor of its parent, and opened with RESOLVE_IN_ROOT.
fn open_target(root_path: &Path, root: BorrowedFd<'_>, target: &str, file: bool) -> Result<OwnedFd> {
    let err = |e| MountError::Target(target.to_owned(), e);
    match open_in_root(root, target) {
        Err(Errno::ENOENT) => {}
        other => return other.map_err(err),
    }
    let resolved = crate::fsutil::resolve_in_root(root_path, Path::new(target))
        .map_err(|e| err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL))))?;
    let rel = resolved.strip_prefix(root_path).map_err(|_| err(Errno::EXDEV))?;
    let names: Vec<&OsStr> =
        rel.components().filter_map(|c| if let Component::Normal(n) = c { Some(n) } else { None }).collect();
    let mut so_far = PathBuf::new();
    for (i, name) in names.iter().enumerate() {
        let parent = open_in_root(root, &so_far).map_err(err)?;
        so_far.push(name);
        match open_in_root(root, &so_far) {
            Ok(_) => continue,
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(err(e)),
        }
        let last = i + 1 == names.len();
        let made = if last && file {
            let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC;
            nix::fcntl::openat(Some(parent.as_raw_fd()), *name, flags, Mode::from_bits_truncate(0o644))
                .map(|fd| drop(owned(fd)))
        } else {
            nix::sys::stat::mkdirat(Some(parent.as_raw_fd()), *name, Mode::from_bits_truncate(0o755))
        };
        match made {
            Ok(()) => {}
            // Resolved already, so only a change made meanwhile lands here.
            Err(Errno::EEXIST) => return Err(MountError::Changed(target.to_owned())),
            Err(e) => return Err(MountError::Create(target.to_owned(), e)),
        }
    }
    open_in_root(root, rel).map_err(err)
}

/// A mount point the sandbox will create in the root, found before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Planned {
    /// Made by the sandbox, parents first, relative to the root.
    pub(crate) created: Vec<PathBuf>,
    /// The folders above them that the image has, nearest first, with their
    /// mode, uid and gid: making a point in one copies it up into the
    /// step's upper folder, and an untouched copy is no change of the step.
    pub(crate) parents: Vec<(PathBuf, Owner)>,
}

/// A folder's mode (permission bits), uid and gid.
pub(crate) type Owner = (u32, u32, u32);

/// What [`mount_all`] will create in `root` for `mounts`, resolved the same
/// way (the image's symlinks followed inside the root). A target inside an
/// earlier mount is made on that mount, not in the root: left out.
pub(crate) fn planned_points(root: &Path, mounts: &[SpecMount]) -> Vec<Planned> {
    let mut mounted: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    for m in mounts {
        let Ok(resolved) = crate::fsutil::resolve_in_root(root, Path::new(&m.target)) else { continue };
        let Ok(rel) = resolved.strip_prefix(root).map(Path::to_owned) else { continue };
        if mounted.iter().any(|p| rel.starts_with(p)) {
            continue;
        }
        let mut created = Vec::new();
        let mut so_far = PathBuf::new();
        for c in rel.components() {
            so_far.push(c);
            if !created.is_empty() || root.join(&so_far).symlink_metadata().is_err() {
                created.push(so_far.clone());
            }
        }
        if let Some(first) = created.first() {
            use std::os::unix::fs::MetadataExt;
            let parents = first
                .ancestors()
                .skip(1)
                .filter(|p| !p.as_os_str().is_empty())
                .filter_map(|p| {
                    root.join(p).symlink_metadata().ok().map(|m| (p.to_owned(), (m.mode() & 0o7777, m.uid(), m.gid())))
                })
                .collect();
            out.push(Planned { created, parents });
        }
        mounted.push(rel);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::syscall::{Call, Recording};
    use std::fs;

    fn bind(target: &str, source: &Path, readonly: bool) -> SpecMount {
        SpecMount { target: target.into(), kind: SpecMountKind::Bind { source: source.into(), readonly } }
    }

    #[test]
    fn a_bind_is_a_detached_clone_made_nosuid_nodev_and_read_only_when_asked_then_attached() {
        use crate::sandbox::syscall::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
        let dir = tempfile::tempdir().unwrap();
        let (root, src) = (dir.path().join("root"), dir.path().join("src"));
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&src).unwrap();
        for (readonly, attr) in [
            (true, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_RDONLY),
            (false, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
        ] {
            let sys = Recording::default();
            mount_all(&sys, &root, &[bind("/data", &src, readonly)]).unwrap();
            // No mount(2) by path, and no remount after the attach: the
            // flags are set while the tree is still detached.
            assert_eq!(sys.calls(), [Call::OpenTreeClone, Call::SetTreeAttr(attr), Call::MoveMount]);
        }
        assert!(root.join("data").is_dir());
    }

    #[test]
    fn a_tmpfs_is_nosuid_nodev() {
        let dir = tempfile::tempdir().unwrap();
        let sys = Recording::default();
        let tmpfs = SpecMount { target: "/a/b".into(), kind: SpecMountKind::Tmpfs { size: Some(4096) } };
        mount_all(&sys, dir.path(), &[tmpfs]).unwrap();
        let calls = sys.calls();
        let [Call::Mount { source, fstype, flags, .. }] = &calls[..] else { panic!("{calls:?}") };
        assert_eq!((source.as_deref(), fstype.as_deref()), (Some("tmpfs"), Some("tmpfs")));
        assert_eq!(*flags, MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        assert!(dir.path().join("a/b").is_dir());
    }

    #[test]
    fn a_file_source_gets_an_empty_file_as_its_mount_point() {
        let dir = tempfile::tempdir().unwrap();
        let (root, src) = (dir.path().join("root"), dir.path().join("secret"));
        fs::create_dir_all(&root).unwrap();
        fs::write(&src, "s3cret").unwrap();
        mount_all(&Recording::default(), &root, &[bind("/run/secrets/s", &src, true)]).unwrap();
        let made = root.join("run/secrets/s");
        assert!(made.is_file() && fs::read(&made).unwrap().is_empty());
    }

    #[test]
    fn a_target_through_an_image_symlink_lands_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let (root, src, outside) = (dir.path().join("root"), dir.path().join("src"), dir.path().join("outside"));
        for d in [&root, &src, &outside] {
            fs::create_dir_all(d).unwrap();
        }
        // The image's /x climbs far above its root; the container sees /tmp.
        std::os::unix::fs::symlink("/../../../outside", root.join("x")).unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("y")).unwrap();
        let plan = planned_points(&root, &[bind("/x/in", &src, false)]);
        let sys = Recording::default();
        mount_all(&sys, &root, &[bind("/x/in", &src, false), bind("/y/in", &src, false)]).unwrap();
        assert!(root.join("outside/in").is_dir());
        assert!(!outside.join("in").exists(), "a mount point was made outside the root");
        assert_eq!(plan, [Planned { created: vec!["outside".into(), "outside/in".into()], parents: vec![] }]);
    }

    #[test]
    fn a_symlinked_source_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (root, link) = (dir.path().join("root"), dir.path().join("link"));
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        let sys = Recording::default();
        assert!(matches!(mount_all(&sys, &root, &[bind("/d", &link, true)]), Err(MountError::SourceIsSymlink(..))));
        assert!(sys.calls().is_empty());
    }

    #[test]
    fn a_symlink_to_a_missing_path_gets_that_path_made_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("/../nowhere/deeper", root.join("d")).unwrap();
        let tmpfs = SpecMount { target: "/d".into(), kind: SpecMountKind::Tmpfs { size: None } };
        let plan = planned_points(&root, std::slice::from_ref(&tmpfs));
        mount_all(&Recording::default(), &root, &[tmpfs]).unwrap();
        assert!(root.join("nowhere/deeper").is_dir() && !dir.path().join("nowhere").exists());
        assert_eq!(plan[0].created, [PathBuf::from("nowhere"), "nowhere/deeper".into()]);
    }

    #[test]
    fn the_plan_lists_what_is_missing_and_skips_targets_inside_earlier_mounts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        let tmpfs = |t: &str| SpecMount { target: t.into(), kind: SpecMountKind::Tmpfs { size: None } };
        let plan = planned_points(root, &[tmpfs("/usr/lib"), tmpfs("/usr/lib/x"), tmpfs("/usr/a/b"), tmpfs("/c")]);
        let created: Vec<_> = plan.iter().map(|p| p.created.clone()).collect();
        assert_eq!(created, [vec![PathBuf::from("usr/a"), "usr/a/b".into()], vec!["c".into()]]);
        let parents: Vec<_> = plan[0].parents.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(parents, [PathBuf::from("usr")]);
    }
}
