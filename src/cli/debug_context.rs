//! The flags of `kiln debug ignore` and `kiln debug context`.

use std::path::PathBuf;

/// `kiln debug ignore match|read`.
#[derive(clap::Subcommand)]
pub enum IgnoreCommand {
    /// Print `true` when the patterns exclude PATH (a path relative to the
    /// context root, judged with its parent folders as a build judges it),
    /// else `false`. A malformed pattern is an error.
    Match(MatchArgs),
    /// Print a .dockerignore's patterns as a build reads them (comments and
    /// blanks dropped, each cleaned), as a JSON array of strings.
    Read(ReadArgs),
}

/// `kiln debug ignore match [--pattern P]… [--file F] -- PATH`.
#[derive(clap::Args)]
pub struct MatchArgs {
    /// A .dockerignore line (repeatable, in order; after those of --file).
    #[arg(long = "pattern", allow_hyphen_values = true)]
    pub patterns: Vec<String>,
    /// A .dockerignore file to read patterns from.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The path to judge.
    pub path: String,
}

/// `kiln debug ignore read FILE`.
#[derive(clap::Args)]
pub struct ReadArgs {
    /// The .dockerignore file.
    pub file: PathBuf,
}

/// `kiln debug context [-f DOCKERFILE] [DIR]`.
#[derive(clap::Args)]
pub struct ContextArgs {
    /// The Dockerfile: its `<Dockerfile>.dockerignore` wins over the
    /// context's `.dockerignore`, as in a build.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// The context folder.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}
