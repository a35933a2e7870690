//! COPY and ADD: the same shape, ADD with a few flags of its own.

use super::{bool_flag, flag, flags, json_or_fields, split_quote, InstructionError, Word};
use crate::error::Error;
use crate::parser::{heredoc_marker, Node};
use crate::shell::Lexer;

/// A COPY or an ADD. Words and value flags are raw (they expand at lowering);
/// boolean flags are read here, as BuildKit does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Copy {
    /// ADD rather than COPY.
    pub(crate) add: bool,
    pub(crate) from: Option<Word>,
    pub(crate) chown: Option<Word>,
    pub(crate) chmod: Option<Word>,
    /// ADD `--checksum`.
    pub(crate) checksum: Option<Word>,
    pub(crate) exclude: Vec<Word>,
    pub(crate) link: bool,
    pub(crate) parents: bool,
    /// ADD `--unpack` when given.
    pub(crate) unpack: Option<bool>,
    /// ADD `--keep-git-dir`.
    pub(crate) keep_git_dir: bool,
    /// Paths and URLs, in order.
    pub(crate) sources: Vec<Word>,
    /// `<<NAME` sources: files written in the Dockerfile.
    pub(crate) inline: Vec<Inline>,
    pub(crate) dest: Word,
}

/// A heredoc source of COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inline {
    /// The file's name: the delimiter word.
    pub(crate) name: String,
    /// Leading tabs already stripped under `<<-`; not expanded yet.
    pub(crate) content: String,
    /// Whether the content expands (the delimiter was not quoted).
    pub(crate) expand: bool,
    /// Where the marker is.
    pub(crate) location: crate::error::Location,
}

pub(super) fn copy(node: &Node, lexer: &Lexer) -> Result<Copy, Error> {
    let keyword = node.keyword;
    let mut args = json_or_fields(node);
    if args.len() < 2 {
        return Err(Error::at(node.location, InstructionError::CopyArguments(keyword)));
    }
    let dest = args.pop().expect("two words");
    let mut inline = Vec::new();
    if node.json.is_none() {
        if heredoc_marker(&dest.raw).is_some() {
            return Err(Error::at(dest.location, InstructionError::HeredocDest(keyword)));
        }
        let mut paths = Vec::new();
        for word in args {
            match heredoc_marker(&word.raw) {
                Some(marker) => {
                    let doc = node.heredocs.iter().find(|d| d.name == marker.name);
                    inline.push(Inline {
                        content: doc.map(|d| d.body()).unwrap_or_default(),
                        name: marker.name,
                        expand: marker.expand,
                        location: word.location,
                    });
                }
                None => paths.push(word),
            }
        }
        split_quote(keyword, &paths, lexer)?;
        split_quote(keyword, std::slice::from_ref(&dest), lexer)?;
        args = paths;
    }
    Ok(Copy {
        add: keyword == "ADD",
        from: flag(node, "from"),
        chown: flag(node, "chown"),
        chmod: flag(node, "chmod"),
        checksum: flag(node, "checksum"),
        exclude: flags(node, "exclude").into_iter().filter(|w| !w.raw.is_empty()).collect(),
        link: bool_flag(node, "link")?.unwrap_or(false),
        parents: bool_flag(node, "parents")?.unwrap_or(false),
        unpack: bool_flag(node, "unpack")?,
        keep_git_dir: bool_flag(node, "keep-git-dir")?.unwrap_or(false),
        sources: args,
        inline,
        dest,
    })
}
