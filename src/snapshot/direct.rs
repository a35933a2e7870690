//! Snapshots made while their layer is written, so no layer kiln makes is
//! extracted again before the next step mounts it.
//!
//! A [`Tee`] takes the layer's tar bytes as [`LayerSink`](crate::layer::LayerSink)
//! writes them and hands them, through a bounded channel of buffers, to a
//! thread that reads the same tar:
//!
//! - for COPY, ADD, WORKDIR and imports ([`Tee::extract`]), the thread is
//!   [`extract::apply`] itself, into a temporary folder under `snapshots/`
//!   that becomes `snapshots/<diffID hex>/` when the layer is finished. Every
//!   safety check and every rule of extraction applies, so the folder is
//!   exactly what extracting the blob would give, SOURCE_DATE_EPOCH included;
//! - for a RUN on the kernel's overlay ([`Tee::upper`]), the step's upper
//!   folder already holds the files: the thread only checks each entry
//!   against it and gives it the entry's metadata (owner, mode, times, no
//!   overlay xattrs but the opaque marker) — see [`conform`]. Once the overlay
//!   is unmounted the folder is renamed into `snapshots/`. Anything it cannot
//!   vouch for (an entry it does not find as written, a file no entry names)
//!   leaves the folder to be removed with the mount, and the layer is
//!   extracted when first mounted, as before.
//!
//! A tee never fails the layer: when its thread fails, the snapshot is simply
//! made the old way, by [`Snapshotter::ensure`](super::Snapshotter::ensure),
//! which then reports whatever is wrong. Concurrent makers of the same layer
//! race on the rename; the loser's folder is removed.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::JoinHandle;

use kiln_solver::Digest;
use tempfile::TempDir;

use crate::layer::{extract, LayerError};
use crate::store::Store;

mod conform;

pub use conform::conform;

/// How many bytes go to the thread at once: tar writes headers of 512 bytes,
/// which would otherwise be a message each.
const CHUNK: usize = 256 * 1024;
/// How many chunks may wait for the thread: the tee's memory is at most
/// `(QUEUE + 2) * CHUNK` (the queue, the one being filled, the one being read).
const QUEUE: usize = 4;

/// The second reader of a layer's tar bytes (see the module docs).
pub struct Tee {
    chunk: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    worker: Option<JoinHandle<Result<(), LayerError>>>,
    target: Target,
}

/// What the thread writes, and where it goes when the layer is finished.
enum Target {
    /// A fresh folder the layer is extracted into.
    Extract { tmp: TempDir, snapshots: PathBuf },
    /// A RUN's upper folder, conformed in place.
    Upper { upper: PathBuf, snapshots: PathBuf },
    /// Renamed into place: nothing left to remove.
    Done,
}

impl Tee {
    /// Extract the layer, as it is written, into a new folder under the
    /// store's `snapshots/`; big files the snapshot folder `donor` holds
    /// alike are linked from it.
    pub fn extract(store: &Store, donor: Option<PathBuf>) -> Result<Self, LayerError> {
        let snapshots = store.snapshots_dir();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}", crate::store::temp_prefix("direct")))
            .tempdir_in(&snapshots)
            .map_err(crate::fsutil::io_at::<LayerError>("creating a folder in", &snapshots))?;
        let root = tmp.path().to_owned();
        Ok(Self::spawn(Target::Extract { tmp, snapshots }, move |tar| {
            extract::apply_with_donor(tar, &root, "the new layer", donor.as_deref())
        }))
    }

    /// Conform the overlay upper folder `upper` to the layer written from it
    /// (see [`conform`]); it becomes the snapshot if it fits. The overlay must
    /// be unmounted before the layer is finished.
    pub fn upper(store: &Store, upper: &Path) -> Self {
        let (dir, snapshots) = (upper.to_owned(), store.snapshots_dir());
        Self::spawn(Target::Upper { upper: upper.to_owned(), snapshots }, move |tar| conform(tar, &dir))
    }

    fn spawn(target: Target, read: impl FnOnce(&mut Chunks) -> Result<(), LayerError> + Send + 'static) -> Self {
        let (tx, rx) = sync_channel(QUEUE);
        let worker = std::thread::spawn(move || read(&mut Chunks { rx, chunk: Vec::new(), pos: 0 }));
        Self { chunk: Vec::with_capacity(CHUNK), tx: Some(tx), worker: Some(worker), target }
    }

    /// Pass on `buf`, the next bytes of the layer's tar.
    pub fn write(&mut self, buf: &[u8]) {
        if self.tx.is_none() {
            return;
        }
        self.chunk.extend_from_slice(buf);
        if self.chunk.len() >= CHUNK {
            self.send();
        }
    }

    fn send(&mut self) {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        let Some(tx) = &self.tx else { return };
        // The thread stopped (it failed): nothing more to give it.
        if tx.send(chunk).is_err() {
            self.tx = None;
        }
    }

    /// The tar is complete: hand the thread its last bytes and the end, so it
    /// finishes while the blob is synced, not after.
    pub fn end_input(&mut self) {
        if !self.chunk.is_empty() {
            self.send();
        }
        self.tx = None;
    }

    /// Wait for the thread; true when it read the whole tar without fault.
    fn join(&mut self) -> bool {
        self.end_input();
        let done = self.worker.take().map(JoinHandle::join);
        matches!(done, Some(Ok(Ok(()))))
    }

    /// The layer is complete with diffID `diff_id`: put its folder in place
    /// as `snapshots/<hex>/`. Returns the folder when this tee made it (or
    /// another maker got there first), `None` when the layer is to be
    /// extracted when first mounted.
    pub fn finish(mut self, diff_id: &Digest) -> Option<PathBuf> {
        if !self.join() {
            return None;
        }
        let (from, snapshots) = match &self.target {
            Target::Extract { tmp, snapshots } => (tmp.path().to_owned(), snapshots),
            Target::Upper { upper, snapshots } => (upper.clone(), snapshots),
            Target::Done => return None,
        };
        let dir = snapshots.join(diff_id.hex());
        if dir.is_dir() {
            return Some(dir);
        }
        match fs::rename(&from, &dir) {
            Ok(()) => {
                if let Target::Extract { tmp, .. } = std::mem::replace(&mut self.target, Target::Done) {
                    let _ = tmp.keep();
                }
                Some(dir)
            }
            // A concurrent maker of the same layer won; ours goes with its temporary folder.
            Err(_) if dir.is_dir() => Some(dir),
            Err(_) => None,
        }
    }
}

impl Drop for Tee {
    /// A layer given up midway: the thread reads a cut tar and stops, and
    /// only then is its folder removed, so nothing writes into a folder being
    /// removed.
    fn drop(&mut self) {
        self.join();
    }
}

/// The thread's end of the channel, as a reader of the tar.
struct Chunks {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => (self.chunk, self.pos) = (chunk, 0),
                // The writer is done (or gave up): the end of the tar.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
