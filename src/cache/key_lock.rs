//! A lock per cache key in flight, across processes: two builds on one store
//! that both miss the same step run it once. The first takes
//! `<root>/locks/<key hex>` (an exclusive `flock`) before running the step;
//! the second waits on it, then finds the first one's saved result. The
//! lock goes with the result saved, the step failing, or the process dying
//! (the kernel drops a dead process's `flock`s), so no build waits forever
//! on a lock nobody holds.
//!
//! The lock file is removed by its holder before it unlocks, so `locks/` does
//! not fill with one empty file per step ever built. A waiter may then hold
//! a lock on a file that is gone: it checks, after locking, that the path
//! still names the file it locked, and starts over when not.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use fs2::FileExt;
use kiln_solver::CacheKey;

use super::CacheError;
use crate::store::Store;

/// The locks of one build: the keys it is running.
pub struct KeyLocks {
    dir: PathBuf,
    held: Mutex<HashMap<CacheKey, File>>,
}

impl KeyLocks {
    /// The locks of `store`.
    pub fn new(store: &Store) -> Self {
        Self { dir: store.root().join("locks"), held: Mutex::default() }
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(key.0.hex())
    }

    /// Take `key`'s lock, waiting while another build holds it, unless
    /// `cancelled` says to stop: `Ok(false)` then, and nothing is held.
    pub fn acquire(&self, key: &CacheKey, cancelled: &dyn Fn() -> bool) -> Result<bool, CacheError> {
        let path = self.path(key);
        let io = |source| CacheError::Io { place: path.display().to_string(), source };
        fs::create_dir_all(&self.dir).map_err(io)?;
        loop {
            let file =
                OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
            if !lock_unless(&file, cancelled).map_err(io)? {
                return Ok(false);
            }
            let locked = file.metadata().map_err(io)?;
            // Removed (and maybe made again) by the holder we waited for.
            match fs::metadata(&path) {
                Ok(now) if now.ino() == locked.ino() && now.dev() == locked.dev() => {
                    self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), file);
                    return Ok(true);
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
    }

    /// Let go of `key`'s lock, if this build holds it.
    pub fn release(&self, key: &CacheKey) {
        let file = self.held.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        if let Some(file) = file {
            // Removed while still locked: see the module docs. Closing unlocks.
            let _ = fs::remove_file(self.path(key));
            drop(file);
        }
    }
}

/// Lock `file` exclusively, waiting while another process holds it, unless
/// `cancelled` says to stop first (`Ok(false)`). flock cannot be
/// interrupted by a flag, so the wait polls, from 1 ms up to 50 ms apart.
fn lock_unless(file: &File, cancelled: &dyn Fn() -> bool) -> std::io::Result<bool> {
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock_exclusive() {
            Ok(()) => return Ok(true),
            Err(e) if e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => {}
            Err(e) => return Err(e),
        }
        if cancelled() {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_solver::Digest;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_second_taker_waits_for_the_first_and_nothing_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (Arc::new(KeyLocks::new(&store)), Arc::new(KeyLocks::new(&store)));
        let key = CacheKey(Digest::of(b"k"));
        assert!(a.acquire(&key, &|| false).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let (b, key) = (b.clone(), key.clone());
            std::thread::spawn(move || {
                assert!(b.acquire(&key, &|| false).unwrap());
                tx.send(()).unwrap();
                b.release(&key);
            })
        };
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "the second took a held lock");
        a.release(&key);
        rx.recv_timeout(Duration::from_secs(10)).expect("the second never got the lock");
        waiter.join().unwrap();
        assert_eq!(fs::read_dir(dir.path().join("locks")).unwrap().count(), 0);
        // Releasing what is not held does nothing.
        a.release(&key);
    }

    #[test]
    fn a_waiter_stops_waiting_once_cancelled_and_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (KeyLocks::new(&store), Arc::new(KeyLocks::new(&store)));
        let key = CacheKey(Digest::of(b"k"));
        assert!(a.acquire(&key, &|| false).unwrap());
        let cancelled = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (b, key, cancelled) = (b.clone(), key.clone(), cancelled.clone());
            std::thread::spawn(move || b.acquire(&key, &|| cancelled.load(Ordering::Relaxed)).unwrap())
        };
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiter.is_finished(), "the waiter took a held lock");
        cancelled.store(true, Ordering::Relaxed);
        assert!(!waiter.join().unwrap(), "a cancelled waiter said it holds the lock");
        assert!(b.held.lock().unwrap().is_empty());
        a.release(&key);
    }
}
