//! Every step's whole output, kept on disk: `<root>/logs/<build>/<N>.log`,
//! one file per step that printed anything (`N` is its `#N` in the progress),
//! so a view may show only a step's last lines and nothing is ever lost.
//! The lines are the ones progress gets: a RUN's secrets already masked
//! (`secrets::redact` runs before the line leaves the step).
//!
//! The folders of the last [`KEEP_BUILDS`] builds are kept; a build removes
//! older ones when it starts. Logs are a help, never a need: a folder that
//! cannot be made or a file that cannot be written leaves the build going on
//! without it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_solver::{Digest, Event, EventKind};

use crate::store::Store;

/// How many builds' logs the store keeps.
pub(crate) const KEEP_BUILDS: usize = 10;

/// One build's step logs.
pub(crate) struct StepLogs {
    dir: Option<PathBuf>,
    steps: Mutex<Steps>,
}

#[derive(Default)]
struct Steps {
    /// The open file of each running step that printed; `None` once a write failed.
    files: HashMap<usize, Option<BufWriter<File>>>,
    /// Each started vertex's `#N`.
    index: HashMap<Digest, usize>,
}

impl StepLogs {
    /// A new folder for this build's logs, after removing the oldest beyond
    /// [`KEEP_BUILDS`]. `Err` says why there is none; the build goes on.
    pub(crate) fn open(store: &Store) -> (Self, Option<std::io::Error>) {
        match new_folder(&store.root().join("logs")) {
            Ok(dir) => (Self { dir: Some(dir), steps: Mutex::default() }, None),
            Err(e) => (Self { dir: None, steps: Mutex::default() }, Some(e)),
        }
    }

    /// Where this build's logs are.
    #[cfg(test)]
    fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Keep what `event` says a step printed.
    pub(crate) fn record(&self, event: &Event) {
        let Some(dir) = &self.dir else { return };
        let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        match &event.kind {
            EventKind::Started => {
                steps.index.insert(event.digest.clone(), event.index);
            }
            EventKind::Log(line) => {
                let file = steps
                    .files
                    .entry(event.index)
                    .or_insert_with(|| File::create(dir.join(format!("{}.log", event.index))).ok().map(BufWriter::new));
                if let Some(w) = file {
                    if w.write_all(line.as_bytes()).and_then(|()| w.write_all(b"\n")).is_err() {
                        *file = None;
                    }
                }
            }
            EventKind::Cached | EventKind::Done(_) | EventKind::Failed(..) => {
                // Closed when the step ends: the file is whole before the build reports it.
                if let Some(Some(mut w)) = steps.files.remove(&event.index) {
                    let _ = w.flush();
                }
            }
            EventKind::Bytes { .. } => {}
        }
    }

    /// The log of `vertex`, when it printed anything.
    pub(crate) fn path(&self, vertex: &Digest) -> Option<PathBuf> {
        let steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        let path = self.dir.as_ref()?.join(format!("{}.log", steps.index.get(vertex)?));
        path.is_file().then_some(path)
    }
}

/// `logs/<time>-<pid>-<n>`: names sort as the builds started.
fn new_folder(logs: &Path) -> std::io::Result<PathBuf> {
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    fs::create_dir_all(logs)?;
    let mut old: Vec<PathBuf> = fs::read_dir(logs)?.flatten().map(|e| e.path()).collect();
    old.sort();
    // This build is one of the kept ones.
    for dir in &old[..old.len().saturating_sub(KEEP_BUILDS - 1)] {
        let _ = fs::remove_dir_all(dir);
    }
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let n = BUILDS.fetch_add(1, Ordering::Relaxed);
    let dir = logs.join(format!("{ms:013}-{}-{n:06}", std::process::id()));
    fs::create_dir(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn event(index: usize, kind: EventKind) -> Event {
        Event { index, total: 2, digest: Digest::of(&[index as u8]), name: format!("step {index}"), kind }
    }

    #[test]
    fn each_step_that_prints_gets_its_whole_output_and_only_the_last_builds_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut dirs = Vec::new();
        for _ in 0..KEEP_BUILDS + 2 {
            let (logs, error) = StepLogs::open(&store);
            assert!(error.is_none(), "{error:?}");
            dirs.push(logs.dir().unwrap().to_owned());
            if dirs.len() == 1 {
                logs.record(&event(1, EventKind::Started));
                logs.record(&event(2, EventKind::Started));
                for i in 0..10_000 {
                    logs.record(&event(1, EventKind::Log(format!("line {i}"))));
                }
                logs.record(&event(1, EventKind::Failed(Duration::ZERO, "exit code: 1".into())));
                logs.record(&event(2, EventKind::Done(Duration::ZERO)));
                let path = logs.path(&Digest::of(&[1])).unwrap();
                assert_eq!(path, dirs[0].join("1.log"));
                let text = fs::read_to_string(&path).unwrap();
                assert_eq!(text.lines().count(), 10_000);
                assert!(text.starts_with("line 0\nline 1\n") && text.ends_with("line 9999\n"));
                assert_eq!(logs.path(&Digest::of(&[2])), None, "a step that printed nothing has no log");
            }
        }
        let kept: Vec<PathBuf> = {
            let mut k: Vec<PathBuf> =
                fs::read_dir(dir.path().join("logs")).unwrap().map(|e| e.unwrap().path()).collect();
            k.sort();
            k
        };
        assert_eq!(kept, dirs[dirs.len() - KEEP_BUILDS..], "the newest {KEEP_BUILDS}, the oldest removed");
    }
}
