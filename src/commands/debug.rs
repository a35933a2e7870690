//! `kiln debug`: each subcommand in a file of its own.

use crate::cli::debug::{DebugArgs, DebugCommand};

pub fn debug(args: DebugArgs) -> anyhow::Result<()> {
    match args.command {
        DebugCommand::Ignore(command) => super::debug_context::ignore(command),
        DebugCommand::Context(args) => super::debug_context::context(args),
    }
}
