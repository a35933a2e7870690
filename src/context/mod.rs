//! The build context: the folder a build reads its COPY/ADD sources from, and
//! the `.dockerignore` rules that decide which of its files a build sees.

pub mod archive;
pub mod dockerignore;
mod goregex;
pub mod index;
mod pattern;
pub mod walk;

/// Errors about the build context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{file}:{line}:{column}: invalid .dockerignore pattern {pattern:?}: {reason}")]
    BadPattern { file: String, line: usize, column: usize, pattern: String, reason: String },
    #[error(
        "{file}:{line}:{column}: a lone `!` re-includes nothing: put a pattern after it (`!keep.txt`) or delete the line"
    )]
    LoneExclusion { file: String, line: usize, column: usize },
    #[error(transparent)]
    Io(#[from] crate::fsutil::PathError),
    #[error("reading the build context from stdin")]
    Stdin(#[source] std::io::Error),
    #[error("stdin is empty: pipe a Dockerfile or a tar archive of the build context into `kiln build -`")]
    EmptyStdin,
    #[error(
        "the build context on stdin is compressed with {0}, which kiln does not read: pipe a plain, gzip or zstd tar"
    )]
    Compression(&'static str),
    #[error("unpacking the build context archive from stdin")]
    Archive(#[source] Box<crate::layer::LayerError>),
}
