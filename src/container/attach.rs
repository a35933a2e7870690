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
/// it stops; its exit code.
pub fn attach(store: &Store, reference: &str, stdin: bool) -> Result<i32, ContainerError> {
    let containers = Containers::new(store);
    let (id, config, _) = containers.running(reference)?;
    let dir = containers.dir(&id);
    let folder = File::open(&dir).map_err(io("opening", &dir))?;
    let path = format!("/proc/self/fd/{}/attach.sock", folder.as_raw_fd());
    let socket = UnixStream::connect(&path).map_err(|_| ContainerError::NotAttachable(config.name.clone()))?;
    let _raw = (config.tty && stdin).then(super::terminal::RawMode::enter).flatten();
    if stdin {
        let mut to = socket.try_clone().map_err(io("attaching to", &dir))?;
        // Not joined: it may wait on a terminal after the container ended.
        std::thread::spawn(move || std::io::copy(&mut std::io::stdin().lock(), &mut to));
    }
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
    drop(_raw);
    super::wait(store, &id)
}
