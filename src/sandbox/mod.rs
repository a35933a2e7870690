//! The sandbox RUN steps and `kiln run` execute in.
//!
//! The engine checks the [`Spec`] whole, then re-executes its own binary as
//! `kiln __sandbox SPEC`, which enters new user, mount, pid, uts and ipc
//! namespaces, and a network namespace unless the spec asks for the host's
//! ([`network`]). That child waits until the engine has written its uid/gid
//! maps and connected its network (the typed handshake of [`channel`]),
//! then forks the namespace's PID 1 ([`init`]), which mounts /proc, a minimal
//! /dev, /etc/resolv.conf and /etc/hosts into the root filesystem the engine
//! prepared, pivots into it ([`rootfs`]), and runs the command as its own
//! child, which keeps docker's default capabilities and installs docker's
//! default seccomp profile ([`seccomp`]) before it becomes the step's user.
//! Every kernel call of that setup goes through [`syscall::Syscall`], so its
//! order is unit-tested. Signals sent to `kiln run` reach the command
//! ([`signals`]). When the command exits, PID 1 exits with
//! its status, and the kernel kills whatever the command left running in the pid
//! namespace. Every process in the chain has a parent-death signal, so killing
//! the engine (or the step being cancelled) tears the whole step down.

pub mod cgroup;
mod channel;
mod init;
pub mod join;
mod launch;
mod mounts;
pub mod network;
mod pipes;
pub mod rootfs;
mod seccomp;
pub(crate) mod signals;
mod spec;
mod started;
mod syscall;
pub mod userns;
mod warm;
mod workdir;

pub use channel::{ChannelError, Message};
pub use init::{child_main, InitError};
pub use join::{exec_main, JoinError};
pub use launch::{Exit, Sandbox, SandboxError, Stdio, Stream, Wiring};
pub use mounts::MountError;
pub use network::{NetworkError, NetworkSetup, PortMap};
pub use seccomp::SeccompError;
pub use signals::{forwarded, forwarded_names};
pub use spec::{Limits, NetworkMode, Spec, SpecEnvFile, SpecError, SpecFile, SpecMount, SpecMountKind};
pub(crate) use started::{copy_stdin, exit_code, window_size};
pub use workdir::WorkdirError;

/// In a forked child before exec: hand `fd` (the child's end of a
/// [`channel`]) over as [`channel::CHILD_FD`], and close every other
/// descriptor above 2, so nothing kiln (or whoever started kiln) has open
/// reaches the child. It is first copied above 9, so the dup2 cannot clobber
/// it whatever number it had (and clears close-on-exec even if it was
/// already 3). Only async-signal-safe calls: safe between fork and exec.
pub(crate) fn inherit_channel(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    let check = |rc: libc::c_long| if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(rc) };
    // SAFETY: plain syscalls on a descriptor the caller owns; the copy made
    // here is closed by the close_range below.
    unsafe {
        let high = check(libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10).into())?;
        // dup2 clears close-on-exec on the new descriptor.
        check(libc::dup2(high as i32, channel::CHILD_FD).into())?;
        check(libc::syscall(libc::SYS_close_range, channel::CHILD_FD as u32 + 1, u32::MAX, 0u32))?;
    }
    Ok(())
}

/// In a forked child before exec, for the processes kiln starts around a
/// step (the sandbox, its network helper): killed when kiln dies, even
/// outright; in a session of its own, so it has no controlling terminal (it
/// can push no keystrokes into the caller's shell, and a ^C at the terminal
/// is kiln's to handle); and holding `fd` as the only descriptor above
/// stdio (see [`inherit_channel`]). Async-signal-safe, allocates nothing.
fn detach_with_channel(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: prctl and setsid are plain syscalls on this process only.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::setsid() < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    inherit_channel(fd)
}

/// Close every descriptor from `from` on (not merely mark it close-on-exec:
/// a descriptor that is open at all can be reached through /proc/self/fd).
fn close_from(from: u32) -> nix::Result<()> {
    close_between(from, u32::MAX)
}

/// Close every descriptor from `first` to `last`, both included.
fn close_between(first: u32, last: u32) -> nix::Result<()> {
    // SAFETY: close_range only closes descriptors; callers own them all.
    nix::errno::Errno::result(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) }).map(drop)
}

/// Mark every descriptor above 2 close-on-exec. kiln calls this first thing:
/// descriptors its caller left open (`kiln build 7</dir`) must reach no child.
pub fn cloexec_inherited() {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only changes descriptor flags.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
}

/// Exit codes with docker's meanings, for failures of the sandbox itself.
pub mod exit {
    /// kiln could not set the container up.
    pub const SETUP_FAILED: i32 = 125;
    /// The command exists but cannot be executed.
    pub const CANNOT_EXECUTE: i32 = 126;
    /// The command was not found.
    pub const NOT_FOUND: i32 = 127;
}
