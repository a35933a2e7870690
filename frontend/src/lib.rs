//! kiln's Dockerfile frontend: Dockerfile text in, a content-addressed build graph out.
//!
//! The pipeline is one module per stage, like BuildKit's:
//! `parser` (text → [`parser::Node`]s with line and column) →
//! `instructions` (typed instructions) → `shell` (word expansion) →
//! `convert` (stages → a [`BuildGraph`] of [`ops::Op`] vertices).
//!
//! It does no I/O: the caller hands in the Dockerfile text and an [`ImageResolver`]
//! that looks base images up in whatever store it has.

mod convert;
mod instructions;
pub mod ops;
mod parser;
mod shell;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use kiln_solver::{Digest, Graph, GraphError};
use serde::{Deserialize, Serialize};

pub use convert::ConvertError;
pub use instructions::InstructionError;
pub use ops::{CopyFrom, CopyOp, ExecOp, Op};
pub use parser::ParseError;
pub use shell::ShellError;

/// The image metadata a stage carries (the `config` of an OCI image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `KEY=value`, in order, each key once.
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// Empty when unset.
    pub working_dir: String,
    /// Empty when unset.
    pub user: String,
    pub labels: BTreeMap<String, String>,
    /// `80/tcp`, `53/udp`: a bare port gets `/tcp`.
    pub exposed_ports: BTreeSet<String>,
    /// Inherited from the base image (no instruction sets them yet).
    pub volumes: BTreeSet<String>,
    /// Inherited from the base image (no instruction sets it yet).
    pub stop_signal: Option<String>,
    /// One entry per instruction, oldest first; base image history included.
    pub history: Vec<History>,
}

/// One line of an image's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// When the entry was made (RFC 3339): kept from a base image's history;
    /// `None` for an entry of this build, which gets the image's time when the
    /// image is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Like docker: `RUN /bin/sh -c make`, `COPY app /app`, `ENV A=b`, `CMD ["x"]`.
    pub created_by: String,
    /// A base image's comment on the entry (`docker import` writes one); kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True for instructions that add no layer (everything but COPY and RUN).
    pub empty_layer: bool,
}

/// A base image, as the caller's store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The normalised name, e.g. `busybox:latest`.
    pub name: String,
    /// Manifest digest, `sha256:…`.
    pub digest: String,
    /// Its config: ENV, CMD, … and history are inherited by a stage built on it.
    pub config: ImageConfig,
}

/// Looks base images up. Implemented by the engine over its image store.
pub trait ImageResolver {
    /// Resolve `reference` (as written after FROM or `--from=`, expanded). `Ok(None)`
    /// when there is no such image; `Err` with a message when the lookup itself failed.
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String>;
}

/// What a build asks of the frontend besides the Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path as the user named it: errors start with it.
    pub dockerfile_name: String,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// The platform built for and on, `os/arch[/variant]` (e.g. `linux/amd64`):
    /// the source of the predefined TARGET* and BUILD* ARGs. None: not predefined.
    pub platform: Option<String>,
}

/// The result of lowering a Dockerfile.
#[derive(Debug, Clone)]
pub struct BuildGraph {
    /// Every vertex the target stage needs (and nothing else).
    pub graph: Graph<Op>,
    /// The vertex whose result is the image's filesystem.
    pub target: Digest,
    /// The image config of the target stage, history included.
    pub config: ImageConfig,
    /// Things worth telling the user that do not stop the build (unused build args…).
    pub warnings: Vec<String>,
    /// The Dockerfile instruction each vertex comes from, so a failing step can be
    /// named by its line.
    pub sources: BTreeMap<Digest, Location>,
}

/// Lower a Dockerfile to the build graph of its target stage.
///
/// Parses `dockerfile`, types its instructions, then lowers the stages the target
/// needs (and only those: a stage nobody needs is never resolved). Base images are
/// looked up through `resolver`; nothing else is read. The same text, options and
/// resolver answers always give the same vertex digests.
pub fn build_graph(dockerfile: &str, opts: &BuildOptions, resolver: &dyn ImageResolver) -> Result<BuildGraph, Error> {
    let lower = || {
        let parsed = parser::parse(dockerfile)?;
        let lexer = shell::Lexer::new(parsed.escape);
        let file = instructions::parse(parsed.nodes, &lexer)?;
        convert::lower(file, &lexer, opts, resolver)
    };
    lower().map_err(|mut e| {
        e.file = if opts.dockerfile_name.is_empty() { "Dockerfile".to_owned() } else { opts.dockerfile_name.clone() };
        e
    })
}

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

/// How many characters of an instruction or a command line progress lines
/// and errors show.
pub const SHOWN_CHARS: usize = 200;

/// Text cut for progress lines and errors: a RUN line can be megabytes long,
/// and printed whole, in every place that names the step, it floods the
/// terminal. Displays as its first [`SHOWN_CHARS`] characters and, when that
/// is not all of it, `… (N characters)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortened<'a> {
    /// The text shown.
    pub head: &'a str,
    /// The whole text's length in characters, when `head` is not all of it.
    pub chars: Option<usize>,
}

impl<'a> Shortened<'a> {
    /// `text`, cut if it is longer than [`SHOWN_CHARS`] characters.
    pub fn new(text: &'a str) -> Self {
        match text.char_indices().nth(SHOWN_CHARS) {
            None => Shortened { head: text, chars: None },
            Some((end, _)) => Shortened { head: &text[..end], chars: Some(text.chars().count()) },
        }
    }

    /// The head in double quotes, escaped like `{:?}`, then the note: for
    /// messages that quote the text (the note is not part of it).
    pub fn quoted(&self) -> String {
        format!("{:?}{}", self.head, self.note())
    }

    fn note(&self) -> String {
        self.chars.map(|n| format!("… ({n} characters)")).unwrap_or_default()
    }
}

impl fmt::Display for Shortened<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.head, self.note())
    }
}

/// A Dockerfile that cannot be lowered. Its Display is the whole message for the
/// user: `Dockerfile:3:1: unknown instruction "RUNN" (did you mean "RUN"?)`, or
/// `Dockerfile: no FROM instruction` when no single place is to blame.
#[derive(Debug)]
pub struct Error {
    /// The Dockerfile's name, from [`BuildOptions::dockerfile_name`].
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
    Convert(#[from] ConvertError),
    /// The graph refused a vertex (a bug: the frontend only adds valid vertices).
    #[error("internal error: cannot add a vertex to the build graph")]
    Graph(#[source] GraphError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_shortened_for_display() {
        let long = "x".repeat(SHOWN_CHARS - 1);
        for (text, shown, quoted) in [
            ("make", "make".to_owned(), "\"make\"".to_owned()),
            ("say \"hi\"", "say \"hi\"".to_owned(), r#""say \"hi\"""#.to_owned()),
            (&format!("{long}y"), format!("{long}y"), format!("\"{long}y\"")),
            (&format!("{long}yz"), format!("{long}y… (201 characters)"), format!("\"{long}y\"… (201 characters)")),
            // Cut between characters, never inside one; counted in characters.
            (&format!("{long}éèà"), format!("{long}é… (202 characters)"), format!("\"{long}é\"… (202 characters)")),
        ] {
            let s = Shortened::new(text);
            assert_eq!((s.to_string(), s.quoted()), (shown, quoted), "{text}");
        }
    }
}
