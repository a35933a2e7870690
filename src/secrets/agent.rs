//! A step's ssh agent: kiln's own socket on the step's tmpfs, forwarding to
//! the caller's agent only what using a key needs.
//!
//! The step may be hostile (an ONBUILD trigger of a base image can mount
//! `type=ssh`), so the agent is lent read-only, as BuildKit's sshprovider
//! does: kiln reads each request frame and forwards only listing the keys,
//! signing, and the `session-bind@openssh.com` extension ssh sends first;
//! removing or adding keys, locking the agent and the rest are answered
//! `SSH_AGENT_FAILURE` without reaching the agent. A step gets at most
//! [`MAX_CONNECTIONS`] connections at once, so it cannot use up kiln's
//! threads or descriptors.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The largest frame forwarded either way; OpenSSH's agent caps its own at
/// 256 KiB too (`AGENT_MAX_LEN`).
const MAX_FRAME: usize = 256 * 1024;
/// Connections a step may hold open at once; more are closed on accept.
pub(super) const MAX_CONNECTIONS: usize = 16;

const SSH_AGENT_FAILURE: u8 = 5;
const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH_AGENTC_EXTENSION: u8 = 27;
/// The one extension forwarded: it only narrows what this connection's
/// keys may sign for.
const SESSION_BIND: &[u8] = b"session-bind@openssh.com";

/// A socket on the step's tmpfs forwarding each connection to an ssh agent.
pub(super) struct Agent {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

impl Agent {
    pub(super) fn serve(path: &Path, agent: &Path, mode: u32, uid: u32, gid: u32) -> std::io::Result<Agent> {
        let listener = UnixListener::bind(path)?;
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (agent, stopping) = (agent.to_owned(), stop.clone());
        let open = Arc::new(AtomicUsize::new(0));
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    // Dropped: the step sees an agent that hung up.
                    open.fetch_sub(1, Ordering::SeqCst);
                    continue;
                }
                // An agent that cannot be reached looks to the step like an
                // agent that hung up: ssh then says so in its own words.
                let Ok(upstream) = UnixStream::connect(&agent) else {
                    open.fetch_sub(1, Ordering::SeqCst);
                    continue;
                };
                let open = open.clone();
                std::thread::spawn(move || {
                    let _ = forward(client, upstream);
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(Agent { path: path.to_owned(), stop, accept })
    }

    /// Stop accepting (connections the step left open end with it).
    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which sees the flag.
        let _ = UnixStream::connect(&self.path);
        let _ = self.accept.join();
    }
}

/// Serve one connection until either side hangs up or breaks the framing.
/// The agent protocol is request then reply, so one thread does both ways.
fn forward(mut client: UnixStream, mut upstream: UnixStream) -> std::io::Result<()> {
    while let Some(request) = read_frame(&mut client)? {
        if allowed(&request) {
            write_frame(&mut upstream, &request)?;
            let Some(reply) = read_frame(&mut upstream)? else { break };
            write_frame(&mut client, &reply)?;
        } else {
            write_frame(&mut client, &[SSH_AGENT_FAILURE])?;
        }
    }
    Ok(())
}

/// Whether a request (type byte first) only uses the agent's keys.
fn allowed(request: &[u8]) -> bool {
    match request.first() {
        Some(&(SSH_AGENTC_REQUEST_IDENTITIES | SSH_AGENTC_SIGN_REQUEST)) => true,
        Some(&SSH_AGENTC_EXTENSION) => {
            let name = request.get(1..5).map(|n| u32::from_be_bytes(n.try_into().unwrap()) as usize);
            name.and_then(|n| request.get(5..5 + n)) == Some(SESSION_BIND)
        }
        _ => false,
    }
}

/// One frame's body (a u32 big-endian length, then that many bytes, at
/// least the type byte); `None` when the peer hung up between frames.
fn read_frame(from: &mut UnixStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match from.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "ssh agent frame of a bad length"));
    }
    let mut body = vec![0u8; len];
    from.read_exact(&mut body)?;
    Ok(Some(body))
}

fn write_frame(to: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(body);
    to.write_all(&frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extension(name: &[u8]) -> Vec<u8> {
        let mut r = vec![SSH_AGENTC_EXTENSION];
        r.extend_from_slice(&(name.len() as u32).to_be_bytes());
        r.extend_from_slice(name);
        r
    }

    #[test]
    fn only_listing_signing_and_session_bind_are_forwarded() {
        assert!(allowed(&[11]));
        assert!(allowed(&[13, 0, 0]));
        assert!(allowed(&extension(SESSION_BIND)));
        // Remove one/all, add (with constraints), smartcards, lock/unlock.
        for t in [17u8, 18, 19, 20, 21, 22, 23, 25, 26] {
            assert!(!allowed(&[t]), "{t}");
        }
        assert!(!allowed(&extension(b"restrict-destination-v00@openssh.com")));
        assert!(!allowed(&[27, 0, 0, 0, 99]));
        assert!(!allowed(&[]));
    }

    #[test]
    fn refused_requests_never_reach_the_agent_and_too_many_connections_are_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (upstream_path, ours) = (dir.path().join("agent"), dir.path().join("ours"));
        let upstream = UnixListener::bind(&upstream_path).unwrap();
        let agent =
            Agent::serve(&ours, &upstream_path, 0o600, nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw())
                .unwrap();
        // A fake agent answering every request with SSH_AGENT_SUCCESS (6)
        // and recording the types it got.
        let seen = std::thread::spawn(move || {
            let (mut conn, _) = upstream.accept().unwrap();
            let mut types = Vec::new();
            while let Some(f) = read_frame(&mut conn).unwrap() {
                types.push(f[0]);
                write_frame(&mut conn, &[6]).unwrap();
            }
            types
        });
        let mut c = UnixStream::connect(&ours).unwrap();
        for (request, reply) in [(vec![19u8], 5u8), (vec![11], 6), (vec![22, 0, 0, 0, 0], 5), (vec![13], 6)] {
            write_frame(&mut c, &request).unwrap();
            assert_eq!(read_frame(&mut c).unwrap().unwrap(), [reply], "{request:?}");
        }
        // With the cap's worth open, one more is closed at once.
        let held: Vec<_> = (1..MAX_CONNECTIONS).map(|_| UnixStream::connect(&ours).unwrap()).collect();
        let mut over = UnixStream::connect(&ours).unwrap();
        write_frame(&mut over, &[11]).unwrap_or(());
        over.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        match read_frame(&mut over) {
            Ok(None) => {}
            Err(e) => assert!(!matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
            Ok(Some(f)) => panic!("a connection over the cap was served: {f:?}"),
        }
        drop(held);
        // A frame over the cap ends the connection.
        c.write_all(&(MAX_FRAME as u32 + 1).to_be_bytes()).unwrap();
        assert!(read_frame(&mut c).unwrap().is_none());
        assert_eq!(seen.join().unwrap(), [11, 13]);
        drop(c);
        agent.stop();
    }
}
