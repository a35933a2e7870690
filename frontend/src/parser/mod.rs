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

mod json;
mod spec;

use std::collections::BTreeSet;

use crate::error::{Error, Location};
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
    /// Exec form with something other than strings in the array.
    #[error("a JSON array here must hold strings only")]
    NotStringArray,
    /// A `<<EOF` heredoc in RUN or COPY.
    #[error("heredocs are not supported yet")]
    Heredoc,
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
    /// Where the keyword starts.
    pub(crate) location: Location,
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
            break node(line, segments, self.escape);
        };
        self.any = true;
        self.done = node.is_err();
        Some(node)
    }
}

/// Parse a Dockerfile's directives; its instructions come from the returned
/// [`Nodes`] as they are read.
pub(crate) fn parse(text: &str) -> Result<Parsed<'_>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut nodes =
        Nodes { lines: text.split('\n'), number: 0, pending: None, escape: DEFAULT_ESCAPE, any: false, done: false };
    let mut seen = BTreeSet::new();
    while let Some(line) = nodes.next_line() {
        let Some((name, value, column)) = directive(line) else {
            nodes.pending = Some(line);
            break;
        };
        let location = Location { line: nodes.number, column };
        if !seen.insert(name.clone()) {
            return Err(Error::at(location, ParseError::DuplicateDirective(name)));
        }
        if name == "escape" {
            nodes.escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    let e = ParseError::InvalidEscape(value.to_owned());
                    return Err(Error::at(location, e));
                }
            };
        }
    }
    Ok(Parsed { escape: nodes.escape, nodes })
}

/// `# name=value` at the top of the file: the lowercased name, the value and
/// the column of the `#`. Only known directives count; any other line ends them.
fn directive(line: &str) -> Option<(String, &str, usize)> {
    let start = line.trim_start();
    let column = line.len() - start.len() + 1;
    let (name, value) = start.strip_prefix('#')?.split_once('=')?;
    let name = name.trim().to_ascii_lowercase();
    let value = value.trim();
    let known = ["escape", "syntax", "check"].contains(&name.as_str());
    (known && !value.is_empty()).then_some((name, value, column))
}

/// The line without a trailing escape character (and the blanks after it), and
/// whether there was one.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(content) => (content, true),
        None => (line, false),
    }
}

/// One logical line → a node.
fn node(line: String, segments: Vec<Segment>, escape: char) -> Result<Node, Error> {
    node_at(&line, &segments, 0, escape).map(|mut n| {
        n.line = line;
        n.segments = segments;
        n
    })
}

/// Parse one instruction line that is not part of a file: an ONBUILD trigger
/// being run, written at `at` (where the FROM that runs it is, say).
pub(crate) fn parse_line(text: &str, at: Location, escape: char) -> Result<Node, Error> {
    let start = text.trim_start();
    let segments = vec![Segment { offset: 0, line: at.line, column: at.column }];
    node(start.trim_end().to_owned(), segments, escape)
}

/// The instruction that starts at byte `start` of `line` (0, or after ONBUILD).
/// The node's `line` and `segments` are left empty for the caller to fill.
fn node_at(line: &str, segments: &[Segment], start: usize, escape: char) -> Result<Node, Error> {
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
    if json.is_none() && matches!(spec.keyword, "RUN" | "COPY" | "ADD") {
        if let Some(offset) = heredoc(&rest, escape) {
            return Err(Error::at(at(pos + offset), ParseError::Heredoc));
        }
    }
    let nested = if spec.keyword == "ONBUILD" && !rest.is_empty() {
        let trigger = node_at(line, segments, pos, escape)?;
        match trigger.keyword {
            "ONBUILD" => return Err(Error::at(at(pos), ParseError::OnbuildChain)),
            k @ ("FROM" | "MAINTAINER") => return Err(Error::at(at(pos), ParseError::OnbuildTrigger(k))),
            _ => Some(Box::new(Node { line: line.to_owned(), segments: segments.to_vec(), ..trigger })),
        }
    } else {
        None
    };
    Ok(Node {
        keyword: spec.keyword,
        flags,
        json,
        nested,
        location: at(start),
        text: line[start..].trim().to_owned(),
        rest,
        rest_offset: pos,
        line: String::new(),
        segments: Vec::new(),
    })
}

/// The offset of a heredoc marker (`<<EOF`, `<<-"EOF"`) among the words of `rest`.
fn heredoc(rest: &str, escape: char) -> Option<usize> {
    let mut offset = 0;
    for word in rest.split_inclusive(char::is_whitespace) {
        let w = word.trim_end();
        let start = offset;
        offset += word.len();
        let Some(marker) = w.trim_start_matches(|c: char| c.is_ascii_digit()).strip_prefix("<<") else {
            continue;
        };
        let marker = marker.strip_prefix('-').unwrap_or(marker);
        let name = marker.trim_matches(|c| c == '"' || c == '\'');
        let name = name.strip_prefix(escape).unwrap_or(name);
        let mut chars = name.chars();
        if chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Some(start);
        }
    }
    None
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
