//! The pipes PID 1 and the sandbox process tell each other on, across
//! PID 1's fork (see `init`): the exec report (the command's exec
//! succeeded, or not) and, on the default network, the gate the command
//! waits behind until the network is connected and the metadata service
//! blocked.

use std::os::fd::OwnedFd;

use nix::errno::Errno;

use super::channel::{self, ChannelError};
use super::init::{InitError, Result};
use super::syscall::Syscall;

/// Let PID 1 run the command once the launcher says the network helper has
/// configured the interface: first the routes that block the metadata
/// service go in, after the helper's, so they survive whatever it set; the
/// command, its capabilities dropped, cannot remove them. Then a byte on
/// `gate`, which PID 1 waits for before it forks the command.
pub(super) fn open_gate(sys: &dyn Syscall, launcher: &mut channel::Child, gate: OwnedFd) -> Result<()> {
    launcher.wait_for_network().map_err(|e| match e {
        ChannelError::Closed(_) => InitError::NetworkNotReady,
        e => InitError::Handshake(e),
    })?;
    sys.block_metadata().map_err(InitError::BlockMetadata)?;
    nix::unistd::write(&gate, b"g").map_err(InitError::NetworkGate)?;
    Ok(())
}

/// In PID 1: wait for [`open_gate`]'s byte; the pipe's end without it
/// means the network was never connected.
pub(super) fn wait_for_gate(gate: OwnedFd) -> Result<()> {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&gate), &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(InitError::NetworkNotReady),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(InitError::NetworkGate(e)),
        }
    }
}

/// Whether the command's exec succeeded: `exec_read` ended without a byte
/// (see `init::sandbox`).
pub(super) fn exec_succeeded(exec_read: OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&exec_read), &mut byte) {
            Ok(0) => return true,
            Err(Errno::EINTR) => {}
            Ok(_) | Err(_) => return false,
        }
    }
}

/// Say on the exec pipe that the command will not run.
pub(super) fn exec_failed(exec_report: &OwnedFd) {
    let _ = nix::unistd::write(exec_report, b"!");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::syscall::{Call, Recording};

    #[test]
    fn the_command_waits_for_the_network_and_the_metadata_routes() {
        // The launcher says the helper is done: the routes go in, then PID 1 is let go.
        let sys = Recording::default();
        let (mut launcher, mut child) = channel::pair().unwrap();
        let (gate_read, gate_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        launcher.network_ready().unwrap();
        open_gate(&sys, &mut child, gate_write).unwrap();
        assert_eq!(sys.calls(), [Call::BlockMetadata]);
        wait_for_gate(gate_read).unwrap();

        // The launcher gives up (its helper failed): no routes, and PID 1
        // reads the gate's end without the byte, so the command never runs.
        let sys = Recording::default();
        let (launcher, mut child) = channel::pair().unwrap();
        let (gate_read, gate_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        drop(launcher);
        assert!(matches!(open_gate(&sys, &mut child, gate_write), Err(InitError::NetworkNotReady)));
        assert!(sys.calls().is_empty());
        assert!(matches!(wait_for_gate(gate_read), Err(InitError::NetworkNotReady)));
    }
}
