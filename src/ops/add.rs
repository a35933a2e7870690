//! ADD of remote sources (`CopyFrom::Url`, `CopyFrom::Git`): each source is
//! fetched (see [`crate::fetch`]) into a private staging folder, laid out the
//! way BuildKit's source presents it (a URL's file under its name, mode 0600,
//! mtime from Last-Modified; a repository's tree at its commit, mtimes as
//! [`git::Mtime`] says), and written into the layer by the COPY writer as if
//! that folder were a build context (so --chown, --chmod, --link and the
//! destination rules are COPY's).
//!
//! Cache keys: a URL's content digest and Last-Modified (downloaded for the
//! key, as BuildKit does; a `304` to the stored ETag avoids it), or, with
//! `--checksum`, that checksum alone, so a cached step needs no request; a
//! git source's commit (`ls-remote`; none for a full commit id).

use std::sync::Arc;

use kiln_frontend::{CopyFrom, CopyOp};
use kiln_solver::{Digest, ExecContext};
use sha2::{Digest as _, Sha256};

use super::{Engine, EngineError, FsState};
use crate::context::dockerignore::DockerIgnore;
use crate::copy::{self, SourceRoot};
use crate::fetch::git::{self, GitSource};
use crate::fetch::{http, io_err, FetchError};
use crate::layer::LayerWriter;
use crate::store::temp_prefix;

/// Length-prefixed fields, so that no two lists of them hash alike.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn new(kind: &str) -> Self {
        let mut h = KeyHasher(Sha256::new());
        h.field(kind.as_bytes());
        h
    }
    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }
    fn finish(self) -> Digest {
        Digest::from_hasher(self.0)
    }
}

fn expected_checksum(op: &CopyOp) -> Result<Option<String>, FetchError> {
    let Some(checksum) = &op.checksum else { return Ok(None) };
    if op.sources.len() != 1 {
        return Err(FetchError::ChecksumOfMany(op.sources.len()));
    }
    http::parse_checksum(checksum).map(Some)
}

impl Engine {
    /// The content part of a remote ADD's cache key.
    pub(super) fn add_checksum(&self, op: &CopyOp) -> Result<Option<Digest>, EngineError> {
        match op.from {
            CopyFrom::Url => {
                let mut key = KeyHasher::new("url");
                if let Some(expected) = expected_checksum(op)? {
                    // Pinned content: the key needs no request.
                    key.field(op.sources[0].as_bytes());
                    key.field(expected.as_bytes());
                    return Ok(Some(key.finish()));
                }
                for url in &op.sources {
                    let fetched = self.downloads.fetch(url, None)?;
                    key.field(url.as_bytes());
                    key.field(fetched.digest.as_bytes());
                    key.field(&fetched.mtime.to_le_bytes());
                    self.resolved.set_url(url, fetched);
                }
                Ok(Some(key.finish()))
            }
            CopyFrom::Git { .. } => {
                let mut key = KeyHasher::new("git");
                for source in &op.sources {
                    let pinned = self.pin(op, source)?;
                    key.field(source.as_bytes());
                    key.field(pinned.commit.as_bytes());
                }
                Ok(Some(key.finish()))
            }
            _ => Ok(None),
        }
    }

    fn pin(&self, op: &CopyOp, source: &str) -> Result<git::Pinned, FetchError> {
        if let Some(pinned) = self.resolved.commit(source) {
            return Ok(pinned);
        }
        let src = GitSource::parse(source)?;
        let pinned = git::pin(&src)?;
        if let Some(checksum) = &op.checksum {
            if op.sources.len() != 1 {
                return Err(FetchError::ChecksumOfMany(op.sources.len()));
            }
            git::check_checksum(&src, &pinned, checksum)?;
        }
        if let Some(checksum) = &src.checksum {
            git::check_checksum(&src, &pinned, checksum)?;
        }
        self.resolved.set_commit(source, pinned.clone());
        Ok(pinned)
    }

    /// Run a remote ADD: fetch, stage, write the layer.
    pub(super) fn add(&self, ctx: &ExecContext, op: &CopyOp, inputs: &[FsState]) -> Result<FsState, EngineError> {
        let work = self.store.work_dir();
        let staging = tempfile::Builder::new()
            .prefix(&temp_prefix("add"))
            .tempdir_in(&work)
            .map_err(io_err("creating a staging folder in", &work))?;
        let mut sources = Vec::new();
        for (i, source) in op.sources.iter().enumerate() {
            let dir = staging.path().join(i.to_string());
            match op.from {
                CopyFrom::Url => {
                    std::fs::create_dir(&dir).map_err(io_err("creating", &dir))?;
                    let fetched = self.fetched(op, source)?;
                    let name = http::file_name(source);
                    http::stage(&fetched, &dir, &name)?;
                    // A name that reads as a wildcard is matched, alone in its folder, by one.
                    let glob = name.contains(['*', '?', '[']);
                    sources.push(if glob { format!("{i}/*") } else { format!("{i}/{name}") });
                }
                CopyFrom::Git { keep_git_dir } => {
                    let pinned = self.pin(op, source)?;
                    let src = GitSource::parse(source)?;
                    let keep = keep_git_dir || src.keep_git_dir;
                    let root = git::checkout(&src, &pinned, keep, self.git_mtime, &dir)?;
                    let rel = root.strip_prefix(staging.path()).unwrap_or(&root);
                    sources.push(rel.to_string_lossy().into_owned());
                }
                ref other => return Err(EngineError::Unsupported(format!("ADD from {other:?}"))),
            }
        }
        let from = SourceRoot::Context { root: staging.path().to_owned(), ignore: Arc::new(DockerIgnore::none()) };
        let staged = CopyOp { from: CopyFrom::Context, sources, ..op.clone() };
        let base = &inputs[0];
        let base_mount = (!base.layers.is_empty()).then(|| self.snapshots.mount(&base.layers, false)).transpose()?;
        let mut writer = LayerWriter::with_snapshot(&self.store)?;
        writer.cancel_on(ctx.cancellation());
        copy::write_layer(
            &staged,
            base_mount.as_ref().map(|m| m.root.as_path()),
            Some(&from),
            None,
            writer.tar(),
            self.epoch,
        )?;
        let layer = writer.finish()?;
        Ok(base.with(layer))
    }

    /// A URL's content: as its cache key saw it, from an earlier download
    /// that matches `--checksum`, or fetched now.
    fn fetched(&self, op: &CopyOp, url: &str) -> Result<http::Fetched, FetchError> {
        let expected = expected_checksum(op)?;
        let seen = self.resolved.url(url).filter(|f| f.path.is_file());
        if let Some(fetched) = seen.filter(|f| expected.as_ref().is_none_or(|e| *e == f.digest)) {
            return Ok(fetched);
        }
        if let Some(fetched) = expected.as_deref().and_then(|e| self.downloads.cached(url, e)) {
            return Ok(fetched);
        }
        self.downloads.fetch(url, expected.as_deref())
    }
}

#[cfg(test)]
#[path = "add_tests.rs"]
mod tests;
