//! `kiln debug parse`: a Dockerfile's raw parse tree, before any expansion,
//! shaped like BuildKit's parser output so tools can compare the two.
//!
//! Each instruction: `cmd` (lowercased), `flags` as written, `args` the way
//! BuildKit's parser splits them (whitespace-separated words for FROM, EXPOSE,
//! COPY, ADD, VOLUME; quote-aware words for ARG; the rest of the line as one
//! string for RUN, CMD, ENTRYPOINT, SHELL and for MAINTAINER, USER, WORKDIR,
//! STOPSIGNAL; the elements of any JSON form; key, value, separator triples
//! for ENV and LABEL; HEALTHCHECK's type then its command; ONBUILD's trigger as
//! a nested instruction), `json`, `heredocs` and its first and last lines.

use serde::Serialize;

use crate::error::Error;
use crate::parser::{self, Node};
use crate::shell::Lexer;

/// A whole file's parse tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseTree {
    /// The parser directives found at the top of the file.
    pub directives: TreeDirectives,
    /// The instructions, in order.
    pub instructions: Vec<TreeNode>,
}

/// `# escape=`, `# syntax=`, `# check=` (the escape character in effect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeDirectives {
    /// The escape character: `\` unless the file says otherwise.
    pub escape: String,
    /// `# syntax=` as written.
    pub syntax: Option<String>,
    /// `# check=` as written.
    pub check: Option<String>,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeNode {
    /// The instruction, lowercased.
    pub cmd: String,
    /// Its flags exactly as written (`--platform=linux/amd64`).
    pub flags: Vec<String>,
    /// Its arguments, as BuildKit's parser splits them.
    pub args: Vec<TreeArg>,
    /// Whether the arguments were a JSON array.
    pub json: bool,
    /// Its heredocs, bodies raw.
    pub heredocs: Vec<TreeHeredoc>,
    /// The first line of the instruction (1-based).
    pub start_line: usize,
    /// The last line, heredoc bodies included.
    pub end_line: usize,
}

/// An argument: a word, or (for ONBUILD) the trigger instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TreeArg {
    /// A word or a string.
    Word(String),
    /// ONBUILD's trigger.
    Node(Box<TreeNode>),
}

/// A heredoc.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeHeredoc {
    /// Its delimiter, unquoted.
    pub name: String,
    /// Its body as written.
    pub content: String,
    /// False when the delimiter was quoted.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped when the body is used.
    pub chomp: bool,
}

/// The parse tree of `dockerfile`; the error (without a file name: the
/// caller sets [`Error::file`]) when it does not parse.
pub fn parse_tree(dockerfile: &str) -> Result<ParseTree, Error> {
    let parsed = parser::parse(dockerfile)?;
    let lexer = Lexer::new(parsed.escape);
    let directives = TreeDirectives {
        escape: parsed.escape.to_string(),
        syntax: parsed.syntax.as_ref().map(|d| d.value.clone()),
        check: parsed.check.as_ref().map(|d| d.value.clone()),
    };
    let instructions = parsed.nodes.map(|n| n.and_then(|n| tree_node(&n, &lexer))).collect::<Result<_, _>>()?;
    Ok(ParseTree { directives, instructions })
}

fn tree_node(node: &Node, lexer: &Lexer) -> Result<TreeNode, Error> {
    let flags = node
        .flags
        .iter()
        .map(|f| match &f.value {
            Some(v) => format!("--{}={v}", f.name),
            None => format!("--{}", f.name),
        })
        .collect();
    let word = |s: &str| TreeArg::Word(s.to_owned());
    let rest = node.rest.as_str();
    let args = match (&node.json, node.keyword) {
        (_, "ONBUILD") => match &node.nested {
            Some(nested) => vec![TreeArg::Node(Box::new(tree_node(nested, lexer)?))],
            // A trigger kiln cannot parse yet is checked when it runs.
            None if rest.is_empty() => Vec::new(),
            None => vec![word(rest)],
        },
        (Some(array), _) => array.iter().map(|s| word(s)).collect(),
        (None, _) if rest.is_empty() => Vec::new(),
        (None, "FROM" | "EXPOSE" | "COPY" | "ADD" | "VOLUME") => {
            parser::fields(rest).into_iter().map(|(_, w)| word(w)).collect()
        }
        (None, "ARG") => lexer.split(rest).into_iter().map(|(_, w)| word(w)).collect(),
        (None, "ENV" | "LABEL") => crate::instructions::raw_pairs(node, lexer)?
            .into_iter()
            .flat_map(|(k, v, sep)| [TreeArg::Word(k), TreeArg::Word(v), word(sep)])
            .collect(),
        (None, "HEALTHCHECK") => {
            let (kind, command) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let command = command.trim_start();
            let mut args = vec![word(kind)];
            match parser::json_form(command).map_err(|e| Error::at(node.location_of(0), e))? {
                Some(array) => {
                    args.extend(array.iter().map(|s| word(s)));
                    return Ok(finish(node, flags, args, true));
                }
                None if command.is_empty() => {}
                None => args.push(word(command)),
            }
            args
        }
        (None, _) => vec![word(rest)],
    };
    Ok(finish(node, flags, args, node.json.is_some()))
}

fn finish(node: &Node, flags: Vec<String>, args: Vec<TreeArg>, json: bool) -> TreeNode {
    let heredocs = node
        .heredocs
        .iter()
        .map(|h| TreeHeredoc { name: h.name.clone(), content: h.content.clone(), expand: h.expand, chomp: h.chomp })
        .collect();
    TreeNode {
        cmd: node.keyword.to_ascii_lowercase(),
        flags,
        args,
        json,
        heredocs,
        start_line: node.location.line,
        end_line: node.end_line,
    }
}
