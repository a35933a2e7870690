//! The writing threads of a big blob: the writer's thread goes on making
//! (and hashing) the next bytes while these put the last ones on the disk.
//!
//! For a blob nothing reads back soon, whole blocks go to the disk with `O_DIRECT`, straight from the chunk,
//! not copied into the page cache first. A COPY of a big context is bound
//! by the CPU of a small machine: copying its 1 GB layer into the page
//! cache cost 1.4 s of CPU on 2 cores, as much as hashing it, for pages
//! nobody reads back soon (the snapshot is made beside the blob). And the
//! commit's fsync then has only the metadata and a few unaligned bytes left
//! to write. Where the file system refuses direct writes (tmpfs, say),
//! every chunk is written through the page cache, with its writeback
//! started early (see [`write_behind`]).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

/// A blob bigger than this is written by a pipe: a big COPY's thread spent
/// about a third of its time writing its tar (1.8 s of a 6.7 s step, for
/// 1 GB). A multiple of [`ALIGN`]: the pipe starts at an aligned offset.
pub(super) const PIPE_AFTER: u64 = 4 << 20;
/// The bytes handed over at a time, and how many may wait: memory stays
/// bounded (about 1.3 MiB) however fast the writer's thread makes them.
pub(super) const CHUNK: usize = 256 << 10;
const QUEUED: usize = 2;
/// What direct writes are aligned to, in memory and in the file: the
/// largest logical block size of common disks.
const ALIGN: usize = 4096;
/// How much of a blob written through the page cache is written before its
/// writeback is started.
pub(super) const WRITE_BEHIND: u64 = 8 << 20;

/// Start the disk writing `file` from `from` to `to`, without waiting: the
/// commit's fsync then waits for the last few MiB only, not for a whole
/// layer's worth of dirty pages at once (about 3 s a GB here), while the
/// disk would have idled as the layer was made. Best effort: a file system
/// that cannot is synced all at once at the commit. Returns `to`.
pub(super) fn write_behind(file: &File, from: u64, to: u64) -> u64 {
    // A length of 0 would mean "to the end of the file".
    if to <= from {
        return to;
    }
    // SAFETY: a plain syscall on a descriptor the caller owns; it touches
    // no memory of ours.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            from as libc::off64_t,
            (to - from) as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
    to
}

/// [`CHUNK`] bytes at an [`ALIGN`]ed address: a window of a slightly
/// bigger buffer, which never grows (so never moves); and where in the file
/// they go.
struct Block {
    buf: Vec<u8>,
    start: usize,
    len: usize,
    at: u64,
}

impl Block {
    fn new() -> Self {
        let buf = vec![0u8; CHUNK + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        Self { buf, start, len: 0, at: 0 }
    }

    /// Take what fits of `bytes`; returns how much.
    fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(CHUNK - self.len);
        let at = self.start + self.len;
        self.buf[at..at + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

/// See the module docs.
pub(super) struct Pipe {
    chunks: Option<SyncSender<Block>>,
    /// Chunks the threads wrote, to fill again.
    spare: Receiver<Block>,
    filling: Block,
    /// Where the chunk being filled goes in the file.
    size: u64,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl Pipe {
    /// Threads appending to `file`, whose first `size` bytes are written
    /// (`size` a multiple of [`ALIGN`]) and their writeback started up to
    /// `written_back`; with `direct`, around the page cache where it can.
    pub(super) fn start(file: &File, written_back: u64, size: u64, direct: bool) -> io::Result<Self> {
        // A direct write returns when the disk has it: two at a time keep
        // the disk busy while a thread waits for the CPU to issue the next.
        // Through the cache, one thread writes in order.
        let writers = if direct { 2 } else { 1 };
        let (chunks, to_write) = sync_channel::<Block>(QUEUED);
        let to_write = std::sync::Arc::new(std::sync::Mutex::new(to_write));
        let (give_back, spare) = channel();
        // A fixed set of chunks, taken turns with: one filling, the queued
        // ones, those being written. A new chunk each time the threads are
        // behind (and they are, writing to the disk as they do) would be
        // fresh memory to fault in, a third of the CPU the copy into it takes.
        for _ in 0..QUEUED + writers {
            let _ = give_back.send(Block::new());
        }
        let mut threads = Vec::with_capacity(writers);
        for _ in 0..writers {
            let mut out = Appender::new(file, written_back, size, direct)?;
            let (to_write, give_back) = (to_write.clone(), give_back.clone());
            let thread = std::thread::Builder::new().name("kiln-blob".into()).spawn(move || loop {
                let next = to_write.lock().map_err(|_| io::Error::other("a blob thread panicked"))?.recv();
                let Ok(mut chunk) = next else { return Ok(()) };
                out.append(chunk.bytes(), chunk.at)?;
                chunk.len = 0;
                let _ = give_back.send(chunk);
            })?;
            threads.push(thread);
        }
        Ok(Self { chunks: Some(chunks), spare, filling: Block::new(), size, threads })
    }

    pub(super) fn write(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            buf = &buf[self.filling.fill(buf)..];
            if self.filling.len == CHUNK {
                self.send()?;
            }
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        let sent = self.spare.recv().is_ok_and(|next| {
            let mut full = std::mem::replace(&mut self.filling, next);
            full.at = self.size;
            self.size += full.len as u64;
            self.chunks.as_ref().is_some_and(|c| c.send(full).is_ok())
        });
        if sent {
            return Ok(());
        }
        // The threads stopped: their error says why.
        self.finish().and(Err(io::Error::other("the blob's writing threads stopped")))
    }

    /// Hand over what is left, and wait until the thread wrote everything.
    pub(super) fn finish(&mut self) -> io::Result<()> {
        if self.filling.len > 0 {
            let mut rest = std::mem::replace(&mut self.filling, Block { buf: Vec::new(), start: 0, len: 0, at: 0 });
            rest.at = self.size;
            self.size += rest.len as u64;
            if let Some(chunks) = &self.chunks {
                let _ = chunks.send(rest);
            }
        }
        self.chunks = None;
        // Every thread is waited for; the first failure is the answer.
        let mut result = Ok(());
        for thread in self.threads.drain(..) {
            let done = thread.join().unwrap_or_else(|_| Err(io::Error::other("the blob's writing thread panicked")));
            result = result.and(done);
        }
        result
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // Nothing of it may outlive the writer (its temp file goes next).
        self.filling.len = 0;
        let _ = self.finish();
    }
}

/// Writes chunks of a file at their offsets: whole aligned blocks through a
/// descriptor of its own opened with `O_DIRECT` when the file system takes
/// them, the rest through the page cache.
struct Appender {
    cached: File,
    direct: Option<File>,
    /// The bytes it wrote through the cache in one run whose writeback is
    /// not started yet.
    unstarted: std::ops::Range<u64>,
}

impl Appender {
    fn new(file: &File, written_back: u64, size: u64, direct: bool) -> io::Result<Self> {
        // O_DIRECT is a flag of the open file, which a dup would share: the
        // file is opened again, by its descriptor (its temp name may go).
        let direct = direct
            .then(|| {
                let mut open = OpenOptions::new();
                open.write(true).custom_flags(libc::O_DIRECT).open(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
            })
            .flatten();
        Ok(Self { cached: file.try_clone()?, direct, unstarted: written_back..size })
    }

    fn append(&mut self, bytes: &[u8], at: u64) -> io::Result<()> {
        let aligned = at.is_multiple_of(ALIGN as u64) && bytes.len().is_multiple_of(ALIGN);
        match &self.direct {
            Some(direct) if aligned => match direct.write_all_at(bytes, at) {
                Ok(()) => return Ok(()),
                // Refused (EINVAL: an alignment this file system wants
                // bigger): through the page cache from here on. A write
                // that failed part way is written again whole below.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.direct = None,
                Err(e) => return Err(e),
            },
            _ => {}
        }
        self.cached.write_all_at(bytes, at)?;
        let end = at + bytes.len() as u64;
        if at != self.unstarted.end {
            write_behind(&self.cached, self.unstarted.start, self.unstarted.end);
            self.unstarted = at..at;
        }
        self.unstarted.end = end;
        if self.unstarted.end - self.unstarted.start >= WRITE_BEHIND {
            let start = write_behind(&self.cached, self.unstarted.start, end);
            self.unstarted = start..start;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) fn cached_bytes(path: &std::path::Path) -> u64 {
    let mut fincore = std::process::Command::new("fincore");
    let out = fincore.args(["--bytes", "--noheadings", "--raw", "--output", "RES"]).arg(path).output();
    let out = out.expect("fincore (util-linux-extra) runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("fincore prints a size")
}

/// Whether the file system of `path` (a file) takes direct writes.
#[cfg(test)]
pub(crate) fn takes_direct_writes(path: &std::path::Path) -> bool {
    OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(path).is_ok()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::Path;

    use super::*;

    #[test]
    fn whole_blocks_bypass_the_page_cache_and_the_unaligned_tail_does_not() {
        // On the disk the store would be on: /tmp may be a tmpfs, which
        // takes no direct writes.
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        let dir = tempfile::tempdir_in(&target).unwrap();
        let path = dir.path().join("blob");
        let mut file = File::create(&path).unwrap();
        let bytes: Vec<u8> = (0..ALIGN + 3 * CHUNK + 100).map(|i| (i * 13 % 251) as u8).collect();
        file.write_all(&bytes[..ALIGN]).unwrap();
        let mut pipe = Pipe::start(&file, 0, ALIGN as u64, true).unwrap();
        for piece in bytes[ALIGN..].chunks(CHUNK / 5 + 3) {
            pipe.write(piece).unwrap();
        }
        pipe.finish().unwrap();

        let cached = cached_bytes(&path);
        if takes_direct_writes(&path) {
            // The head and the tail's page; none of the whole chunks.
            assert!(cached <= 2 * ALIGN as u64, "{cached} bytes of the blob went through the page cache");
        } else {
            eprintln!("no direct writes on {}: every chunk went through the page cache", target.display());
        }
        assert!(std::fs::read(&path).unwrap() == bytes, "the blob is not what was written");
    }
}
