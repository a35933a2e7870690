//! `kiln debug`: each subcommand reads its input, asks the library or the
//! frontend what it makes of it, and prints that as JSON.

use std::io::Read;
use std::path::Path;

use anyhow::Context;

use crate::cli::debug::{Args, DebugCommand, ParseArgs};

pub fn debug(args: Args) -> anyhow::Result<()> {
    match args.command {
        DebugCommand::Parse(args) => parse(args),
        DebugCommand::Expand(args) => super::debug_expand::expand(args),
        DebugCommand::Ignore(command) => super::debug_context::ignore(command),
        DebugCommand::Context(args) => super::debug_context::context(args),
    }
}

fn parse(args: ParseArgs) -> anyhow::Result<()> {
    let (name, text) = read_input(&args.file)?;
    let tree = kiln_frontend::parse_tree(&text).map_err(|mut e| {
        e.file = name;
        e
    })?;
    crate::outln!("{}", serde_json::to_string_pretty(&tree)?)?;
    Ok(())
}

/// The file's name for messages, and its text; `-` is stdin.
fn read_input(path: &Path) -> anyhow::Result<(String, String)> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read the Dockerfile from stdin")?;
        return Ok(("<stdin>".to_owned(), text));
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((path.display().to_string(), text))
}
