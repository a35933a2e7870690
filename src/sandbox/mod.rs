//! The sandbox RUN steps and `kiln run` execute in.
//!
//! The engine re-executes its own binary as `kiln __sandbox SPEC` inside new user,
//! mount, pid, uts and ipc namespaces (the network stays the host's). That child
//! waits until the engine has written its uid/gid maps, then forks the namespace's
//! PID 1 ([`init`]), which mounts /proc, a minimal /dev, /etc/resolv.conf and
//! /etc/hosts into the root filesystem the engine prepared, pivots into it, and
//! runs the command as its own child. When the command exits, PID 1 exits with
//! its status, and the kernel kills whatever the command left running in the pid
//! namespace. Every process in the chain has a parent-death signal, so killing
//! the engine (or the step being cancelled) tears the whole step down.

mod init;
mod launch;
mod spec;
pub mod userns;
mod workdir;

pub use init::child_main;
pub use launch::{Sandbox, SandboxError, Stdio};
pub use spec::Spec;

/// In a forked child before exec: hand `go` and `ready` (the two ends of a
/// handshake) over as fds 3 and 4, and close every other descriptor above 2,
/// so nothing kiln (or whoever started kiln) has open reaches the child.
/// Both are first copied above 9, so neither dup2 can clobber the other's
/// source whatever numbers they had. Only async-signal-safe calls: safe between
/// fork and exec.
fn inherit_handshake(go: std::os::fd::RawFd, ready: std::os::fd::RawFd) -> std::io::Result<()> {
    let check = |rc: libc::c_long| if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(rc) };
    // SAFETY: plain syscalls on descriptors the caller owns; the copies made
    // here are closed by the close_range below.
    unsafe {
        let go_high = check(libc::fcntl(go, libc::F_DUPFD_CLOEXEC, 10).into())?;
        let ready_high = check(libc::fcntl(ready, libc::F_DUPFD_CLOEXEC, 10).into())?;
        // dup2 clears close-on-exec on the new descriptor.
        check(libc::dup2(go_high as i32, 3).into())?;
        check(libc::dup2(ready_high as i32, 4).into())?;
        check(libc::syscall(libc::SYS_close_range, 5u32, u32::MAX, 0u32))?;
    }
    Ok(())
}

/// Close every descriptor above `from - 1` (not merely mark it close-on-exec:
/// a descriptor that is open at all can be reached through /proc/self/fd).
fn close_from(from: u32) -> std::io::Result<()> {
    // SAFETY: close_range only closes descriptors; callers own them all.
    if unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
