//! kiln's Dockerfile frontend: Dockerfile text in, a content-addressed build graph out.
//!
//! The pipeline is one module per stage, like BuildKit's:
//! `parser` (text → nodes with line and column; [`parse_tree`] shows them) →
//! `instructions` (typed instructions, grouped into stages) → `shell` (word
//! expansion) → `lower` (stages → a [`BuildGraph`] of [`Op`] vertices, one
//! file per instruction family).
//!
//! Beside them: `error` ([`Error`], [`Location`]), `config` (the
//! [`ImageConfig`] a stage carries), `options` (what the caller hands in,
//! including the [`ImageResolver`]) and `shorten` (long text cut for display).
//!
//! It does no I/O: the caller hands in the Dockerfile text and an [`ImageResolver`]
//! that looks base images up in whatever store it has.

#![warn(missing_docs, unreachable_pub)]

mod checks;
mod config;
mod error;
mod instructions;
mod lower;
pub mod ops;
mod options;
mod parse_tree;
mod parser;
pub mod redact;
mod shell;
mod shorten;

pub use checks::{check, is_secret_name, CheckConfig, CheckReport, DirectiveError, Rule, Warning};
pub use config::{Healthcheck, History, ImageConfig, DEFAULT_PATH};
pub use error::{Error, ErrorKind, Location};
pub use instructions::health::parse_duration as parse_go_duration;
pub use instructions::mount::{csv_record, ram_in_bytes};
pub use instructions::InstructionError;
pub use lower::{BuildGraph, LowerError, RequiredId, RunRequirements, StepPlace};
pub use ops::{CopyFrom, CopyOp, ExecOp, InlineFile, MkdirOp, MountFrom, Network, Op, RunMount, Sharing};
pub use options::{BuildOptions, ImageResolver, NamedContext, ResolvedImage};
pub use parse_tree::{parse_tree, ParseTree, TreeArg, TreeDirectives, TreeHeredoc, TreeNode};
pub use parser::ParseError;
pub use shell::{expand_word, expand_words, ShellError};
pub use shorten::{Shortened, SHOWN_CHARS};

/// Lower a Dockerfile to the build graph of its target stage.
///
/// Parses `dockerfile`, types its instructions, then lowers the stages the target
/// needs (and only those: a stage nobody needs is never resolved). Base images are
/// looked up through `resolver`; nothing else is read. The same text, options and
/// resolver answers always give the same vertex digests.
pub fn build_graph(dockerfile: &str, opts: &BuildOptions, resolver: &dyn ImageResolver) -> Result<BuildGraph, Error> {
    let file = checks::file_name(opts);
    let resolver = checks::Remembered::new(resolver);
    let lower = || {
        let parsed = parser::parse(dockerfile)?;
        let lexer = shell::Lexer::new(parsed.escape);
        let (syntax, check) = (parsed.syntax.clone(), parsed.check.clone());
        let instructions = instructions::parse(parsed.nodes, &lexer)?;
        let mut graph = lower::lower(instructions, &lexer, opts, &resolver)?;
        if let Some(warning) = syntax.as_ref().and_then(parser::syntax_warning) {
            let at = syntax.as_ref().map(|s| s.location).expect("a warning comes from a directive");
            graph.warnings.insert(0, format!("{file}:{at}: {warning}"));
        }
        graph.check_directive = check.map(|c| c.value);
        // The build checks of the stages built, on the images already looked up.
        let report = checks::run(dockerfile, opts, &resolver.asked(), checks::Scope::Target)?;
        if let Some(violation) = report.violation() {
            return Err(violation);
        }
        graph.warnings.extend(report.lines());
        Ok(graph)
    };
    lower().map_err(|mut e: Error| {
        e.file = file.clone();
        e
    })
}
