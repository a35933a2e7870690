//! The file as the checks see it: global ARGs and stages of commands,
//! keywords and stage names as they were written (the typed instructions
//! normalise both away, and refuse files the checks must still report on).
//!
//! Nodes are read one at a time and each kept only as what the rules need:
//! a RUN's script, however long, is not held (the parser streams a big file
//! so that it never is).

use crate::error::{Error, Location};
use crate::instructions::{self, mount, ArgDecl, CommandLine, Instruction};
use crate::parser::Node;
use crate::shell::Lexer;

/// A FROM and what follows it.
pub(super) struct Stage {
    /// The FROM keyword as written (`FROM`, `from`, `From`).
    pub(super) keyword: String,
    pub(super) location: Location,
    /// The base as written (unexpanded).
    pub(super) base: String,
    /// `--platform=` as written.
    pub(super) platform: Option<String>,
    /// `AS` as written, and the name as written.
    pub(super) alias: Option<(String, String)>,
    pub(super) commands: Vec<Command>,
}

/// An instruction after FROM, as the rules need it.
pub(super) struct Command {
    /// As written (`RUN`, `run`).
    pub(super) keyword: String,
    /// Uppercased.
    pub(super) upper: &'static str,
    pub(super) location: Location,
    /// Typed (RUN without its command); `None` for an instruction that does
    /// not type (the build's error, not a warning).
    pub(super) instruction: Option<Instruction>,
    /// ENV or LABEL in the `key value` form.
    pub(super) legacy_pairs: bool,
    /// The stages (names or indexes, as written) `--from=` and RUN's
    /// `--mount=…,from=` read.
    pub(super) stage_refs: Vec<String>,
}

impl Command {
    fn read(node: Node, lexer: &Lexer) -> Command {
        let mut instruction = instructions::instruction(&node, lexer).ok();
        // Neither RUN's command and heredocs (the checks expand only its
        // mounts) nor COPY's heredoc bodies are held.
        match &mut instruction {
            Some(Instruction::Copy(copy)) => copy.inline = Vec::new(),
            Some(Instruction::Run(run)) => {
                run.command = CommandLine::Shell(String::new());
                run.heredocs = Vec::new();
            }
            _ => {}
        }
        let legacy_pairs = matches!(node.keyword, "ENV" | "LABEL")
            && lexer.split(&node.rest).first().is_some_and(|(_, w)| !w.contains('='));
        let stage_refs = node
            .flags
            .iter()
            .filter_map(|flag| {
                let value = flag.value.as_deref().unwrap_or("");
                match flag.name.as_str() {
                    "from" => Some(value.to_owned()),
                    "mount" => mount::fields(value)
                        .ok()?
                        .into_iter()
                        .find_map(|f| (f.key == "from").then_some(f.value).flatten()),
                    _ => None,
                }
            })
            .collect();
        Command {
            keyword: keyword(&node).to_owned(),
            upper: node.keyword,
            location: node.location,
            instruction,
            legacy_pairs,
            stage_refs,
        }
    }
}

impl Stage {
    /// The name, lowercased as stage names are compared.
    pub(super) fn name(&self) -> Option<String> {
        self.alias.as_ref().map(|(_, n)| n.to_lowercase())
    }
}

pub(super) struct File {
    /// The ARGs before the first FROM.
    pub(super) global_args: Vec<(ArgDecl, Location)>,
    pub(super) stages: Vec<Stage>,
    /// The last line of each instruction continued across a blank line.
    pub(super) empty_continuations: Vec<Location>,
}

/// The keyword of a node as written: its text's first word.
fn keyword(node: &Node) -> &str {
    node.text.split_whitespace().next().unwrap_or(node.keyword)
}

impl File {
    /// Group the nodes. A parse error is the file's error; an instruction
    /// before FROM other than ARG is left to the build to refuse.
    pub(super) fn read(nodes: impl Iterator<Item = Result<Node, Error>>, lexer: &Lexer) -> Result<File, Error> {
        let mut file = File { global_args: Vec::new(), stages: Vec::new(), empty_continuations: Vec::new() };
        for node in nodes {
            let node = node?;
            // Reported at the instruction's last line, as BuildKit does.
            if node.empty_continuation.is_some() {
                file.empty_continuations.push(Location { line: node.end_line, column: 1 });
            }
            if node.keyword == "FROM" {
                file.stages.push(stage(node, lexer));
            } else if let Some(stage) = file.stages.last_mut() {
                stage.commands.push(Command::read(node, lexer));
            } else if let Ok(Instruction::Arg(decls)) = instructions::instruction(&node, lexer) {
                file.global_args.extend(decls.into_vec().into_iter().map(|d| (d, node.location)));
            }
        }
        Ok(file)
    }
}

fn stage(node: Node, lexer: &Lexer) -> Stage {
    let words: Vec<String> = lexer.split(&node.rest).into_iter().map(|(_, w)| w.to_owned()).collect();
    let alias = match words.as_slice() {
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => Some((as_word.clone(), name.clone())),
        _ => None,
    };
    Stage {
        keyword: keyword(&node).to_owned(),
        location: node.location,
        base: words.first().cloned().unwrap_or_default(),
        platform: node.flags.iter().find(|f| f.name == "platform").and_then(|f| f.value.clone()),
        alias,
        commands: Vec::new(),
    }
}
