//! Dockerfile text → [`Node`]s, one per instruction, with line and column.
//!
//! Line-oriented like BuildKit's parser:
//! * parser directives (`# escape=…`, `# syntax=…`, `# check=…`) are read from the
//!   top of the file until the first line that is not one (`directives`);
//! * a line ending with the escape character (default `\`, optionally followed by
//!   blanks, but not escaped itself) continues on the next line; blank lines and
//!   comment lines inside a continuation are skipped;
//! * the first word is the instruction (case-insensitive), then come `--flag[=value]`
//!   words (which ones each instruction takes: `spec`), then the rest, kept as raw
//!   text (expansion happens later, and only for the instructions that expand)
//!   or, for the instructions that have one, parsed as a JSON array (`json`);
//! * ONBUILD's rest is parsed again as its trigger instruction;
//! * RUN, COPY and ADD in shell form may name heredocs, whose bodies are the
//!   lines after the instruction (`heredoc`).

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
    /// A keyword alone on its line, glued to the next line's first word by
    /// the continuation (`RUN\` then `echo hi` reads `RUNecho hi`).
    #[error(
        "unknown instruction \"{keyword}{next}\": the continuation after {keyword} joins it to \"{next}\" \
         with no blank between them; put a space before the {escape} (or indent the next line)"
    )]
    JoinedKeyword {
        /// The instruction on the first line, as written.
        keyword: String,
        /// The next line's first word.
        next: String,
        /// The file's escape character.
        escape: char,
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
    #[error("flag --{flag} is given twice: keep one")]
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
    /// An ONBUILD trigger that holds more than one instruction.
    #[error("an ONBUILD trigger must be a single instruction")]
    TriggerNotOne,
    /// A parser directive (named) given twice.
    #[error("the {0} directive is given twice: keep one")]
    DuplicateDirective(String),
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean \"{s}\"?)"),
        None => {
            ": a line must start with an instruction such as FROM, RUN, COPY or ENV, or with # for a comment".to_owned()
        }
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

impl Segment {
    fn location(&self) -> Location {
        Location { line: self.line, column: self.column }
    }
}

/// The error for a logical line whose first physical line is a keyword
/// alone, glued by the continuation to the next line's first word: BuildKit
/// reads `RUNecho` too, and calls it an unknown instruction.
fn joined_keyword(line: &str, segments: &[Segment], escape: char) -> Option<ParseError> {
    let joint = segments.get(1)?.offset;
    let keyword = &line[..joint];
    let glued = !keyword.is_empty() && !keyword.contains(char::is_whitespace);
    let next_word = line[joint..].split(char::is_whitespace).next().unwrap_or("");
    if !glued || next_word.is_empty() || spec::find(&keyword.to_ascii_uppercase()).is_none() {
        return None;
    }
    Some(ParseError::JoinedKeyword { keyword: keyword.to_owned(), next: next_word.to_owned(), escape })
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
    /// The first blank line inside its continuation, which BuildKit
    /// skips with a warning (and means to refuse one day).
    pub(crate) empty_continuation: Option<usize>,
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
        self.next_raw_line().map(|line| line.strip_suffix('\r').unwrap_or(line))
    }

    /// The next line as written, `\r` kept: heredoc bodies keep their line ends.
    fn next_raw_line(&mut self) -> Option<&'t str> {
        if let Some(line) = self.pending.take() {
            return Some(line);
        }
        let line = self.lines.next()?;
        self.number += 1;
        Some(line)
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
            let mut empty_continuation = None;
            while continued {
                let Some(raw) = self.next_line() else { break };
                let start = raw.trim_start();
                if start.is_empty() {
                    empty_continuation.get_or_insert(self.number);
                    continue;
                }
                if start.starts_with('#') {
                    continue;
                }
                let (content, more) = strip_continuation(raw, self.escape);
                segments.push(Segment { offset: line.len(), line: self.number, column: 1 });
                line.push_str(content);
                continued = more;
            }
            if let Some(e) = joined_keyword(&line, &segments, self.escape) {
                break Err(Error::at(segments[0].location(), e));
            }
            break node(line, segments).and_then(|n| self.heredoc_bodies(Node { empty_continuation, ..n }));
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
                    let Some(line) = self.next_raw_line() else {
                        let e = ParseError::UnterminatedHeredoc(doc.name.clone());
                        return Err(Error::at(start, e));
                    };
                    let candidate = line.trim_end_matches('\r');
                    let candidate = if doc.chomp { candidate.trim_start_matches('\t') } else { candidate };
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
    // A final line end ends the last line; it does not start an empty one.
    let text = text.strip_suffix('\n').unwrap_or(text);
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

/// The flag word at the start of `text`, and its length as written. As in
/// BuildKit, quotes group (`--chown="a b"` is one word) and are removed, and
/// a backslash takes the next character literally, whatever the escape
/// character: `--from="build"` names the stage build.
fn flag_word(text: &str) -> (String, usize) {
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match quote {
            None if c.is_whitespace() => return (word, i),
            None if c == '"' || c == '\'' => quote = Some(c),
            Some(q) if c == q => quote = None,
            _ if c == '\\' => word.extend(chars.next().map(|(_, c)| c)),
            _ => word.push(c),
        }
    }
    (word, text.len())
}

/// The instruction an unknown word starts with when a blank is missing
/// after it (`CMD["sh"]`, `RUN--mount=…`), for "did you mean".
fn glued_keyword(upper: &str) -> Option<&'static str> {
    let spec = spec::SPECS.iter().filter(|s| upper.starts_with(s.keyword)).max_by_key(|s| s.keyword.len())?;
    let next = upper[spec.keyword.len()..].chars().next()?;
    matches!(next, '[' | '-' | '"' | '\'' | '$' | '/' | '.').then_some(spec.keyword)
}

/// BuildKit's blanks between words (`[\t\v\f\r ]`): ASCII only, and no
/// newline (a logical line has none).
pub(crate) fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c' | '\r')
}

/// The words of `text` split at blanks only, quotes or not, each with its
/// byte offset: how BuildKit's parser splits FROM, EXPOSE, COPY, ADD and
/// VOLUME (`COPY "a b" /c` is the two words `"a` and `b"` there).
pub(crate) fn fields(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (is_blank(c), start) {
            (true, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
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

/// Parse one instruction that is not part of a file: an ONBUILD trigger
/// being run (its heredoc bodies follow it on the next lines, as BuildKit
/// stores them). Every place in it, and in its errors, is `at` (the FROM
/// that runs it, say).
pub(crate) fn parse_line(text: &str, at: Location) -> Result<Node, Error> {
    let relocate = |mut e: Error| {
        e.location = Some(at);
        e
    };
    let mut nodes = parse(text).map_err(relocate)?.nodes;
    let mut node = nodes.next().unwrap_or_else(|| Err(Error::whole(ParseError::Empty))).map_err(relocate)?;
    if nodes.next().is_some() {
        return Err(Error::at(at, ParseError::TriggerNotOne));
    }
    let pin = |n: &mut Node| {
        n.location = at;
        n.end_line = at.line;
        n.segments.iter_mut().for_each(|s| (s.line, s.column) = (at.line, at.column));
        n.flags.iter_mut().for_each(|f| f.location = at);
    };
    if let Some(nested) = node.nested.as_deref_mut() {
        pin(nested);
    }
    pin(&mut node);
    Ok(node)
}

/// The instruction that starts at byte `start` of `line` (0, or after ONBUILD).
/// The node's `line` and `segments` are left empty for the caller to fill.
fn node_at(line: &str, segments: &[Segment], start: usize) -> Result<Node, Error> {
    let at = |offset: usize| locate(line, segments, offset);
    // Only ASCII blanks end the keyword, as in BuildKit: `RUN\u{a0}x` is one word.
    let word_end = line[start..].find(is_blank).map_or(line.len(), |e| start + e);
    let written = &line[start..word_end];
    let keyword = written.to_ascii_uppercase();
    let Some(spec) = spec::find(&keyword) else {
        let suggestion = suggest(&keyword).or_else(|| glued_keyword(&keyword));
        let e = ParseError::UnknownInstruction { suggestion, keyword: written.to_owned() };
        return Err(Error::at(at(start), e));
    };

    // Flags: `--name[=value]` words up to the first other word (or a bare `--`).
    // ONBUILD takes none: `ONBUILD --x RUN y` is refused, as in BuildKit.
    let skip_blanks = |from: usize| from + (line[from..].len() - line[from..].trim_start().len());
    let mut pos = skip_blanks(word_end);
    let mut flags: Vec<Flag> = Vec::new();
    while line[pos..].starts_with("--") {
        let (word, len) = flag_word(&line[pos..]);
        let location = at(pos);
        pos = skip_blanks(pos + len);
        let Some(word) = word.strip_prefix("--").filter(|w| !w.is_empty()) else {
            break;
        };
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
            // `--chown=` is accepted (BuildKit reads it as not given); `--chown` is not.
            Some(v) => Some(v.to_owned()),
            None if kind == FlagKind::Bool => None,
            None => return Err(Error::at(location, ParseError::FlagWithoutValue { flag })),
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
        empty_continuation: None,
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
            ("ENV C trailing\\\\\nRUN x", "1:1 ENV |C trailing\\\\|\n2:1 RUN |x|"),
            ("RUN a \\\n\\\n b", "1:1 RUN |a  b|"),
            ("COPY --link --parents=false a b", "1:1 COPY --link=<bare>@1:6 --parents=false@1:13 |a b|"),
            // Quotes in a flag group and go; a backslash escapes, as in BuildKit.
            ("COPY --chown=\"a b\" --from='x' c d", "1:1 COPY --chown=a b@1:6 --from=x@1:20 |c d|"),
            ("COPY --chown=a\\ b\\\\c --chmod=\"7\"55 c d", "1:1 COPY --chown=a b\\c@1:6 --chmod=755@1:22 |c d|"),
            ("COPY --chown=\"a b c d", "1:1 COPY --chown=a b c d@1:6 ||"),
            ("ONBUILD COPY --from=a b c", "1:1 ONBUILD |COPY --from=a b c|"),
            ("RUN --mount=a --mount=b x", "1:1 RUN --mount=a@1:5 --mount=b@1:15 |x|"),
            ("CMD [\"a\"] # c", "1:1 CMD |[\"a\"] # c|"),
            // A keyword alone on its line, and flags or words after a tab.
            ("RUN \\\n  echo hi", "1:1 RUN |echo hi|"),
            ("RUN\\\n  echo hi", "1:1 RUN |echo hi|"),
            ("COPY \\\n\t--from=a \\\n\tx y", "1:1 COPY --from=a@2:2 |x y|"),
            ("COPY\t--link\tx\ty", "1:1 COPY --link=<bare>@1:6 |x\ty|"),
            ("RUN\\\necho hi", "Dockerfile:1:1: unknown instruction \"RUNecho\": the continuation after RUN joins it to \"echo\" with no blank between them; put a space before the \\ (or indent the next line)"),
            ("# escape=`\nFROM x\ncopy`\na b", "Dockerfile:3:1: unknown instruction \"copya\": the continuation after copy joins it to \"a\" with no blank between them; put a space before the ` (or indent the next line)"),
            ("CMD[\"sh\"]", "Dockerfile:1:1: unknown instruction \"CMD[\"sh\"]\" (did you mean \"CMD\"?)"),
            ("copy--link a b", "Dockerfile:1:1: unknown instruction \"copy--link\" (did you mean \"COPY\"?)"),
            ("RUN\u{a0}x", "Dockerfile:1:1: unknown instruction \"RUN\u{a0}x\" (did you mean \"RUN\"?)"),
            ("RUNNecho", "Dockerfile:1:1: unknown instruction \"RUNNecho\": a line must start with an instruction such as FROM, RUN, COPY or ENV, or with # for a comment"),
            ("RUNN\\\necho", "Dockerfile:1:1: unknown instruction \"RUNNecho\": a line must start with an instruction such as FROM, RUN, COPY or ENV, or with # for a comment"),
            // Directives end at the first line that is not one: a blank line or a comment.
            ("# escape=`\n\n# escape=\\\nRUN a `\n b", "escape `\n4:1 RUN |a  b|"),
            ("# a comment\n# escape=`\nRUN a \\\n b", "3:1 RUN |a  b|"),
            ("onbuild  run x", "1:1 ONBUILD |run x|"),
        ];
        for (input, want) in cases {
            assert_eq!(render(input), *want, "input: {input:?}");
        }
    }

    #[test]
    fn empty_continuation_lines() {
        let first_empty = |text: &str| -> Vec<Option<usize>> {
            parse(text).unwrap().nodes.map(|n| n.unwrap().empty_continuation).collect()
        };
        assert_eq!(first_empty("RUN a \\\n\n \t\n b\nRUN c"), [Some(2), None]);
        // Comment lines are not empty; nor is the end of a file that ends a line.
        assert_eq!(first_empty("RUN a \\\n# c\n b"), [None]);
        assert_eq!(first_empty("RUN a \\\n"), [None]);
        assert_eq!(first_empty("RUN a \\\r\n\r\n b\r\n"), [Some(2)]);
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

    #[test]
    fn flag_errors() {
        for (text, want) in [
            ("COPY --link --link a b", "Dockerfile:1:13: flag --link is given twice: keep one"),
            ("COPY --from a b", "Dockerfile:1:6: flag --from needs a value: --from=<value>"),
            ("RUN --mount x", "Dockerfile:1:5: flag --mount needs a value: --mount=<value>"),
            ("ONBUILD ONBUILD RUN x", "Dockerfile:1:9: chaining ONBUILD via ONBUILD ONBUILD is not allowed"),
            ("ONBUILD maintainer x", "Dockerfile:1:9: MAINTAINER is not allowed as an ONBUILD trigger"),
            ("ONBUILD --x RUN y", "Dockerfile:1:9: ONBUILD does not take --x (it takes no flags)"),
            ("CMD [1]", "Dockerfile:1:5: invalid JSON array [1]: it must hold strings only, each in double quotes"),
        ] {
            assert_eq!(render(&format!("{text}\n")), want, "{text}");
        }
    }

    #[test]
    fn every_instruction_names_an_unknown_flag() {
        for spec in spec::SPECS {
            let keyword = spec.keyword;
            let got = render(&format!("{keyword} --bogus=1 x"));
            let column = keyword.len() + 2;
            let want = format!("Dockerfile:1:{column}: {keyword} does not take --bogus (");
            assert!(got.starts_with(&want), "{got}");
            let takes = spec.flags.iter().map(|(f, _)| format!("--{f}")).collect::<Vec<_>>().join(", ");
            assert!(
                got.ends_with(&format!(
                    "{})",
                    if takes.is_empty() { "it takes no flags".into() } else { format!("it takes {takes}") }
                )),
                "{got}"
            );
        }
    }

    #[test]
    fn heredoc_bodies() {
        let text = "RUN <<A <<-'B'\r\none\r\nA\r\n\ttwo\r\n\tB\r\nRUN next\nONBUILD COPY <<C /c\nc\nC\n";
        let nodes: Vec<Node> = parse(text).unwrap().nodes.collect::<Result<_, _>>().unwrap();
        let docs: Vec<_> = nodes[0].heredocs.iter().map(|h| (h.name.as_str(), h.content.as_str(), h.expand)).collect();
        assert_eq!(docs, [("A", "one\r\n", true), ("B", "\ttwo\r\n", false)]);
        assert_eq!((nodes[0].location.line, nodes[0].end_line), (1, 5));
        assert_eq!((nodes[1].rest.as_str(), nodes[1].location.line), ("next", 6));
        let nested = nodes[2].nested.as_ref().unwrap();
        assert_eq!((nested.keyword, nested.heredocs[0].content.as_str()), ("COPY", "c\n"));
        assert_eq!(nodes[2].end_line, 9);
    }
}
