//! The frontend's one error type: what is wrong ([`ErrorKind`], by pipeline
//! stage) and where ([`Location`] in the named Dockerfile).

use std::fmt;

use kiln_solver::GraphError;

use crate::checks::DirectiveError;
use crate::instructions::InstructionError;
use crate::lower::LowerError;
use crate::parser::ParseError;
use crate::shell::ShellError;

/// A place in the Dockerfile: 1-based line, and 1-based column counted in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A Dockerfile that cannot be lowered. Its Display is the whole message for the
/// user: `Dockerfile:3:1: unknown instruction "RUNN" (did you mean "RUN"?)`, or
/// `Dockerfile: no FROM instruction` when no single place is to blame.
#[derive(Debug)]
pub struct Error {
    /// The Dockerfile's name, from [`BuildOptions::dockerfile_name`](crate::BuildOptions::dockerfile_name).
    pub file: String,
    /// Where the problem is, when it is tied to a place.
    pub location: Option<Location>,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// The 1-based line of the problem, if it has a place.
    pub fn line(&self) -> Option<usize> {
        self.location.map(|l| l.line)
    }

    /// The 1-based column of the problem, if it has a place.
    pub fn column(&self) -> Option<usize> {
        self.location.map(|l| l.column)
    }

    /// An error at `location`; `build_graph` fills in the file name.
    pub(crate) fn at(location: Location, kind: impl Into<ErrorKind>) -> Self {
        Error { file: String::new(), location: Some(location), kind: kind.into() }
    }

    /// An error about the whole file.
    pub(crate) fn whole(kind: impl Into<ErrorKind>) -> Self {
        Error { file: String::new(), location: None, kind: kind.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some(at) => write!(f, "{}:{at}: {}", self.file, self.kind),
            None => write!(f, "{}: {}", self.file, self.kind),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The kind *is* the message; only its own cause (if any) is a source.
        std::error::Error::source(&self.kind)
    }
}

/// What is wrong, by pipeline stage.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The text is not a well-formed Dockerfile.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A word cannot be expanded (bad quoting or substitution).
    #[error(transparent)]
    Shell(#[from] ShellError),
    /// An instruction has the wrong arguments.
    #[error(transparent)]
    Instruction(#[from] InstructionError),
    /// The stages cannot be lowered (unknown stage or image, …).
    #[error(transparent)]
    Lower(#[from] LowerError),
    /// A `# check=` directive that cannot be read, or checks failing the
    /// build (`error=true`).
    #[error(transparent)]
    Check(#[from] DirectiveError),
    /// An ONBUILD trigger of the base failed (to parse or to lower); it is
    /// named, as it is written in no line of this Dockerfile.
    #[error("ONBUILD trigger \"{trigger}\" inherited from {base}: {error}")]
    Trigger {
        /// The trigger as stored in the base's config.
        trigger: String,
        /// The base image or stage, as FROM names it.
        base: String,
        /// What is wrong with it.
        error: Box<ErrorKind>,
    },
    /// The graph refused a vertex (a bug: the frontend only adds valid vertices).
    #[error("internal error: cannot add a vertex to the build graph")]
    Graph(#[source] GraphError),
}
