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

pub use init::child_main;
pub use launch::{Sandbox, SandboxError, Stdio};
pub use spec::Spec;

/// In a forked child before exec: make `fd` available as `target` across exec.
/// dup2 onto itself would keep close-on-exec set, so that case clears the flag.
/// Only async-signal-safe calls: safe between fork and exec.
fn inherit_as(fd: std::os::fd::RawFd, target: std::os::fd::RawFd) -> std::io::Result<()> {
    // SAFETY: plain syscalls on descriptors the caller owns.
    let rc = unsafe {
        if fd == target {
            libc::fcntl(fd, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, target)
        }
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
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
