//! `kiln debug`: tools that need no store.

use crate::cli::debug::{Args, DebugCommand};

pub fn debug(args: Args) -> anyhow::Result<()> {
    match args.command {
        DebugCommand::Expand(args) => super::debug_expand::expand(args),
    }
}
