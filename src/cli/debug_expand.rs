//! `kiln debug expand`'s flags.

use clap::Subcommand;

/// `kiln debug expand word|words [--env NAME=VALUE]… -- INPUT`.
#[derive(clap::Args)]
pub struct ExpandArgs {
    /// One word, or a list of words.
    #[command(subcommand)]
    pub mode: ExpandMode,
}

/// How the input is expanded.
#[derive(Subcommand)]
pub enum ExpandMode {
    /// Print the expansion of one word (quotes and escapes removed, not split), as
    /// ENV, LABEL, WORKDIR, COPY… expand theirs.
    Word(ExpandInput),
    /// Print the words of the expansion as a JSON array (split on unquoted blanks),
    /// as EXPOSE expands its.
    Words(ExpandInput),
}

/// The text and the variables in scope.
#[derive(clap::Args)]
pub struct ExpandInput {
    /// Set a variable, NAME=VALUE, or NAME to take kiln's own value of it (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// The text, after `--` when it starts with `-`. The escape character is `\`.
    #[arg(value_name = "INPUT")]
    pub input: String,
}
