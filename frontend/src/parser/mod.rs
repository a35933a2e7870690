//! Dockerfile text → [`Node`]s, one per instruction, with line and column.
//!
//! Line-oriented like BuildKit's parser:
//! * parser directives (`# escape=…`, `# syntax=…`, `# check=…`) are read from the
//!   top of the file until the first line that is not one;
//! * a line ending with the escape character (default `\`, optionally followed by
//!   blanks) continues on the next line; blank lines and comment lines inside a
//!   continuation are skipped;
//! * the first word is the instruction (case-insensitive), then come `--flag=value`
//!   words, then the rest, kept as raw text (expansion happens later, and only for
//!   the instructions that expand) or, for the instructions that have one, parsed
//!   as a JSON (exec form) array.

mod directives;
mod heredoc;
mod json;
mod spec;

use crate::error::{Error, Location};
use directives::Directives;
pub(crate) use directives::{syntax_warning, Directive};
pub(crate) use heredoc::{marker as heredoc_marker, Heredoc};
pub(crate) use json::json_form;
use spec::suggest;
pub(crate) use spec::FlagKind;

/// The escape character when no `# escape=` directive is given.
pub(crate) const DEFAULT_ESCAPE: char = '\\';

/// A file that is not a well-formed Dockerfile.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Nothing but blank lines, comments and directives.
    #[error("no instructions (the file is empty or holds only comments)")]
    Empty,
    /// A first word that is no Dockerfile instruction.
    #[error("unknown instruction \"{keyword}\"{}", did_you_mean(suggestion))]
    UnknownInstruction {
        /// The word as written.
        keyword: String,
        /// The instruction it is a likely typo of.
        suggestion: Option<&'static str>,
    },
    /// A flag the instruction does not take at all.
    #[error("{keyword} does not take --{flag} ({})", takes(flags))]
    UnknownFlag {
        /// The instruction, uppercased.
        keyword: &'static str,
        /// The flag's name as written, without `--`.
        flag: String,
        /// The flags it does take, for the message.
        flags: Vec<&'static str>,
    },
    /// `--flag` or `--flag=` without a value.
    #[error("flag --{flag} needs a value: --{flag}=<value>")]
    FlagWithoutValue {
        /// The flag's name, without `--`.
        flag: String,
    },
    /// The same flag twice on one instruction.
    #[error("flag --{flag} is given twice")]
    DuplicateFlag {
        /// The flag's name, without `--`.
        flag: String,
    },
    /// Exec form with something other than strings in the array (quoted).
    #[error("invalid JSON array {0}: it must hold strings only, each in double quotes")]
    NotStringArray(String),
    /// A heredoc whose terminator line never comes.
    #[error("unterminated heredoc <<{0}: end it with a line holding only {0}")]
    UnterminatedHeredoc(String),
    /// `# escape=` with something other than `\` or a backtick.
    #[error("invalid escape directive \"{0}\": it must be \\ or `")]
    InvalidEscape(String),
    /// `ONBUILD ONBUILD …`.
    #[error("chaining ONBUILD via ONBUILD ONBUILD is not allowed")]
    OnbuildChain,
    /// `ONBUILD FROM` or `ONBUILD MAINTAINER`.
    #[error("{0} is not allowed as an ONBUILD trigger")]
    OnbuildTrigger(&'static str),
    /// A parser directive (named) given twice.
    #[error("the {0} directive is given twice")]
    DuplicateDirective(String),
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean \"{s}\"?)"),
        None => String::new(),
    }
}

fn takes(flags: &[&str]) -> String {
    if flags.is_empty() {
        "it takes no flags".to_owned()
    } else {
        let list: Vec<String> = flags.iter().map(|f| format!("--{f}")).collect();
        format!("it takes {}", list.join(", "))
    }
}

/// A `--name=value` word between the instruction and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flag {
    pub(crate) name: String,
    /// Raw, unexpanded; `None` for a bare boolean flag (`--link`).
    pub(crate) value: Option<String>,
    pub(crate) location: Location,
}

/// Where a piece of the logical (continuation-joined) line came from.
#[derive(Debug, Clone)]
struct Segment {
    /// Byte offset in the logical line.
    offset: usize,
    line: usize,
    /// Column of the segment's first character.
    column: usize,
}

/// One instruction.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Uppercased, one of the supported instructions.
    pub(crate) keyword: &'static str,
    pub(crate) flags: Vec<Flag>,
    /// Everything after the keyword and flags, continuations joined, trimmed.
    pub(crate) rest: String,
    /// The parsed array when `rest` is in JSON (exec) form.
    pub(crate) json: Option<Vec<String>>,
    /// ONBUILD's trigger instruction.
    pub(crate) nested: Option<Box<Node>>,
    /// RUN's, COPY's and ADD's heredocs, in the order of their markers.
    pub(crate) heredocs: Vec<Heredoc>,
    /// Where the keyword starts.
    pub(crate) location: Location,
    /// The last line of the instruction, its heredoc bodies included.
    pub(crate) end_line: usize,
    /// The instruction as written, continuations joined into one line.
    pub(crate) text: String,
    /// Byte offset of `rest` in the logical line.
    rest_offset: usize,
    /// The logical line, to map offsets back to places.
    line: String,
    segments: Vec<Segment>,
}

impl Node {
    /// Where the character at byte `offset` of `rest` was written.
    pub(crate) fn location_of(&self, offset: usize) -> Location {
        locate(&self.line, &self.segments, self.rest_offset + offset)
    }
}

fn locate(line: &str, segments: &[Segment], offset: usize) -> Location {
    let seg = segments.iter().rev().find(|s| s.offset <= offset).unwrap_or(&segments[0]);
    let end = offset.min(line.len());
    let chars = line.get(seg.offset..end).map_or(0, |s| s.chars().count());
    Location { line: seg.line, column: seg.column + chars }
}

/// The parse of a whole file: its directives, and its instructions to be
/// read one at a time.
#[derive(Debug)]
pub(crate) struct Parsed<'t> {
    pub(crate) nodes: Nodes<'t>,
    /// From the `# escape=` directive.
    pub(crate) escape: char,
    /// `# syntax=`, as written.
    pub(crate) syntax: Option<Directive>,
    /// `# check=`, as written (`skip=…;error=true`): the build checks read it.
    pub(crate) check: Option<Directive>,
}

/// The instructions of a file, parsed as they are read: a big Dockerfile
/// never has all of its nodes (each a few copies of its line) in memory at
/// once. The first error ends it; a file without instructions yields
/// [`ParseError::Empty`].
#[derive(Debug)]
pub(crate) struct Nodes<'t> {
    lines: std::str::Split<'t, char>,
    /// The 1-based number of the line last read.
    number: usize,
    /// A line read ahead (the one that ended the directives), `\r` stripped.
    pending: Option<&'t str>,
    escape: char,
    /// Whether a node (or an error) came out yet.
    any: bool,
    done: bool,
}

impl<'t> Nodes<'t> {
    /// The next line, without its `\r`; its number is then `self.number`.
    fn next_line(&mut self) -> Option<&'t str> {
        if let Some(line) = self.pending.take() {
            return Some(line);
        }
        let line = self.lines.next()?;
        self.number += 1;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

impl Iterator for Nodes<'_> {
    type Item = Result<Node, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let node = loop {
            let Some(raw) = self.next_line() else {
                self.done = true;
                return (!self.any).then(|| Err(Error::whole(ParseError::Empty)));
            };
            let start = raw.trim_start();
            if start.is_empty() || start.starts_with('#') {
                continue;
            }
            let column = raw[..raw.len() - start.len()].chars().count() + 1;
            let mut segments = vec![Segment { offset: 0, line: self.number, column }];
            let (content, mut continued) = strip_continuation(start, self.escape);
            let mut line = content.to_owned();
            while continued {
                let Some(raw) = self.next_line() else { break };
                let start = raw.trim_start();
                if start.is_empty() || start.starts_with('#') {
                    continue;
                }
                let (content, more) = strip_continuation(raw, self.escape);
                segments.push(Segment { offset: line.len(), line: self.number, column: 1 });
                line.push_str(content);
                continued = more;
            }
            break node(line, segments).and_then(|n| self.heredoc_bodies(n));
        };
        self.any = true;
        self.done = node.is_err();
        Some(node)
    }
}

impl Nodes<'_> {
    /// Read the bodies of the node's heredocs from the lines that follow it.
    fn heredoc_bodies(&mut self, mut node: Node) -> Result<Node, Error> {
        let start = node.location;
        let target = match node.nested.as_deref_mut() {
            Some(nested) => nested,
            None => &mut node,
        };
        if matches!(target.keyword, "RUN" | "COPY" | "ADD") && target.json.is_none() {
            target.heredocs = heredoc::markers(&target.text);
            for doc in &mut target.heredocs {
                loop {
                    let Some(line) = self.next_line() else {
                        let e = ParseError::UnterminatedHeredoc(doc.name.clone());
                        return Err(Error::at(start, e));
                    };
                    let candidate = if doc.chomp { line.trim_start_matches('\t') } else { line };
                    if candidate == doc.name {
                        break;
                    }
                    doc.content.push_str(line);
                    doc.content.push('\n');
                }
            }
        }
        node.end_line = self.number;
        if let Some(nested) = node.nested.as_deref_mut() {
            nested.end_line = self.number;
        }
        Ok(node)
    }
}

/// Parse a Dockerfile's directives; its instructions come from the returned
/// [`Nodes`] as they are read.
pub(crate) fn parse(text: &str) -> Result<Parsed<'_>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut nodes =
        Nodes { lines: text.split('\n'), number: 0, pending: None, escape: DEFAULT_ESCAPE, any: false, done: false };
    let mut found = Directives::default();
    while let Some(line) = nodes.next_line() {
        if !found.read(line, nodes.number)? {
            nodes.pending = Some(line);
            break;
        }
    }
    nodes.escape = found.escape;
    Ok(Parsed { escape: found.escape, syntax: found.syntax, check: found.check, nodes })
}

/// The line without a trailing escape character (and the blanks after it), and
/// whether there was one.
/// As in BuildKit, an escaped escape character (`ENV C trailing\\`) ends the line.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(content) if content.is_empty() || !content.ends_with(escape) => (content, true),
        _ => (line, false),
    }
}

/// One logical line → a node.
fn node(line: String, segments: Vec<Segment>) -> Result<Node, Error> {
    node_at(&line, &segments, 0).map(|mut n| {
        n.line = line;
        n.segments = segments;
        n
    })
}

/// Parse one instruction line that is not part of a file: an ONBUILD trigger
/// being run, written at `at` (where the FROM that runs it is, say).
pub(crate) fn parse_line(text: &str, at: Location) -> Result<Node, Error> {
    let start = text.trim_start();
    let segments = vec![Segment { offset: 0, line: at.line, column: at.column }];
    node(start.trim_end().to_owned(), segments)
}

/// The instruction that starts at byte `start` of `line` (0, or after ONBUILD).
/// The node's `line` and `segments` are left empty for the caller to fill.
fn node_at(line: &str, segments: &[Segment], start: usize) -> Result<Node, Error> {
    let at = |offset: usize| locate(line, segments, offset);
    let word_end = line[start..].find(char::is_whitespace).map_or(line.len(), |e| start + e);
    let written = &line[start..word_end];
    let keyword = written.to_ascii_uppercase();
    let Some(spec) = spec::find(&keyword) else {
        let e = ParseError::UnknownInstruction { suggestion: suggest(&keyword), keyword: written.to_owned() };
        return Err(Error::at(at(start), e));
    };

    // Flags: `--name[=value]` words up to the first other word (or a bare `--`).
    let skip_blanks = |from: usize| from + (line[from..].len() - line[from..].trim_start().len());
    let mut pos = skip_blanks(word_end);
    let mut flags: Vec<Flag> = Vec::new();
    // ONBUILD's flags are its trigger's.
    while spec.keyword != "ONBUILD" && line[pos..].starts_with("--") {
        let end = line[pos..].find(char::is_whitespace).map_or(line.len(), |e| pos + e);
        let word = &line[pos + 2..end];
        let location = at(pos);
        pos = skip_blanks(end);
        if word.is_empty() {
            break;
        }
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (word, None),
        };
        let Some(&(_, kind)) = spec.flags.iter().find(|(f, _)| *f == name) else {
            let flags = spec.flags.iter().map(|(f, _)| *f).collect();
            let e = ParseError::UnknownFlag { keyword: spec.keyword, flag: name.to_owned(), flags };
            return Err(Error::at(location, e));
        };
        let flag = name.to_owned();
        let value = match value {
            Some(v) if !v.is_empty() => Some(v.to_owned()),
            None if kind == FlagKind::Bool => None,
            _ => return Err(Error::at(location, ParseError::FlagWithoutValue { flag })),
        };
        if kind != FlagKind::Repeated && flags.iter().any(|f| f.name == name) {
            return Err(Error::at(location, ParseError::DuplicateFlag { flag }));
        }
        flags.push(Flag { name: flag, value, location });
    }

    let rest = line[pos..].trim_end().to_owned();
    let json = if spec.json { json_form(&rest).map_err(|e| Error::at(at(pos), e))? } else { None };
    let nested = if spec.keyword == "ONBUILD" && !rest.is_empty() {
        let first = rest.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        match first.as_str() {
            "ONBUILD" => return Err(Error::at(at(pos), ParseError::OnbuildChain)),
            "FROM" => return Err(Error::at(at(pos), ParseError::OnbuildTrigger("FROM"))),
            "MAINTAINER" => return Err(Error::at(at(pos), ParseError::OnbuildTrigger("MAINTAINER"))),
            _ => {}
        }
        // Like BuildKit, only the trigger's keyword is checked here; the rest
        // of it is, when a stage built on this image runs it.
        node_at(line, segments, pos)
            .ok()
            .map(|trigger| Box::new(Node { line: line.to_owned(), segments: segments.to_vec(), ..trigger }))
    } else {
        None
    };
    Ok(Node {
        keyword: spec.keyword,
        flags,
        json,
        nested,
        heredocs: Vec::new(),
        location: at(start),
        end_line: at(line.len()).line,
        text: line[start..].trim().to_owned(),
        rest,
        rest_offset: pos,
        line: String::new(),
        segments: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line per node: `line:col KEYWORD [--flag=v@l:c] rest-or-json`.
    fn render(text: &str) -> String {
        let parsed = parse(text).and_then(|p| Ok((p.escape, p.nodes.collect::<Result<Vec<_>, _>>()?)));
        let (escape, nodes) = match parsed {
            Ok(p) => p,
            Err(mut e) => {
                e.file = "Dockerfile".into();
                return e.to_string();
            }
        };
        let mut out = Vec::new();
        if escape != DEFAULT_ESCAPE {
            out.push(format!("escape {escape}"));
        }
        for n in nodes {
            let mut s = format!("{} {}", n.location, n.keyword);
            for f in &n.flags {
                s += &format!(" --{}={}@{}", f.name, f.value.as_deref().unwrap_or("<bare>"), f.location);
            }
            match &n.json {
                Some(a) => s += &format!(" json{a:?}"),
                None => s += &format!(" |{}|", n.rest),
            }
            out.push(s);
        }
        out.join("\n")
    }

    #[test]
    fn parses() {
        let cases: &[(&str, &str)] = &[
            ("FROM alpine", "1:1 FROM |alpine|"),
            ("from alpine AS b\r\nrun  make\r\n", "1:1 FROM |alpine AS b|\n2:1 RUN |make|"),
            ("\n\n  # c\n   RUN x  ", "4:4 RUN |x|"),
            ("RUN a \\\n  b", "1:1 RUN |a   b|"),
            ("RUN a \\  \n# comment\n\n  \n  b \\\n c", "1:1 RUN |a   b  c|"),
            ("RUN a \\", "1:1 RUN |a|"),
            ("# escape=`\nRUN a `\n b\nRUN c:\\", "escape `\n2:1 RUN |a  b|\n4:1 RUN |c:\\|"),
            ("# syntax=docker/dockerfile:1\n#escape = \\\nRUN a", "3:1 RUN |a|"),
            ("# foo=bar\n# escape=`\nRUN a", "3:1 RUN |a|"),
            ("\n# escape=`\nRUN a `", "3:1 RUN |a `|"),
            ("CMD [\"a\", \"b c\"]", "1:1 CMD json[\"a\", \"b c\"]"),
            ("ENTRYPOINT []", "1:1 ENTRYPOINT json[]"),
            ("RUN [ -f x ] && y", "1:1 RUN |[ -f x ] && y|"),
            ("RUN [ \"a\" = b ]", "1:1 RUN |[ \"a\" = b ]|"),
            ("ENV A=[\"x\"", "1:1 ENV |A=[\"x\"|"),
            (
                "COPY --from=b --chown=1:2 --chmod=755 a /b",
                "1:1 COPY --from=b@1:6 --chown=1:2@1:15 --chmod=755@1:27 |a /b|",
            ),
            ("COPY -- --from /x", "1:1 COPY |--from /x|"),
            ("COPY --from=b [\"a\",\"/b\"]", "1:1 COPY --from=b@1:6 json[\"a\", \"/b\"]"),
            ("RUN echo $((1<<2))", "1:1 RUN |echo $((1<<2))|"),
            ("\u{feff}FROM x", "1:1 FROM |x|"),
        ];
        for (input, want) in cases {
            assert_eq!(render(input), *want, "input: {input:?}");
        }
    }

    #[test]
    fn locations_follow_continuations() {
        let n = &parse("RUN a \\\n   bcd \\\n\n\tef").unwrap().nodes.next().unwrap().unwrap();
        assert_eq!(n.rest, "a    bcd \tef");
        let at = |s: &str| n.location_of(n.rest.find(s).unwrap()).to_string();
        assert_eq!(at("a"), "1:5");
        assert_eq!(at("bcd"), "2:4");
        assert_eq!(at("ef"), "4:2");
        assert_eq!(n.text, "RUN a    bcd \tef");
    }
}
