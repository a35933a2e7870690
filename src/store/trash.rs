//! Scratch folders removed off the build's path, on a thread of their own.
//!
//! A step leaves folders behind it (its mount's, a spec file's): removing
//! them is not part of its result, yet on a disk mounted with `discard`
//! every folder removed waits for its block to be discarded, about 0.4 ms
//! each here, a millisecond or two a step. Handed to [`remove_later`], they
//! go while the next step runs. [`wait_empty`] (at the command's end) waits
//! for the last; what a killed kiln left is swept by the next one (their
//! names carry the pid, see [`super::temp_prefix`]). Other clean-ups that
//! only take time go the same way ([`later`]: a sandbox process reaped once
//! it has reported its step's end, and its cgroup removed).

use std::sync::mpsc::{channel, Sender};
use std::sync::{Condvar, Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

struct Trash {
    jobs: Sender<Job>,
    /// How many jobs were handed over and are not done yet.
    pending: Mutex<usize>,
    emptied: Condvar,
}

static TRASH: OnceLock<Option<Trash>> = OnceLock::new();

fn trash() -> Option<&'static Trash> {
    TRASH
        .get_or_init(|| {
            let (tx, rx) = channel::<Job>();
            let spawned = std::thread::Builder::new().name("kiln-trash".into()).spawn(move || {
                for job in rx {
                    job();
                    let trash = TRASH.get().and_then(Option::as_ref).expect("the trash exists before its thread runs");
                    let mut pending = trash.pending.lock().unwrap_or_else(|e| e.into_inner());
                    *pending -= 1;
                    if *pending == 0 {
                        trash.emptied.notify_all();
                    }
                }
            });
            // No thread, no trash: jobs then run where they are handed over.
            spawned.ok().map(|_| Trash { jobs: tx, pending: Mutex::new(0), emptied: Condvar::new() })
        })
        .as_ref()
}

fn remove(path: &std::path::Path) {
    let _ = match path.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
}

/// Remove `path` (a file, or a folder and all it holds, nothing mounted in
/// it) soon, on the trash's thread; here and now if there is none.
pub fn remove_later(path: std::path::PathBuf) {
    later(move || remove(&path));
}

/// Run `job` soon, on the trash's thread (after what was handed over
/// before it); here and now if there is none.
pub fn later(job: impl FnOnce() + Send + 'static) {
    let Some(trash) = trash() else { return job() };
    *trash.pending.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    if let Err(unsent) = trash.jobs.send(Box::new(job)) {
        (unsent.0)();
        *trash.pending.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
    }
}

/// Wait until everything handed over so far is done.
pub fn wait_empty() {
    let Some(trash) = TRASH.get().and_then(Option::as_ref) else { return };
    let mut pending = trash.pending.lock().unwrap_or_else(|e| e.into_inner());
    while *pending > 0 {
        pending = trash.emptied.wait(pending).unwrap_or_else(|e| e.into_inner());
    }
}

/// Waits, when dropped, until the trash is empty: what a library call made
/// and handed over is gone when it returns, as it would be had it removed
/// it itself.
pub struct EmptiedOnDrop;

impl Drop for EmptiedOnDrop {
    fn drop(&mut self) {
        wait_empty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_handed_over_is_gone_once_the_trash_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("mnt.1.x");
        std::fs::create_dir_all(folder.join("work/work/incompat")).unwrap();
        std::fs::write(folder.join("work/file"), b"x").unwrap();
        let file = dir.path().join("spec.json");
        std::fs::write(&file, b"{}").unwrap();
        remove_later(folder.clone());
        remove_later(file.clone());
        remove_later(dir.path().join("never-there"));
        wait_empty();
        assert!(!folder.exists() && !file.exists());
        assert!(dir.path().exists(), "only what was handed over goes");
    }
}
