//! ADD's remote sources: files fetched over HTTP(S) ([`http`]) and git
//! repositories ([`git`]), each made into a folder the COPY layer writer
//! reads as it reads a build context (see `ops::add`).
//!
//! What a source resolves to (a URL's content digest, a git ref's commit) is
//! found before the step, for its cache key, and remembered in [`Resolved`]
//! so the step copies exactly what its key describes.

pub mod git;
pub mod http;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why fetching an ADD source failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("fetching {url}: the server answered {status}; check the URL, or that the server serves it")]
    Status { url: String, status: String },
    #[error("fetching {url}: the download failed")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("fetching {url}: {why}")]
    BadUrl { url: String, why: String },
    #[error(
        "fetching {url}: checksum mismatch: --checksum expects {expected}, the download is {actual}; \
         nothing was added (fix --checksum, or the URL)"
    )]
    Checksum { url: String, expected: String, actual: String },
    #[error("ADD --checksum={0:?}: write sha256: followed by 64 hex digits")]
    BadChecksum(String),
    #[error("ADD --checksum={0:?}: a git source's checksum is its commit id in hex")]
    BadCommitChecksum(String),
    #[error("ADD --checksum checks a single source; this ADD has {0} (write one ADD per source)")]
    ChecksumOfMany(usize),
    #[error("cloning {url}: the commit is {actual}, but --checksum expects {expected}; nothing was added")]
    CommitMismatch { url: String, expected: String, actual: String },
    #[error("cloning {url}: the repository has no branch or tag {reference}")]
    NoRef { url: String, reference: String },
    #[error("cloning {url}: {subdir} is not a directory of the repository at commit {commit}")]
    NoSubdir { url: String, subdir: String, commit: String },
    #[error("cloning {url}: {reference} moved from {expected} to {actual} while the build ran; build again")]
    RefMoved { url: String, reference: String, expected: String, actual: String },
    #[error("cloning {url}: git {command} failed: {stderr}")]
    Git { url: String, command: String, stderr: String },
    #[error(
        "cloning {url}: git {command} took more than {secs}s and was stopped; check the server, \
         or raise KILN_GIT_TIMEOUT (seconds)"
    )]
    GitTimeout { url: String, command: String, secs: u64 },
    #[error(
        "fetching {url}: the server sent nothing for {secs}s; check the server, or raise \
         KILN_FETCH_READ_TIMEOUT (seconds)"
    )]
    ReadTimeout { url: String, secs: u64 },
    #[error(
        "fetching {url}: the download is larger than {max} bytes and was stopped; raise \
         KILN_FETCH_MAX_BYTES if it is expected"
    )]
    TooLarge { url: String, max: u64 },
    #[error("cloning {url}: cannot run git (install git to ADD git repositories)")]
    NoGit {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the download threads")]
    Runtime(#[source] crate::registry::RegistryError),
}

pub(crate) fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FetchError {
    let path = path.to_owned();
    move |source| FetchError::Io { what, path, source }
}

/// What the sources of the steps of one build resolved to, from the cache
/// key's computation to the step that copies them.
#[derive(Default)]
pub struct Resolved {
    urls: Mutex<HashMap<String, http::Fetched>>,
    commits: Mutex<HashMap<String, git::Pinned>>,
}

impl Resolved {
    pub(crate) fn url(&self, url: &str) -> Option<http::Fetched> {
        self.urls.lock().unwrap_or_else(|e| e.into_inner()).get(url).cloned()
    }
    pub(crate) fn set_url(&self, url: &str, fetched: http::Fetched) {
        self.urls.lock().unwrap_or_else(|e| e.into_inner()).insert(url.to_owned(), fetched);
    }
    pub(crate) fn commit(&self, source: &str) -> Option<git::Pinned> {
        self.commits.lock().unwrap_or_else(|e| e.into_inner()).get(source).cloned()
    }
    pub(crate) fn set_commit(&self, source: &str, pinned: git::Pinned) {
        self.commits.lock().unwrap_or_else(|e| e.into_inner()).insert(source.to_owned(), pinned);
    }
}

/// Set the mtime (and atime) of `path`, not following a symlink there.
pub(crate) fn set_mtime(path: &Path, secs: i64) -> Result<(), FetchError> {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    let t = TimeSpec::new(secs, 0);
    utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink)
        .map_err(|e| io_err("setting the mtime of", path)(e.into()))
}

/// `url` (or any text) with the password of each URL in it replaced by
/// `xxxxx`: the frontend's redaction, so the step name and the engine's
/// errors show a URL the same way.
pub(crate) use kiln_frontend::redact::credentials as redact;

#[cfg(test)]
pub(crate) mod test_server;
