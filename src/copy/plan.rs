//! The sources of a COPY in the order both passes (checksum, layer) read
//! them, with what `--parents` adds: each source's path below its pivot (the
//! folder before a `/./` in the source, else the source root), and the source
//! folders on the way, whose modes and owners the copy keeps, as BuildKit's.

use std::path::{Path, PathBuf};

use kiln_frontend::CopyOp;

use super::select::{select, Selected, SourceRoot};
use super::CopyError;
use crate::fsutil::{lexical, resolve_in_root};

/// One selected source.
pub(super) struct Planned {
    pub sel: Selected,
    /// With `--parents`: the source's path below its pivot, and the folders
    /// on the way there (host path, path below the pivot), outermost first.
    pub parents: Option<(PathBuf, Vec<(PathBuf, PathBuf)>)>,
}

/// The sources of `op`, read from `from`.
pub(super) fn plan(from: &SourceRoot, op: &CopyOp) -> Result<Vec<Planned>, CopyError> {
    if !op.parents {
        let selected = select(from, &op.sources, &op.exclude)?;
        return Ok(selected.into_iter().map(|sel| Planned { sel, parents: None }).collect());
    }
    let mut out = Vec::new();
    for source in &op.sources {
        let (pivot, rest) = match source.split_once("/./") {
            Some((pivot, rest)) => (lexical(Path::new(pivot)).clamped(), rest),
            None => (PathBuf::new(), source.as_str()),
        };
        let full = pivot.join(rest.trim_start_matches('/')).to_string_lossy().into_owned();
        for sel in select(from, &[full], &op.exclude)? {
            let below = sel.written.strip_prefix(&pivot).unwrap_or(&sel.written).to_owned();
            let mut dirs = Vec::new();
            for dir in below.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
                let rel = pivot.join(dir);
                let host = resolve_in_root(from.root(), &rel).map_err(|e| CopyError::Read(rel, e))?;
                dirs.push((host, dir.to_owned()));
            }
            dirs.reverse();
            out.push(Planned { sel, parents: Some((below, dirs)) });
        }
    }
    Ok(out)
}
