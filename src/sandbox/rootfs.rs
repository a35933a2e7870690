//! The container's root filesystem: what the sandbox mounts into the root the
//! engine prepared (/proc, a minimal /dev, a read-only /sys, the host's
//! /etc/resolv.conf and /etc/hosts, docker's masked paths), the pivot into
//! it, and the cleanup of the mount points it had to create, so that they
//! never end up in a RUN step's layer.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};

use super::mounts::{self, MountError, Planned};
use super::spec::{SpecFile, SpecMount, PIPES};
use super::syscall::Syscall;

/// The host files bound read-only over the same path in the image; created
/// in the image when it lacks them.
const HOST_FILES: [&str; 2] = ["/etc/resolv.conf", "/etc/hosts"];

/// The folders of the root the sandbox may create to mount on (or, for etc,
/// to hold [`HOST_FILES`]).
const MOUNT_DIRS: [&str; 4] = ["etc", "proc", "dev", "sys"];

/// The host devices bound into the container's /dev (its allow-list).
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Why the root filesystem could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mounting {source_name} on {target}")]
    Mount { source_name: String, target: PathBuf, source: Errno },
    #[error("/{0} in the image is not a directory")]
    NotADirectory(String),
    #[error("creating /{0}")]
    CreateDir(String, #[source] std::io::Error),
    #[error("creating {0}")]
    CreateFile(PathBuf, #[source] std::io::Error),
    #[error("chdir {0}")]
    Chdir(PathBuf, #[source] Errno),
    #[error("pivot_root into {0}")]
    PivotRoot(PathBuf, #[source] Errno),
    #[error("detaching the old root")]
    DetachOldRoot(#[source] Errno),
    #[error(transparent)]
    Mounts(#[from] MountError),
}

type Result<T> = std::result::Result<T, RootfsError>;

fn mount(
    sys: &dyn Syscall,
    src: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<()> {
    sys.mount(src, target, fstype, flags, data).map_err(|source| RootfsError::Mount {
        source_name: src.or(fstype).unwrap_or("-").to_owned(),
        target: target.to_owned(),
        source,
    })
}

/// Mount /proc, /dev, /sys, the host's resolv.conf and hosts, then the
/// spec's `mounts`, into `root` and pivot into it: afterwards `/` is `root`
/// and the cwd is `/`. `resolv_conf` replaces the host's (a private
/// network's, see `network`). Unless `confined` is false
/// (`RUN --security=insecure`, where docker --privileged does the same), /sys
/// is read-only and /proc's kernel knobs are read-only or masked.
pub(crate) fn enter(
    sys: &dyn Syscall,
    root: &Path,
    files: &[SpecFile],
    resolv_conf: Option<&Path>,
    user_mounts: &[SpecMount],
    confined: bool,
    readonly_root: bool,
) -> Result<()> {
    mount(sys, None, Path::new("/"), None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None)?;
    // pivot_root wants the new root to be a mount point of this namespace.
    mount(sys, Some(&root.to_string_lossy()), root, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)?;
    // nodev whatever the snapshotter: a copy snapshotter's root is a plain
    // folder where extraction as real root made an image's device nodes
    // (`b 8 0` would be the host's disk). The overlay is nodev already. The
    // flags a user namespace locks are kept, or the remount fails.
    let nodev = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NODEV | mounts::locked_flags_of(root);
    mount(sys, None, root, None, nodev, None)?;

    let proc_dir = ensure_dir(root, "proc")?;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(sys, Some("proc"), &proc_dir, Some("proc"), nosuid, None)?;

    let dev = ensure_dir(root, "dev")?;
    // nodev, like every other filesystem the command can write to: a node it
    // makes with mknod (CAP_MKNOD is docker's default) cannot be opened. The
    // host nodes bound below are mounts of their own, from the host's /dev,
    // and so stay usable: this is the sandbox's device allow-list.
    mount(sys, Some("tmpfs"), &dev, Some("tmpfs"), nosuid, Some("mode=755,size=65536k"))?;
    // mknod is not allowed in a user namespace: bind the host's device nodes instead.
    for node in DEVICES {
        let target = dev.join(node);
        fs::write(&target, b"").map_err(|e| RootfsError::CreateFile(target.clone(), e))?;
        mount(sys, Some(&format!("/dev/{node}")), &target, None, MsFlags::MS_BIND, None)?;
    }
    let pts = ensure_dir(root, "dev/pts")?;
    let devpts_flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    let devpts_data = Some("newinstance,ptmxmode=0666,mode=0620");
    if mount(sys, Some("devpts"), &pts, Some("devpts"), devpts_flags, devpts_data).is_ok() {
        let _ = symlink("pts/ptmx", dev.join("ptmx"));
    }
    let shm = ensure_dir(root, "dev/shm")?;
    mount(sys, Some("shm"), &shm, Some("tmpfs"), nosuid, Some("mode=1777,size=65536k"))?;
    if !files.is_empty() {
        write_pipes(sys, root, files)?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = symlink(target, dev.join(name));
    }
    // sysfs cannot be mounted without owning the network namespace, and a user
    // namespace may only bind it with its submounts (cgroups …): so a recursive
    // bind, made read-only all the way down. Where that fails, no /sys at all.
    if let Ok(sys_dir) = ensure_dir(root, "sys") {
        let bound = mount(sys, Some("/sys"), &sys_dir, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).is_ok();
        if bound && confined && sys.read_only_tree(&sys_dir).is_err() {
            let _ = sys.umount2(&sys_dir, MntFlags::MNT_DETACH);
        }
    }
    for file in HOST_FILES {
        let host = match resolv_conf {
            Some(own) if file == "/etc/resolv.conf" => own,
            _ => Path::new(file),
        };
        if host.exists() {
            bind_host_file(sys, root, host, Path::new(file))?;
        }
    }
    // Before the masking, so a mount under /proc cannot uncover a masked path.
    mounts::mount_all(sys, root, user_mounts)?;
    // `kiln run --read-only`: the root itself, not what is mounted on it
    // (/dev, /dev/shm, volumes, tmpfs mounts stay writable, as docker's).
    if readonly_root {
        let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | mounts::locked_flags_of(root);
        mount(sys, None, root, None, flags | MsFlags::MS_NODEV, None)?;
    }
    if confined {
        protect_proc_and_sys(sys, root);
    }

    // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the new.
    sys.chdir(root).map_err(|e| RootfsError::Chdir(root.to_owned(), e))?;
    sys.pivot_root(Path::new("."), Path::new(".")).map_err(|e| RootfsError::PivotRoot(root.to_owned(), e))?;
    sys.umount2(Path::new("."), MntFlags::MNT_DETACH).map_err(RootfsError::DetachOldRoot)?;
    sys.chdir(Path::new("/")).map_err(|e| RootfsError::Chdir("/".into(), e))?;
    Ok(())
}

/// The step's scripts in a tmpfs of their own at /dev/pipes (executable,
/// unlike the rest of /dev), made read-only once written. Their names are
/// plain (see `Spec::validated`) and /dev is the sandbox's own tmpfs, so
/// nothing here follows the image's links.
fn write_pipes(sys: &dyn Syscall, root: &Path, files: &[SpecFile]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let pipes = root.join(PIPES.trim_start_matches('/'));
    fs::create_dir(&pipes).map_err(|e| RootfsError::CreateFile(pipes.clone(), e))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(sys, Some("pipes"), &pipes, Some("tmpfs"), flags, Some("mode=755"))?;
    for file in files {
        let target = root.join(file.path.trim_start_matches('/'));
        fs::write(&target, &file.content).map_err(|e| RootfsError::CreateFile(target.clone(), e))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
            .map_err(|e| RootfsError::CreateFile(target.clone(), e))?;
    }
    mount(sys, None, &pipes, None, flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, None)
}

/// Bind the host's `file` read-only over the path `at` in the image. The path is
/// resolved inside the image (its /etc may be a symlink), so nothing is ever
/// created or mounted outside the root; an image whose path is not a regular
/// file, or cannot have one, simply goes without.
fn bind_host_file(sys: &dyn Syscall, root: &Path, file: &Path, at: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(target) = crate::fsutil::resolve_in_root(root, at) else { return Ok(()) };
    if target.symlink_metadata().is_err() {
        let Some(parent) = target.parent() else { return Ok(()) };
        if fs::create_dir_all(parent).is_err() {
            return Ok(());
        }
        // O_NOFOLLOW | O_EXCL: create exactly this file, never through a link.
        let created = fs::OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(&target);
        if created.is_err() {
            return Ok(());
        }
    }
    if target.symlink_metadata().is_ok_and(|m| m.is_file()) {
        mount(sys, Some(&file.to_string_lossy()), &target, None, MsFlags::MS_BIND, None)?;
        let read_only = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(sys, None, &target, None, read_only, None)?;
    }
    Ok(())
}

/// docker's read-only and masked paths. The command runs without CAP_SYS_ADMIN
/// (see `init`'s capability drop), so it cannot undo any of this.
fn protect_proc_and_sys(sys: &dyn Syscall, root: &Path) {
    let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for p in ["proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus", "proc/fs"] {
        let path = root.join(p);
        let source = path.to_string_lossy();
        if path.exists() && mount(sys, Some(&source), &path, None, MsFlags::MS_BIND | MsFlags::MS_REC, None).is_ok() {
            let _ = mount(sys, None, &path, None, ro, None);
        }
    }
    for p in
        ["proc/kcore", "proc/keys", "proc/latency_stats", "proc/timer_list", "proc/timer_stats", "proc/sched_debug"]
    {
        let path = root.join(p);
        if path.is_file() {
            let _ = mount(sys, Some("/dev/null"), &path, None, MsFlags::MS_BIND, None);
        }
    }
    for p in ["proc/acpi", "proc/scsi", "sys/firmware"] {
        let path = root.join(p);
        if path.is_dir() {
            let _ = mount(sys, Some("tmpfs"), &path, Some("tmpfs"), MsFlags::MS_RDONLY, Some("size=0"));
        }
    }
}

fn ensure_dir(root: &Path, rel: &str) -> Result<PathBuf> {
    let p = root.join(rel);
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => Ok(p),
        Ok(_) => Err(RootfsError::NotADirectory(rel.to_owned())),
        Err(_) => fs::create_dir_all(&p).map(|_| p.clone()).map_err(|e| RootfsError::CreateDir(rel.to_owned(), e)),
    }
}

/// The files [`enter`] bind-mounts over and had to create because the image
/// lacks them. Created only so something could be mounted there, they must
/// not end up in a layer — nor the folders their creation copied up.
/// Taken before the sandbox runs ([`MountPoints::before`]), applied to the
/// overlay's upper folder after ([`MountPoints::clean`]).
pub struct MountPoints {
    /// Host files' mount points (empty files).
    files: Vec<PathBuf>,
    /// The spec's mounts' points, and the image's folders above them.
    planned: Vec<Planned>,
}

impl MountPoints {
    /// The mount points missing from `root`, for kiln's host files and for
    /// `user_mounts`, resolved the way [`enter`] resolves them (the image's
    /// /etc may be a link).
    pub fn before(root: &Path, user_mounts: &[SpecMount]) -> Self {
        let files = HOST_FILES
            .into_iter()
            .filter_map(|p| crate::fsutil::resolve_in_root(root, Path::new(p)).ok())
            .filter(|p| p.symlink_metadata().is_err())
            .filter_map(|p| p.strip_prefix(root).ok().map(Path::to_owned))
            .collect();
        Self { files, planned: mounts::planned_points(root, user_mounts) }
    }

    /// Remove the mount points the sandbox made, and the folders made only to
    /// hold them, from `upper`. The step could have replaced any of these
    /// paths with a symlink to a host folder, so every lookup goes from a
    /// descriptor of `upper` and follows no symlink: such a path is left alone.
    pub fn clean(&self, upper: &Path) {
        self.clean_with(upper, true)
    }

    /// [`MountPoints::clean`] for a step whose filesystem is a copy, not an
    /// overlay: nothing was copied up there, so the image's folders above
    /// the spec's mount points are the image's own and stay.
    pub fn clean_copy(&self, root: &Path) {
        self.clean_with(root, false)
    }

    fn clean_with(&self, upper: &Path, copied_up_parents: bool) {
        use nix::sys::stat::{fstatat, SFlag};
        use nix::unistd::{unlinkat, UnlinkatFlags};
        use xattr::FileExt;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let Ok(root) = open_no_follow(upper, flags) else { return };
        for planned in &self.planned {
            remove_planned(root.as_fd(), planned, copied_up_parents);
        }
        for p in &self.files {
            let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else { continue };
            let Ok(dir) = crate::fsutil::open_beneath(root.as_fd(), parent, flags) else { continue };
            let st = fstatat(Some(dir.as_raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
            if st.is_ok_and(|st| {
                SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG && st.st_size == 0
            }) {
                let _ = unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir);
            }
        }
        for d in MOUNT_DIRS {
            let Ok(dir) = crate::fsutil::open_beneath(root.as_fd(), Path::new(d), OFlag::O_RDONLY | OFlag::O_DIRECTORY)
            else {
                continue;
            };
            let dir = fs::File::from(dir);
            let opaque = crate::layer::overlay::OPAQUE_XATTRS.iter().any(|a| dir.get_xattr(a).ok().flatten().is_some());
            if !opaque {
                // Fails, as it should, unless empty.
                let _ = unlinkat(Some(root.as_raw_fd()), d, UnlinkatFlags::RemoveDir);
            }
        }
    }
}

/// Remove a spec mount's points from the upper folder, deepest first: an
/// empty folder or empty file only (what the step wrote there stays, and so
/// do the folders holding it); then the image's folders above them that the
/// step left as they were, copied up only because a point was made inside.
/// Every lookup goes from `upper`'s descriptor and follows no symlink.
fn remove_planned(upper: std::os::fd::BorrowedFd<'_>, planned: &Planned, copied_up_parents: bool) {
    use nix::sys::stat::{fstatat, SFlag};
    use nix::unistd::{unlinkat, UnlinkatFlags};
    use xattr::FileExt;
    let remove = |p: &Path, expect: Option<mounts::Owner>| -> bool {
        let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else { return false };
        let Ok(dir) = crate::fsutil::open_beneath(upper, parent, OFlag::O_PATH | OFlag::O_DIRECTORY) else {
            return false;
        };
        let Ok(st) = fstatat(Some(dir.as_raw_fd()), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) else {
            return false;
        };
        let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFREG && expect.is_none() && st.st_size == 0 {
            return unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir).is_ok();
        }
        if kind != SFlag::S_IFDIR {
            return false;
        }
        if let Some(owner) = expect {
            if (st.st_mode & 0o7777, st.st_uid, st.st_gid) != owner {
                return false;
            }
            // An opaque folder hides the image's: the step replaced it.
            let Ok(fd) = crate::fsutil::open_beneath(upper, p, OFlag::O_RDONLY | OFlag::O_DIRECTORY) else {
                return false;
            };
            let fd = fs::File::from(fd);
            if crate::layer::overlay::OPAQUE_XATTRS.iter().any(|a| fd.get_xattr(a).ok().flatten().is_some()) {
                return false;
            }
        }
        // Fails, as it should, unless empty.
        unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir).is_ok()
    };
    for p in planned.created.iter().rev() {
        if !remove(p, None) {
            return;
        }
    }
    if !copied_up_parents {
        return;
    }
    for (p, owner) in &planned.parents {
        if !remove(p, Some(*owner)) {
            return;
        }
    }
}

/// Open the folder `path` itself, refusing a symlink.
fn open_no_follow(path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(path, flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    // SAFETY: open returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::syscall::{Call, Recording};

    fn position(calls: &[Call], want: impl Fn(&Call) -> bool) -> usize {
        calls.iter().position(want).unwrap_or_else(|| panic!("not called: {calls:#?}"))
    }

    fn mounts_on(calls: &[Call], target: &Path) -> usize {
        position(calls, |c| matches!(c, Call::Mount { target: t, .. } if t == target))
    }

    #[test]
    fn scripts_get_an_executable_tmpfs_made_read_only_once_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sys = Recording::default();
        let files = [SpecFile { path: "/dev/pipes/EOF".into(), content: "#!/bin/sh\necho hi\n".into() }];
        enter(&sys, root, &files, None, &[], true, false).unwrap();
        let calls = sys.calls();
        let pipes = root.join("dev/pipes");
        let mounts: Vec<(usize, MsFlags)> = calls
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Call::Mount { target, flags, .. } if *target == pipes => Some((i, *flags)),
                _ => None,
            })
            .collect();
        let [(made, flags), (remount, ro)] = mounts[..] else { panic!("{calls:#?}") };
        assert!(flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV) && !flags.contains(MsFlags::MS_NOEXEC));
        assert!(ro.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY));
        assert!(
            mounts_on(&calls, &root.join("dev")) < made
                && remount < position(&calls, |c| matches!(c, Call::PivotRoot(..)))
        );
        let script = pipes.join("EOF");
        assert_eq!(fs::read_to_string(&script).unwrap(), "#!/bin/sh\necho hi\n");
        assert_eq!(fs::metadata(&script).unwrap().permissions().mode() & 0o7777, 0o755);
    }

    #[test]
    fn everything_is_mounted_before_the_pivot_and_the_old_root_goes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sys = Recording::default();
        enter(&sys, root, &[], None, &[], true, false).unwrap();
        let calls = sys.calls();

        // Private propagation first, so nothing below leaks to the host.
        assert!(matches!(&calls[0], Call::Mount { target, flags, .. }
            if target == Path::new("/") && flags.contains(MsFlags::MS_PRIVATE)));
        assert!(matches!(&calls[1], Call::Mount { source: Some(s), target, .. }
            if Path::new(s) == root && target == root));
        // Then nodev, whatever the snapshotter made the root of.
        assert!(matches!(&calls[2], Call::Mount { source: None, target, flags, .. }
            if target == root && flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NODEV)));
        let pivot = position(&calls, |c| matches!(c, Call::PivotRoot(..)));
        for target in ["proc", "dev", "dev/null", "dev/tty", "dev/shm", "sys"] {
            assert!(mounts_on(&calls, &root.join(target)) < pivot, "{target} is mounted after the pivot");
        }
        assert!(mounts_on(&calls, &root.join("dev")) < mounts_on(&calls, &root.join("dev/null")));
        assert!(position(&calls, |c| matches!(c, Call::ReadOnlyTree(p) if p == &root.join("sys"))) < pivot);
        assert_eq!(
            calls[pivot - 1..],
            [
                Call::Chdir(root.to_owned()),
                Call::PivotRoot(".".into(), ".".into()),
                Call::Umount2(".".into()),
                Call::Chdir("/".into()),
            ]
        );
        // /proc and the tmpfs of /dev are nosuid, nodev and noexec.
        for target in ["proc", "dev", "dev/shm"] {
            let at = mounts_on(&calls, &root.join(target));
            let Call::Mount { flags, .. } = &calls[at] else { unreachable!() };
            assert!(flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC), "{target}");
        }
    }

    #[test]
    fn insecure_leaves_sys_and_the_kernel_knobs_writable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("proc/sys")).unwrap();
        let confined = |confined| {
            let sys = Recording::default();
            enter(&sys, root, &[], None, &[], confined, false).unwrap();
            let calls = sys.calls();
            let read_only = calls.iter().any(|c| matches!(c, Call::ReadOnlyTree(_)));
            let proc_sys =
                calls.iter().any(|c| matches!(c, Call::Mount { target, .. } if *target == root.join("proc/sys")));
            (read_only, proc_sys)
        };
        assert_eq!(confined(true), (true, true));
        assert_eq!(confined(false), (false, false));
    }

    #[test]
    fn the_specs_mounts_come_after_kilns_own_and_before_the_pivot() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sys = Recording::default();
        let tmpfs = SpecMount { target: "/cache".into(), kind: crate::sandbox::SpecMountKind::Tmpfs { size: None } };
        enter(&sys, root, &[], None, &[tmpfs], true, false).unwrap();
        let calls = sys.calls();
        let user = position(&calls, |c| matches!(c, Call::Mount { target, .. } if target.starts_with("/proc/self/fd")));
        for own in ["proc", "dev", "dev/shm", "sys"] {
            assert!(mounts_on(&calls, &root.join(own)) < user, "{own} is mounted after the spec's mounts");
        }
        assert!(user < position(&calls, |c| matches!(c, Call::PivotRoot(..))));
        assert!(root.join("cache").is_dir());
    }

    #[test]
    fn a_private_networks_resolv_conf_is_bound_instead_of_the_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        let own = dir.path().join("resolv.conf");
        fs::write(&own, "nameserver 169.254.1.1\n").unwrap();
        let source_of = |resolv_conf: Option<&Path>| {
            let sys = Recording::default();
            enter(&sys, &root, &[], resolv_conf, &[], true, false).unwrap();
            let calls = sys.calls();
            let Call::Mount { source, .. } = &calls[mounts_on(&calls, &root.join("etc/resolv.conf"))] else {
                unreachable!()
            };
            source.clone().unwrap()
        };
        assert_eq!(source_of(Some(&own)), own.to_string_lossy());
        if Path::new("/etc/resolv.conf").exists() {
            assert_eq!(source_of(None), "/etc/resolv.conf");
        }
    }

    #[test]
    fn a_file_where_a_mount_folder_belongs_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("proc"), "").unwrap();
        let sys = Recording::default();
        assert!(
            matches!(enter(&sys, dir.path(), &[], None, &[], true, false), Err(RootfsError::NotADirectory(d)) if d == "proc")
        );
        assert!(!sys.calls().iter().any(|c| matches!(c, Call::PivotRoot(..))));
    }

    #[test]
    fn mount_points_made_for_the_step_are_cleaned_from_the_upper_folder() {
        let dir = tempfile::tempdir().unwrap();
        let (root, upper) = (dir.path().join("root"), dir.path().join("upper"));
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        let made = MountPoints::before(&root, &[]);
        assert_eq!(made.files, [PathBuf::from("etc/resolv.conf")]);

        // What the upper folder holds after the step: the created mount
        // point, the folders made to mount on, and a file the step wrote.
        for d in ["etc", "proc", "dev", "sys"] {
            fs::create_dir_all(upper.join(d)).unwrap();
        }
        fs::write(upper.join("etc/resolv.conf"), "").unwrap();
        fs::write(upper.join("dev/kept"), "mine").unwrap();
        made.clean(&upper);
        let mut left: Vec<_> = walkdir::WalkDir::new(&upper)
            .min_depth(1)
            .into_iter()
            .map(|e| e.unwrap().path().strip_prefix(&upper).unwrap().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["dev", "dev/kept"]);
    }

    #[test]
    fn a_spec_mount_point_goes_and_so_does_its_untouched_copied_up_parent() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path, m| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        let tmpfs = |t: &str| SpecMount { target: t.into(), kind: crate::sandbox::SpecMountKind::Tmpfs { size: None } };
        for (upper_mode, written, kept) in [
            (0o700, false, &[][..]),
            // The step changed /root's mode: its copy is the step's change.
            (0o755, false, &["root"][..]),
            // The step wrote next to the mount point.
            (0o700, true, &["root", "root/mine"][..]),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let (root, upper) = (dir.path().join("root"), dir.path().join("upper"));
            fs::create_dir_all(root.join("root")).unwrap();
            mode(&root.join("root"), 0o700);
            let made = MountPoints::before(&root, &[tmpfs("/root/.cache/x")]);
            fs::create_dir_all(upper.join("root/.cache/x")).unwrap();
            mode(&upper.join("root"), upper_mode);
            if written {
                fs::write(upper.join("root/mine"), "").unwrap();
            }
            if kept.is_empty() {
                // On a copy, /root is the image's own and stays.
                made.clean_copy(&upper);
                assert!(upper.join("root").is_dir() && !upper.join("root/.cache").exists());
                fs::create_dir_all(upper.join("root/.cache/x")).unwrap();
            }
            made.clean(&upper);
            let mut left: Vec<_> = walkdir::WalkDir::new(&upper)
                .min_depth(1)
                .into_iter()
                .map(|e| e.unwrap().path().strip_prefix(&upper).unwrap().to_string_lossy().into_owned())
                .collect();
            left.sort();
            assert_eq!(left, kept, "upper mode {upper_mode:o}, written {written}");
        }
    }

    #[test]
    fn a_mount_point_the_step_replaced_by_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let (root, upper, host) = (dir.path().join("root"), dir.path().join("upper"), dir.path().join("host"));
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&upper).unwrap();
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("resolv.conf"), "").unwrap();
        std::os::unix::fs::symlink(&host, upper.join("etc")).unwrap();
        MountPoints::before(&root, &[]).clean(&upper);
        assert!(host.join("resolv.conf").exists(), "the cleanup followed a symlink out of the upper folder");
    }
}
