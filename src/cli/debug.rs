//! `kiln debug`: look at how kiln reads its inputs, without building.

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
      the files a build of . would send (app.Dockerfile.dockerignore first)
A malformed pattern is an error naming its file and line, and exits 1.")]
pub struct DebugArgs {
    /// What to look at.
    #[command(subcommand)]
    pub command: DebugCommand,
}

/// `kiln debug`'s subcommands.
#[derive(clap::Subcommand)]
pub enum DebugCommand {
    /// `.dockerignore` patterns: how they read, what they match.
    #[command(subcommand)]
    Ignore(super::debug_context::IgnoreCommand),
    /// List the files a build would send of a context folder (after
    /// .dockerignore), one per line, sorted; folders end in `/`.
    Context(super::debug_context::ContextArgs),
}
