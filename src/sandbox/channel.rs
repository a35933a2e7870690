//! The uid/gid map handshake across an exec, as typed messages.
//!
//! A process that unshares a user namespace is nobody in it until someone
//! outside writes its uid_map and gid_map, and it cannot do that itself. So
//! it asks, and waits: the child sends [`Message::Unshared`], the parent
//! writes the maps and answers [`Message::Mapped`]. When the parent cannot
//! map, it hangs up instead, and the child sees [`ChannelError::Closed`].
//! Both `kiln __sandbox` (launched by [`super::launch`]) and the rootless
//! kiln (re-executed by [`super::userns`]) do this, over one socketpair whose
//! child end becomes the child's fd 3 ([`CHILD_FD`]). The child closes it as
//! soon as the handshake is over, before anything it runs can see it.
//!
//! `kiln __sandbox` then waits for one more message, [`Message::Spec`] and
//! the path of its spec: a sandbox can be started, mapped and connected
//! before its step is known (see `warm`), and told what to run later. It
//! keeps its end past that (its PID 1 closes its copy first thing, so no
//! process of the step ever holds it) to send [`Message::Running`] once the
//! command's exec succeeded (see `init`), and [`Message::Exited`] and the
//! step's exit code once its PID 1 is reaped: the launcher goes on at once,
//! while the sandbox process's own exit (the teardown of its namespaces,
//! a millisecond or more) runs beside the next step.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The descriptor the child end of the channel has in the child.
pub(crate) const CHILD_FD: RawFd = 3;

/// The longest spec path a child accepts (Linux's PATH_MAX).
const MAX_PATH: usize = 4096;

/// What one side tells the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// Child → parent: I am in my new user namespace; please map my ids.
    Unshared,
    /// Parent → child: your uid_map and gid_map are written.
    Mapped,
    /// Parent → child: run the spec at the path that follows (its length as
    /// a little-endian u32, then its bytes).
    Spec,
    /// Parent → child: the network helper has configured the namespace's
    /// interface (sent after [`Message::Spec`], for a network of its own
    /// with the world beyond: the command waits for it).
    NetworkReady,
    /// Child → parent: the command is running (its exec succeeded).
    Running,
    /// Child → parent: the step is over, every process of it gone; its
    /// exit code follows (a little-endian i32).
    Exited,
}

/// What the sandbox process reports once it runs its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// The command's exec succeeded.
    Running,
    /// The step is over, with this exit code.
    Exited(i32),
}

impl Message {
    fn byte(self) -> u8 {
        match self {
            Message::Unshared => b'u',
            Message::Mapped => b'm',
            Message::Spec => b's',
            Message::NetworkReady => b'n',
            Message::Running => b'r',
            Message::Exited => b'x',
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        [Message::Unshared, Message::Mapped, Message::Spec, Message::NetworkReady, Message::Running, Message::Exited]
            .into_iter()
            .find(|m| m.byte() == byte)
    }
}

/// Why the handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("creating the handshake's socket pair")]
    Create(#[source] std::io::Error),
    #[error("sending {0:?} across the handshake")]
    Send(Message, #[source] std::io::Error),
    #[error("waiting for {0:?} across the handshake")]
    Receive(Message, #[source] std::io::Error),
    #[error("the other side hung up before sending {0:?}")]
    Closed(Message),
    #[error("the spec path sent across the handshake is {0} bytes, more than a path can be")]
    TooLong(usize),
    #[error("expected {expected:?} across the handshake, got byte {got:#04x}")]
    Unexpected { expected: Message, got: u8 },
}

type Result<T> = std::result::Result<T, ChannelError>;

/// A new channel: the parent's end, and the end to hand to the child (see
/// [`Child::raw_fd`] and [`super::inherit_channel`]). Both close on exec.
pub(crate) fn pair() -> Result<(Parent, Child)> {
    let (parent, child) = UnixStream::pair().map_err(ChannelError::Create)?;
    Ok((Parent(Endpoint(parent)), Child(Endpoint(child))))
}

struct Endpoint(UnixStream);

impl Endpoint {
    fn send(&mut self, message: Message) -> Result<()> {
        self.0.write_all(&[message.byte()]).map_err(|e| ChannelError::Send(message, e))
    }

    fn send_path(&mut self, path: &Path) -> Result<()> {
        let bytes = path.as_os_str().as_bytes();
        let len = u32::try_from(bytes.len()).map_err(|_| ChannelError::TooLong(bytes.len()))?;
        let mut message = vec![Message::Spec.byte()];
        message.extend_from_slice(&len.to_le_bytes());
        message.extend_from_slice(bytes);
        self.0.write_all(&message).map_err(|e| ChannelError::Send(Message::Spec, e))
    }

    fn receive_path(&mut self) -> Result<PathBuf> {
        self.receive(Message::Spec)?;
        let read = |stream: &mut UnixStream, buf: &mut [u8]| {
            stream.read_exact(buf).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => ChannelError::Closed(Message::Spec),
                _ => ChannelError::Receive(Message::Spec, e),
            })
        };
        let mut len = [0u8; 4];
        read(&mut self.0, &mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > MAX_PATH {
            return Err(ChannelError::TooLong(len));
        }
        let mut bytes = vec![0u8; len];
        read(&mut self.0, &mut bytes)?;
        Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
    }

    fn send_code(&mut self, code: i32) -> Result<()> {
        let mut message = vec![Message::Exited.byte()];
        message.extend_from_slice(&code.to_le_bytes());
        self.0.write_all(&message).map_err(|e| ChannelError::Send(Message::Exited, e))
    }

    /// [`Message::Running`], or [`Message::Exited`] and its code.
    fn receive_report(&mut self) -> Result<Report> {
        let mut byte = [0u8; 1];
        loop {
            match self.0.read(&mut byte) {
                Ok(0) => return Err(ChannelError::Closed(Message::Exited)),
                Ok(_) if byte[0] == Message::Running.byte() => return Ok(Report::Running),
                Ok(_) if byte[0] == Message::Exited.byte() => return self.receive_code().map(Report::Exited),
                Ok(_) => return Err(ChannelError::Unexpected { expected: Message::Exited, got: byte[0] }),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ChannelError::Receive(Message::Exited, e)),
            }
        }
    }

    /// The exit code that follows [`Message::Exited`].
    fn receive_code(&mut self) -> Result<i32> {
        let mut code = [0u8; 4];
        self.0.read_exact(&mut code).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => ChannelError::Closed(Message::Exited),
            _ => ChannelError::Receive(Message::Exited, e),
        })?;
        Ok(i32::from_le_bytes(code))
    }

    fn receive(&mut self, expected: Message) -> Result<()> {
        let mut byte = [0u8; 1];
        loop {
            return match self.0.read(&mut byte) {
                Ok(0) => Err(ChannelError::Closed(expected)),
                Ok(_) if Message::from_byte(byte[0]) == Some(expected) => Ok(()),
                Ok(_) => Err(ChannelError::Unexpected { expected, got: byte[0] }),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(ChannelError::Receive(expected, e)),
            };
        }
    }
}

/// The end of the process that writes the maps.
pub(crate) struct Parent(Endpoint);

impl Parent {
    /// Wait until the child has unshared its user namespace.
    /// [`ChannelError::Closed`] means it died (or gave up) before that.
    pub(crate) fn wait_for_mapping_request(&mut self) -> Result<()> {
        self.0.receive(Message::Unshared)
    }

    /// Tell the child its maps are written. To refuse, drop the channel.
    pub(crate) fn mapping_written(&mut self) -> Result<()> {
        self.0.send(Message::Mapped)
    }

    /// Tell `kiln __sandbox` which spec to run.
    pub(crate) fn send_spec(&mut self, path: &Path) -> Result<()> {
        self.0.send_path(path)
    }

    /// Tell `kiln __sandbox` its network is configured.
    pub(crate) fn network_ready(&mut self) -> Result<()> {
        self.0.send(Message::NetworkReady)
    }

    /// The sandbox process's next report, once the descriptor
    /// ([`Parent::raw_fd`]) is readable. [`ChannelError::Closed`] means it
    /// ended without telling: its own exit status says what happened.
    pub(crate) fn report(&mut self) -> Result<Report> {
        self.0.receive_report()
    }

    /// The descriptor to poll for the exit code.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.0 .0.as_raw_fd()
    }
}

/// The end of the process whose ids get mapped.
pub(crate) struct Child(Endpoint);

impl Child {
    /// The child's end as inherited on [`CHILD_FD`].
    ///
    /// # Safety
    /// [`CHILD_FD`] must be the channel the parent handed over, owned by
    /// nothing else in this process.
    pub(crate) unsafe fn inherited() -> Self {
        // SAFETY: the caller guarantees the descriptor is ours alone.
        Child(Endpoint(unsafe { UnixStream::from_raw_fd(CHILD_FD) }))
    }

    /// The descriptor to hand to the child (in the parent, before spawning).
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.0 .0.as_raw_fd()
    }

    /// Ask for the maps: this process has just unshared its user namespace.
    pub(crate) fn request_mapping(&mut self) -> Result<()> {
        self.0.send(Message::Unshared)
    }

    /// Wait until the parent has written the maps.
    pub(crate) fn wait_for_mapping(&mut self) -> Result<()> {
        self.0.receive(Message::Mapped)
    }

    /// Wait for the path of the spec to run. The channel stays open, close
    /// on exec: whatever this process forks must drop its copy at once.
    pub(crate) fn wait_for_spec(&mut self) -> Result<PathBuf> {
        self.0.receive_path()
    }

    /// Wait until the launcher says the network is configured.
    pub(crate) fn wait_for_network(&mut self) -> Result<()> {
        self.0.receive(Message::NetworkReady)
    }

    /// Tell the launcher the command runs: its exec succeeded.
    pub(crate) fn report_running(&mut self) -> Result<()> {
        self.0.send(Message::Running)
    }

    /// Tell the launcher the step is over with `code`; the channel is done with.
    pub(crate) fn report_exit(mut self, code: i32) -> Result<()> {
        self.0.send_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_hang_ups_are_told_apart() {
        let (mut parent, mut child) = pair().unwrap();
        child.request_mapping().unwrap();
        parent.wait_for_mapping_request().unwrap();
        parent.mapping_written().unwrap();
        child.wait_for_mapping().unwrap();
        parent.send_spec(Path::new("/scratch/sandbox.1.json")).unwrap();
        assert_eq!(child.wait_for_spec().unwrap(), Path::new("/scratch/sandbox.1.json"));
        parent.network_ready().unwrap();
        child.wait_for_network().unwrap();
        child.report_running().unwrap();
        child.report_exit(-3).unwrap();
        assert_eq!(parent.report().unwrap(), Report::Running);
        assert_eq!(parent.report().unwrap(), Report::Exited(-3));
        assert!(matches!(parent.report(), Err(ChannelError::Closed(Message::Exited))));

        let (mut parent, mut child) = pair().unwrap();
        child.request_mapping().unwrap();
        parent.wait_for_mapping_request().unwrap();
        drop(parent); // the parent could not map
        assert!(matches!(child.wait_for_mapping(), Err(ChannelError::Closed(Message::Mapped))));

        let (mut parent, mut child) = pair().unwrap();
        parent.mapping_written().unwrap();
        child.wait_for_mapping().unwrap();
        drop(parent); // the warm sandbox was never used
        assert!(matches!(child.wait_for_spec(), Err(ChannelError::Closed(Message::Spec))));

        let (mut parent, mut child) = pair().unwrap();
        parent.send_spec(Path::new("/s.json")).unwrap();
        child.wait_for_spec().unwrap();
        drop(parent); // the network helper failed: the launcher gave up
        assert!(matches!(child.wait_for_network(), Err(ChannelError::Closed(Message::NetworkReady))));

        let (mut parent, mut child) = pair().unwrap();
        parent.send_spec(Path::new("/s.json")).unwrap();
        child.wait_for_spec().unwrap();
        drop(child); // the sandbox process died before its step ended
        assert!(matches!(parent.report(), Err(ChannelError::Closed(Message::Exited))));

        let (mut parent, child) = pair().unwrap();
        drop(child); // the child died before unsharing
        assert!(matches!(parent.wait_for_mapping_request(), Err(ChannelError::Closed(Message::Unshared))));
    }

    #[test]
    fn a_message_out_of_turn_is_an_error() {
        let (mut parent, mut child) = pair().unwrap();
        parent.mapping_written().unwrap();
        let got = child.0.receive(Message::Unshared);
        assert!(matches!(got, Err(ChannelError::Unexpected { expected: Message::Unshared, got: b'm' })), "{got:?}");
    }

    #[test]
    fn a_spec_path_longer_than_a_path_is_refused() {
        let (mut parent, mut child) = pair().unwrap();
        let mut message = vec![b's'];
        message.extend_from_slice(&(1u32 << 30).to_le_bytes());
        parent.0 .0.write_all(&message).unwrap();
        assert!(matches!(child.wait_for_spec(), Err(ChannelError::TooLong(n)) if n == 1 << 30));
    }
}
