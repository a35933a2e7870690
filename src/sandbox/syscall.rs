//! Every kernel call the sandbox's setup makes, behind one trait.
//!
//! The order of those calls is the sandbox's security: mounts before
//! pivot_root, capabilities dropped while still uid 0 (after setuid the
//! bounding set can no longer be changed), every inherited descriptor closed
//! before the working directory is opened. [`Linux`] makes the calls;
//! [`Recording`] only writes them down, so that order is unit-tested without
//! root (youki's `syscall.rs` does the same).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
#[cfg(test)]
use std::{cell::RefCell, path::PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};

use super::workdir::{self, WorkdirError};

/// The kernel, as far as the sandbox's setup sees it. Each method is one
/// system call (or, for [`Syscall::open_workdir`], one well-defined series of
/// them), named after it.
pub(crate) trait Syscall {
    /// unshare(2).
    fn unshare(&self, flags: CloneFlags) -> nix::Result<()>;
    /// mount(2).
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()>;
    /// umount2(2).
    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()>;
    /// pivot_root(2).
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()>;
    /// mount_setattr(2) of `path` and every mount below it (AT_RECURSIVE):
    /// read-only, nosuid, nodev and noexec.
    fn read_only_tree(&self, path: &Path) -> nix::Result<()>;
    /// open_tree(2) of `source` with OPEN_TREE_CLONE | AT_RECURSIVE: a
    /// detached copy of the mount tree there, not yet attached anywhere.
    fn open_tree_clone(&self, source: BorrowedFd<'_>) -> nix::Result<OwnedFd>;
    /// mount_setattr(2) of a detached `tree` and every mount in it
    /// (AT_RECURSIVE), setting `attr` (`MOUNT_ATTR_*`) and clearing nothing.
    fn set_tree_attr(&self, tree: BorrowedFd<'_>, attr: u64) -> nix::Result<()>;
    /// move_mount(2) of the detached `tree` onto the inode `target` names.
    fn move_mount(&self, tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()>;
    /// prctl(PR_SET_PDEATHSIG, SIGKILL).
    fn kill_with_parent(&self) -> nix::Result<()>;
    /// prctl(PR_CAPBSET_DROP, cap).
    fn drop_bounding_capability(&self, cap: u32) -> nix::Result<()>;
    /// seccomp(SECCOMP_SET_MODE_FILTER) of one program, without
    /// no_new_privs (see `seccomp`).
    fn install_seccomp(&self, program: &[libc::sock_filter]) -> nix::Result<()>;
    /// sethostname(2).
    fn sethostname(&self, name: &str) -> nix::Result<()>;
    /// ioctl(SIOCSIFFLAGS) setting IFF_UP on `lo`, on a socket of the
    /// current network namespace.
    fn loopback_up(&self) -> nix::Result<()>;
    /// Add `prohibit` routes to the cloud metadata services (see `network`).
    fn block_metadata(&self) -> nix::Result<()>;
    /// chdir(2).
    fn chdir(&self, path: &Path) -> nix::Result<()>;
    /// fchdir(2).
    fn fchdir(&self, dir: &OwnedFd) -> nix::Result<()>;
    /// setsid(2).
    fn setsid(&self) -> nix::Result<()>;
    /// setgroups(2).
    fn setgroups(&self, groups: &[Gid]) -> nix::Result<()>;
    /// setresgid(2) with all three ids the same.
    fn setresgid(&self, gid: Gid) -> nix::Result<()>;
    /// setresuid(2) with all three ids the same.
    fn setresuid(&self, uid: Uid) -> nix::Result<()>;
    /// close_range(from, ~0, 0): close (not merely mark close-on-exec) every
    /// descriptor from `from` on, since an open one is reachable through
    /// /proc/self/fd.
    fn close_range(&self, from: u32) -> nix::Result<()>;
    /// As [`Syscall::close_range`], but `keep` stays open: the exec report
    /// pipe (see `init`), close-on-exec itself.
    fn close_range_keeping(&self, from: u32, keep: std::os::fd::RawFd) -> nix::Result<()>;
    /// Open (creating what is missing, owned by `uid`:`gid`) the working
    /// directory below the current root; see [`workdir::open`].
    fn open_workdir(&self, path: &str, uid: Uid, gid: Gid) -> Result<OwnedFd, WorkdirError>;
    /// getcwd(2) names a path inside the current root; see [`workdir::check_inside_root`].
    fn check_cwd_inside_root(&self, path: &str) -> Result<(), WorkdirError>;
}

/// The real kernel.
pub(crate) struct Linux;

impl Syscall for Linux {
    fn unshare(&self, flags: CloneFlags) -> nix::Result<()> {
        nix::sched::unshare(flags)
    }

    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> nix::Result<()> {
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn umount2(&self, target: &Path, flags: MntFlags) -> nix::Result<()> {
        nix::mount::umount2(target, flags)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()> {
        nix::unistd::pivot_root(new_root, put_old)
    }

    fn read_only_tree(&self, path: &Path) -> nix::Result<()> {
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
        let attr = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        mount_setattr(libc::AT_FDCWD, &c_path, AT_RECURSIVE, attr)
    }

    fn open_tree_clone(&self, source: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
        const OPEN_TREE_CLONE: libc::c_uint = 1;
        let flags =
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE | libc::AT_EMPTY_PATH as libc::c_uint;
        // SAFETY: a descriptor we borrow, an empty C string, plain flags.
        let fd = unsafe { libc::syscall(libc::SYS_open_tree, source.as_raw_fd(), c"".as_ptr(), flags) };
        let fd = Errno::result(fd)?;
        // SAFETY: open_tree returned a new descriptor that nothing else owns.
        Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as libc::c_int) })
    }

    fn set_tree_attr(&self, tree: BorrowedFd<'_>, attr: u64) -> nix::Result<()> {
        mount_setattr(tree.as_raw_fd(), c"", AT_RECURSIVE | libc::AT_EMPTY_PATH as libc::c_uint, attr)
    }

    fn move_mount(&self, tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> nix::Result<()> {
        const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
        const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
        // SAFETY: two borrowed descriptors, empty C strings, plain flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree.as_raw_fd(),
                c"".as_ptr(),
                target.as_raw_fd(),
                c"".as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
            )
        };
        Errno::result(rc).map(drop)
    }

    fn kill_with_parent(&self) -> nix::Result<()> {
        // SAFETY: prctl with constant arguments.
        Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) }).map(drop)
    }

    fn drop_bounding_capability(&self, cap: u32) -> nix::Result<()> {
        // SAFETY: prctl with plain integer arguments.
        Errno::result(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) }).map(drop)
    }

    fn install_seccomp(&self, program: &[libc::sock_filter]) -> nix::Result<()> {
        super::seccomp::install(program)
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        nix::unistd::sethostname(name)
    }

    fn loopback_up(&self) -> nix::Result<()> {
        // SAFETY: a fresh socket, closed by OwnedFd; the ioctls read and
        // write one ifreq that lives on this stack frame.
        unsafe {
            let fd = Errno::result(libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0))?;
            let socket = <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd);
            let mut req: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"lo".iter().enumerate() {
                req.ifr_name[i] = *b as libc::c_char;
            }
            Errno::result(libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req))?;
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            Errno::result(libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req)).map(drop)
        }
    }

    fn block_metadata(&self) -> nix::Result<()> {
        super::network::add_blocked_routes()
    }

    fn chdir(&self, path: &Path) -> nix::Result<()> {
        nix::unistd::chdir(path)
    }

    fn fchdir(&self, dir: &OwnedFd) -> nix::Result<()> {
        nix::unistd::fchdir(dir.as_raw_fd())
    }

    fn setsid(&self) -> nix::Result<()> {
        nix::unistd::setsid().map(drop)
    }

    fn setgroups(&self, groups: &[Gid]) -> nix::Result<()> {
        nix::unistd::setgroups(groups)
    }

    fn setresgid(&self, gid: Gid) -> nix::Result<()> {
        nix::unistd::setresgid(gid, gid, gid)
    }

    fn setresuid(&self, uid: Uid) -> nix::Result<()> {
        nix::unistd::setresuid(uid, uid, uid)
    }

    fn close_range(&self, from: u32) -> nix::Result<()> {
        super::close_from(from)
    }

    fn close_range_keeping(&self, from: u32, keep: std::os::fd::RawFd) -> nix::Result<()> {
        let Some(keep) = u32::try_from(keep).ok().filter(|k| *k >= from) else { return super::close_from(from) };
        if keep > from {
            super::close_between(from, keep - 1)?;
        }
        super::close_from(keep + 1)
    }

    fn open_workdir(&self, path: &str, uid: Uid, gid: Gid) -> Result<OwnedFd, WorkdirError> {
        workdir::open(path, uid, gid)
    }

    fn check_cwd_inside_root(&self, path: &str) -> Result<(), WorkdirError> {
        workdir::check_inside_root(path)
    }
}

pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// mount_setattr(2) setting `attr`, clearing nothing.
fn mount_setattr(dirfd: libc::c_int, path: &std::ffi::CStr, flags: libc::c_uint, attr: u64) -> nix::Result<()> {
    // Not in libc's bindings for every target yet: the uapi struct by hand.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr { attr_set: attr, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: a valid C string and a properly sized, initialised mount_attr.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(rc).map(drop)
}

#[cfg(test)]
/// One call the [`Recording`] kernel saw, with the arguments that matter to
/// the order of the setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Unshare(CloneFlags),
    Mount {
        source: Option<String>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
    },
    Umount2(PathBuf),
    PivotRoot(PathBuf, PathBuf),
    ReadOnlyTree(PathBuf),
    OpenTreeClone,
    /// The `MOUNT_ATTR_*` set.
    SetTreeAttr(u64),
    MoveMount,
    KillWithParent,
    DropBoundingCapability(u32),
    /// The length of the program.
    InstallSeccomp(usize),
    Sethostname(String),
    LoopbackUp,
    BlockMetadata,
    Chdir(PathBuf),
    Fchdir,
    Setsid,
    Setgroups(Vec<u32>),
    Setresgid(u32),
    Setresuid(u32),
    CloseRange(u32),
    OpenWorkdir(String),
    CheckCwdInsideRoot,
}

#[cfg(test)]
/// A kernel that only records: every call succeeds (except that
/// capabilities past the 41st do not exist, as on a current kernel) and
/// changes nothing.
#[derive(Default)]
pub(crate) struct Recording {
    calls: RefCell<Vec<Call>>,
}

/// The highest capability [`Recording`] pretends the kernel knows
/// (CAP_CHECKPOINT_RESTORE).
#[cfg(test)]
const LAST_CAP: u32 = 40;

#[cfg(test)]
impl Recording {
    /// What was called so far, in order.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    fn record(&self, call: Call) -> nix::Result<()> {
        self.calls.borrow_mut().push(call);
        Ok(())
    }
}

#[cfg(test)]
impl Syscall for Recording {
    fn unshare(&self, flags: CloneFlags) -> nix::Result<()> {
        self.record(Call::Unshare(flags))
    }

    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        _data: Option<&str>,
    ) -> nix::Result<()> {
        self.record(Call::Mount {
            source: source.map(str::to_owned),
            target: target.to_owned(),
            fstype: fstype.map(str::to_owned),
            flags,
        })
    }

    fn umount2(&self, target: &Path, _flags: MntFlags) -> nix::Result<()> {
        self.record(Call::Umount2(target.to_owned()))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> nix::Result<()> {
        self.record(Call::PivotRoot(new_root.to_owned(), put_old.to_owned()))
    }

    fn read_only_tree(&self, path: &Path) -> nix::Result<()> {
        self.record(Call::ReadOnlyTree(path.to_owned()))
    }

    fn open_tree_clone(&self, _source: BorrowedFd<'_>) -> nix::Result<OwnedFd> {
        self.record(Call::OpenTreeClone)?;
        // Any descriptor will do: the recording calls never use it.
        std::fs::File::open("/").map(OwnedFd::from).map_err(|_| Errno::EBADF)
    }

    fn set_tree_attr(&self, _tree: BorrowedFd<'_>, attr: u64) -> nix::Result<()> {
        self.record(Call::SetTreeAttr(attr))
    }

    fn move_mount(&self, _tree: BorrowedFd<'_>, _target: BorrowedFd<'_>) -> nix::Result<()> {
        self.record(Call::MoveMount)
    }

    fn kill_with_parent(&self) -> nix::Result<()> {
        self.record(Call::KillWithParent)
    }

    fn drop_bounding_capability(&self, cap: u32) -> nix::Result<()> {
        if cap > LAST_CAP {
            return Err(Errno::EINVAL);
        }
        self.record(Call::DropBoundingCapability(cap))
    }

    fn install_seccomp(&self, program: &[libc::sock_filter]) -> nix::Result<()> {
        self.record(Call::InstallSeccomp(program.len()))
    }

    fn sethostname(&self, name: &str) -> nix::Result<()> {
        self.record(Call::Sethostname(name.to_owned()))
    }

    fn loopback_up(&self) -> nix::Result<()> {
        self.record(Call::LoopbackUp)
    }

    fn block_metadata(&self) -> nix::Result<()> {
        self.record(Call::BlockMetadata)
    }

    fn chdir(&self, path: &Path) -> nix::Result<()> {
        self.record(Call::Chdir(path.to_owned()))
    }

    fn fchdir(&self, _dir: &OwnedFd) -> nix::Result<()> {
        self.record(Call::Fchdir)
    }

    fn setsid(&self) -> nix::Result<()> {
        self.record(Call::Setsid)
    }

    fn setgroups(&self, groups: &[Gid]) -> nix::Result<()> {
        self.record(Call::Setgroups(groups.iter().map(|g| g.as_raw()).collect()))
    }

    fn setresgid(&self, gid: Gid) -> nix::Result<()> {
        self.record(Call::Setresgid(gid.as_raw()))
    }

    fn setresuid(&self, uid: Uid) -> nix::Result<()> {
        self.record(Call::Setresuid(uid.as_raw()))
    }

    fn close_range(&self, from: u32) -> nix::Result<()> {
        self.record(Call::CloseRange(from))
    }

    fn close_range_keeping(&self, from: u32, _keep: std::os::fd::RawFd) -> nix::Result<()> {
        self.record(Call::CloseRange(from))
    }

    fn open_workdir(&self, path: &str, _uid: Uid, _gid: Gid) -> Result<OwnedFd, WorkdirError> {
        let _ = self.record(Call::OpenWorkdir(path.to_owned()));
        // Any descriptor will do: the recording fchdir never uses it.
        std::fs::File::open("/").map(OwnedFd::from).map_err(|_| WorkdirError::Open(path.to_owned(), Errno::EBADF))
    }

    fn check_cwd_inside_root(&self, _path: &str) -> Result<(), WorkdirError> {
        let _ = self.record(Call::CheckCwdInsideRoot);
        Ok(())
    }
}
