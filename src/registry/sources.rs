//! Where each blob was last seen on a registry: `<root>/registry/sources/<hex>`,
//! one `host/repository` a line. A push reads it to mount a blob from another
//! repository of the same registry instead of uploading it again; pulls and
//! pushes add to it. A line may be stale (the repository deleted since): the
//! registry then declines the mount and the blob is uploaded.

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;

use kiln_solver::Digest;

use crate::store::Store;

/// The most repositories remembered per blob: the record stays small.
const KEEP: usize = 16;

pub(crate) fn path(store: &Store, digest: &Digest) -> PathBuf {
    store.root().join("registry/sources").join(digest.hex())
}

/// The repositories of `host` known to hold `digest`.
pub fn repositories(store: &Store, digest: &Digest, host: &str) -> Vec<String> {
    let text = fs::read_to_string(path(store, digest)).unwrap_or_default();
    text.lines().filter_map(|l| l.strip_prefix(host)?.strip_prefix('/')).map(str::to_owned).collect()
}

/// Remember that `host/repository` holds `digest`. Best effort: a record that
/// cannot be written costs a later upload, nothing else.
pub fn record(store: &Store, digest: &Digest, host: &str, repository: &str) {
    let file = path(store, digest);
    let line = format!("{host}/{repository}");
    let text = fs::read_to_string(&file).unwrap_or_default();
    if text.lines().any(|l| l == line) {
        return;
    }
    let mut lines: Vec<&str> = text.lines().collect();
    lines.push(&line);
    let keep = &lines[lines.len().saturating_sub(KEEP)..];
    let Some(dir) = file.parent() else { return };
    if fs::create_dir_all(dir).is_err() {
        return;
    }
    let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else { return };
    if writeln!(tmp, "{}", keep.join("\n")).is_ok() {
        let _ = tmp.persist(&file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_remembered_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"x");
        assert!(repositories(&store, &d, "r:5000").is_empty());
        for (host, repo) in [("r:5000", "a/b"), ("r:5000", "c"), ("r:5000", "a/b"), ("q.io", "d"), ("r:50001", "e")] {
            record(&store, &d, host, repo);
        }
        assert_eq!(repositories(&store, &d, "r:5000"), ["a/b", "c"]);
        assert_eq!(repositories(&store, &d, "q.io"), ["d"]);
    }
}
