//! `kiln debug`'s flags: tools that show what kiln makes of its input,
//! without a store or a build.

use clap::Subcommand;

pub use super::debug_expand::ExpandArgs;

/// `kiln debug COMMAND`.
#[derive(clap::Args)]
pub struct Args {
    /// What to show.
    #[command(subcommand)]
    pub command: DebugCommand,
}

/// The debug tools.
#[derive(Subcommand)]
pub enum DebugCommand {
    /// Expand a Dockerfile word the way an instruction would.
    Expand(ExpandArgs),
}
