//! The build context: the folder a build reads its COPY/ADD sources from, and
//! the `.dockerignore` rules that decide which of its files a build sees.

pub mod dockerignore;
mod goregex;
mod pattern;

/// Errors about the build context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{file}:{line}: invalid .dockerignore pattern {pattern:?}: {reason}")]
    BadPattern { file: String, line: usize, pattern: String, reason: String },
    #[error("{file}:{line}: a lone `!` excludes nothing: put a pattern after it (`!keep.txt`) or delete the line")]
    LoneExclusion { file: String, line: usize },
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
}
