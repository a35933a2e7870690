//! `kiln attach`: a detached container's streams, live. Its monitor serves
//! `containers/<id>/attach.sock`; every client gets the output as it comes,
//! in frames (a byte for the stream, four for the length, then the bytes),
//! and what a client writes goes to the container's stdin when it was
//! started with `-i` (the monitor's own stdin is then a pipe that clients
//! write into, which the sandbox copies from as it copies a terminal).
//!
//! The socket is bound and reached as `/proc/self/fd/N/attach.sock`, N a
//! descriptor of the container's folder: the whole path can pass the 108
//! bytes a socket address holds.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::state::{io, Containers};
use super::ContainerError;
use crate::sandbox::Stream;
use crate::store::Store;

/// The monitor's side: the attached clients, and the way in to the command.
pub(crate) struct Server {
    clients: Arc<Mutex<Vec<UnixStream>>>,
    _dir: File,
}

impl Server {
    /// Listen on `dir`'s socket. With `input`, the monitor's stdin becomes
    /// a pipe whose other end every client's input is copied into.
    pub(crate) fn listen(dir: &Path, input: bool) -> Result<Server, ContainerError> {
        let folder = File::open(dir).map_err(io("opening", dir))?;
        let path = format!("/proc/self/fd/{}/attach.sock", folder.as_raw_fd());
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(io("listening on", &dir.join("attach.sock")))?;
        let writer = if input {
            let (read, write) = std::io::pipe().map_err(io("making a pipe for", dir))?;
            // SAFETY: dup2 onto stdin, which this process (a detached
            // monitor) has on /dev/null and reads nothing from itself.
            if unsafe { libc::dup2(read.as_raw_fd(), 0) } < 0 {
                return Err(io("making a pipe for", dir)(std::io::Error::last_os_error()));
            }
            Some(Arc::new(Mutex::new(write)))
        } else {
            None
        };
        let clients: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        let accepted = clients.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if let (Some(writer), Ok(mut from)) = (writer.clone(), client.try_clone()) {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 4096];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || writer.lock().unwrap_or_else(|e| e.into_inner()).write_all(&buf[..n]).is_err()
                            {
                                break;
                            }
                        }
                    });
                }
                accepted.lock().unwrap_or_else(|e| e.into_inner()).push(client);
            }
        });
        Ok(Server { clients, _dir: folder })
    }

    /// Hand `bytes` of `stream` to every client; a client gone is dropped.
    pub(crate) fn send(&self, stream: Stream, bytes: &[u8]) {
        let mut frame = Vec::with_capacity(5 + bytes.len());
        frame.push(stream as u8);
        frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        frame.extend_from_slice(bytes);
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).retain_mut(|c| c.write_all(&frame).is_ok());
    }
}

/// Attach this process's streams to running container `reference` until
/// it stops, or until `detach_keys` are typed; its exit code (0 when
/// detached: the container runs on).
pub fn attach(
    store: &Store,
    reference: &str,
    stdin: bool,
    detach_keys: &str,
    sig_proxy: bool,
) -> Result<i32, ContainerError> {
    let mut keys = DetachKeys::parse(detach_keys)?;
    let containers = Containers::new(store);
    let (id, config, state) = containers.running(reference)?;
    let dir = containers.dir(&id);
    let folder = File::open(&dir).map_err(io("opening", &dir))?;
    let path = format!("/proc/self/fd/{}/attach.sock", folder.as_raw_fd());
    let socket = UnixStream::connect(&path).map_err(|_| ContainerError::NotAttachable(config.name.clone()))?;
    let _raw = (config.tty && stdin).then(super::terminal::RawMode::enter).flatten();
    let detached = Arc::new(AtomicBool::new(false));
    if stdin {
        let mut to = socket.try_clone().map_err(io("attaching to", &dir))?;
        let detached = Arc::clone(&detached);
        // Not joined: it may wait on a terminal after the container ended.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::stdin().lock().read(&mut buf) {
                if n == 0 {
                    break;
                }
                let (pass, done) = keys.feed(&buf[..n]);
                if to.write_all(&pass).is_err() {
                    break;
                }
                if done {
                    detached.store(true, Ordering::SeqCst);
                    // Ends the output loop below; the container runs on.
                    let _ = to.shutdown(std::net::Shutdown::Both);
                    break;
                }
            }
        });
    }
    // docker's --sig-proxy: a signal this process gets (^C at its terminal
    // included) goes to the container's command instead, through its
    // sandbox process (see `sandbox::signals`), while the output flows. A
    // terminal's keys reach a -t container as keys: nothing to pass on then.
    let _forwarding = (sig_proxy && !config.tty).then(|| forward_signals(&state)).flatten();
    let mut from = socket;
    let mut head = [0u8; 5];
    while from.read_exact(&mut head).is_ok() {
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut bytes = vec![0u8; len];
        if from.read_exact(&mut bytes).is_err() {
            break;
        }
        let written = if head[0] == Stream::Stderr as u8 {
            std::io::stderr().write_all(&bytes)
        } else {
            std::io::stdout().write_all(&bytes).and_then(|()| std::io::stdout().flush())
        };
        written.map_err(ContainerError::Output)?;
    }
    drop(_forwarding);
    drop(_raw);
    if detached.load(Ordering::SeqCst) {
        return Ok(0);
    }
    super::wait(store, &id)
}

/// Forward the signals kiln passes on to the container's sandbox process,
/// if `state` still names it (its start time says so).
fn forward_signals(state: &super::State) -> Option<crate::sandbox::signals::Forwarding> {
    if super::monitor::start_time(state.pid) != Some(state.pid_start) {
        return None;
    }
    let forwarding = crate::sandbox::signals::install(false).ok()?;
    crate::sandbox::signals::forward_to(nix::unistd::Pid::from_raw(state.pid as i32));
    Some(forwarding)
}

/// docker's detach keys: a comma-separated sequence of `ctrl-X` and single
/// characters (default `ctrl-p,ctrl-q`; empty: none), and how much of it
/// the input has typed so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachKeys {
    pub fn parse(text: &str) -> Result<DetachKeys, ContainerError> {
        let bad = || ContainerError::Invalid("--detach-keys", format!("{text:?}: give keys as ctrl-p,ctrl-q or a,b"));
        let mut keys = Vec::new();
        for key in text.split(',').filter(|k| !k.is_empty()) {
            let key = match key.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => match c.as_bytes()[0] {
                    c @ b'a'..=b'z' => c - b'a' + 1,
                    c @ (b'@' | b'[' | b'\\' | b']' | b'^' | b'_') => c - b'@',
                    _ => return Err(bad()),
                },
                None if key.len() == 1 => key.as_bytes()[0],
                _ => return Err(bad()),
            };
            keys.push(key);
        }
        Ok(DetachKeys { keys, matched: 0 })
    }

    /// What of `input` to pass on, and whether the whole sequence was typed.
    /// A partial sequence is held back until the next byte shows whether it
    /// goes on; then it is passed on after all.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if self.keys.first() == Some(&b) {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_read_as_dockers_and_a_partial_sequence_passes_on() {
        let mut keys = DetachKeys::parse("ctrl-p,ctrl-q").unwrap();
        assert_eq!(keys.feed(b"ls\x10"), (b"ls".to_vec(), false));
        assert_eq!(keys.feed(b"x"), (b"\x10x".to_vec(), false));
        assert_eq!(keys.feed(b"a\x10\x11b"), (b"a".to_vec(), true));
        assert_eq!(DetachKeys::parse("ctrl-@,a,ctrl-_").unwrap().keys, [0, b'a', 31]);
        assert!(DetachKeys::parse("").unwrap().feed(b"\x10\x11").0 == b"\x10\x11");
        for bad in ["ctrl-", "ctrl-1", "ab", "meta-x"] {
            assert!(DetachKeys::parse(bad).is_err(), "{bad}");
        }
    }
}
