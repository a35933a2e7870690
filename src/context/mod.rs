//! The build context: the folder a build reads its COPY/ADD sources from, and
//! the `.dockerignore` rules that decide which of its files a build sees.

pub mod dockerignore;

/// Errors about the build context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{file}:{line}: bad pattern {pattern:?}")]
    BadPattern {
        file: String,
        line: usize,
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("{file}:{line}: illegal exclusion pattern {pattern:?} (a lone `!`)")]
    LoneExclusion { file: String, line: usize, pattern: String },
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
}
