//! The flags of `kiln debug`: tools that show what kiln makes of its inputs,
//! for people and for other programs (each prints JSON on stdout).

use std::path::PathBuf;

use clap::Subcommand;

/// `kiln debug --help`: one paragraph per subcommand.
pub const HELP: &str = "Show what kiln makes of its inputs, without building anything.\n\n\
Each subcommand prints one JSON document on stdout and exits 0; on bad input it prints the \
error (file:line:column: what is wrong) on stderr and exits non-zero. Other tools drive these \
commands: their JSON shapes are kept stable.\n\n\
kiln debug parse [FILE]: a Dockerfile's raw parse tree, before any expansion (FILE defaults to \
./Dockerfile; - reads stdin). See kiln debug parse --help for its shape.\n\n\
kiln debug expand word|words [--env NAME=VALUE]... -- INPUT: a word as an instruction expands it \
(word: the text, not split, on one line; words: the JSON array of its words).\n\n\
kiln debug ignore match [--pattern P]... [--file F] -- PATH: true when .dockerignore patterns \
exclude PATH (relative to the context root, judged with its parent folders as a build judges \
it), else false.\n\n\
kiln debug ignore read FILE: a .dockerignore's patterns as a build reads them (comments and \
blanks dropped, each cleaned), as a JSON array of strings.\n\n\
kiln debug context [-f DOCKERFILE] [DIR]: the files a build of DIR would send (after \
.dockerignore, or <Dockerfile>.dockerignore when there is one), one per line, sorted; folders \
end in /. A malformed pattern is an error naming its file and line.";

/// `kiln debug SUBCOMMAND`.
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  kiln debug ignore match --pattern '*.md' --pattern '!README.md' -- README.md
      false: the exception re-includes it (prints true when excluded)
  kiln debug ignore match --file .dockerignore -- docs/a/b.md
      the file's patterns; a parent folder that matches excludes the path too
  kiln debug ignore read .dockerignore
      [\"node_modules\",\"!keep\"]: the patterns a build uses, cleaned
  kiln debug context -f app.Dockerfile .
      the files a build of . would send (app.Dockerfile.dockerignore first)")]
pub struct Args {
    /// The subcommand.
    #[command(subcommand)]
    pub command: DebugCommand,
}

/// `kiln debug`'s subcommands.
#[derive(Subcommand)]
pub enum DebugCommand {
    /// Print a Dockerfile's raw parse tree as JSON, before any expansion.
    #[command(long_about = PARSE_HELP)]
    Parse(ParseArgs),
    /// Expand a Dockerfile word the way an instruction would.
    Expand(super::debug_expand::ExpandArgs),
    /// `.dockerignore` patterns: how they read, what they match.
    #[command(subcommand)]
    Ignore(super::debug_context::IgnoreCommand),
    /// List the files a build would send of a context folder (after
    /// .dockerignore), one per line, sorted; folders end in `/`.
    Context(super::debug_context::ContextArgs),
}

const PARSE_HELP: &str = "Print a Dockerfile's raw parse tree as JSON, before any expansion.\n\n\
Output: {\"directives\": {\"escape\", \"syntax\", \"check\"}, \"instructions\": [...]}, each instruction \
{\"cmd\": lowercased, \"flags\": as written, \"args\": [...], \"json\": bool, \"heredocs\": \
[{\"name\", \"content\", \"expand\", \"chomp\"}], \"start_line\", \"end_line\"}.\n\n\
args are split as BuildKit's parser splits them: whitespace-separated words for FROM, EXPOSE, \
COPY, ADD and VOLUME; quote-aware words for ARG; the rest of the line as one string for RUN, CMD, \
ENTRYPOINT and SHELL in shell form, and for MAINTAINER, USER, WORKDIR and STOPSIGNAL; the elements \
of any JSON form; key, value, separator triples for ENV and LABEL (separator \"=\", or \"\" for \
`ENV key value`); HEALTHCHECK's type (CMD or NONE) then its command; ONBUILD's trigger as one \
nested instruction object.";

/// `kiln debug parse [FILE]`.
#[derive(clap::Args)]
pub struct ParseArgs {
    /// The Dockerfile; `-` reads it from stdin.
    #[arg(default_value = "Dockerfile")]
    pub file: PathBuf,
}
