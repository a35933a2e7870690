//! Heredocs at lowering: what a RUN with heredocs runs, and the expansion of
//! COPY's unquoted heredoc bodies.
//!
//! RUN, as BuildKit does it: a command line that is one heredoc alone runs
//! its body, through the shell, or (with a `#!` first line) as a script file
//! the step sees at `/dev/pipes/NAME`, outside its root filesystem; any other
//! command line goes to the shell with the bodies put back after it, so the
//! shell reads them as its own heredocs.

use crate::instructions::CommandLine;
use crate::ops::InlineFile;
use crate::parser::{heredoc_marker, Heredoc};
use crate::shell::{Env, Lexer, ShellError};

/// Where a RUN heredoc script with a shebang is put.
const PIPES: &str = "/dev/pipes/";

/// The command line a RUN with heredocs runs (still to be wrapped in the
/// shell), and the files it needs.
pub(super) fn run_command(text: &str, heredocs: &[Heredoc]) -> (CommandLine, Vec<InlineFile>) {
    if let (true, Some(first)) = (is_alone(text), heredocs.first()) {
        let body = first.body();
        // BuildKit looks for the shebang before `<<-` strips tabs.
        if first.content.starts_with("#!") {
            let path = format!("{PIPES}{}", first.name);
            let file = InlineFile { name: path.clone(), content: body };
            return (CommandLine::Shell(path), vec![file]);
        }
        return (CommandLine::Shell(body), Vec::new());
    }
    let mut full = text.to_owned();
    for doc in heredocs {
        full.push('\n');
        full.push_str(&doc.content);
        full.push_str(&doc.name);
    }
    (CommandLine::Shell(full), Vec::new())
}

/// Whether a RUN's command line is one heredoc marker and nothing else.
pub(super) fn is_alone(text: &str) -> bool {
    heredoc_marker(text).is_some()
}

/// A body's first line, with `...` when more follow.
pub(super) fn summary(content: &str) -> String {
    let trimmed = content.trim();
    let mut lines = trimmed.lines();
    let first = lines.next().unwrap_or("");
    if lines.next().is_some() {
        format!("{first}...")
    } else {
        first.to_owned()
    }
}

/// Expand a heredoc body as an unquoted shell heredoc: `$NAME` and `${…}`
/// expand, a backslash escapes only `$`, `` ` ``, `\` and a newline, and
/// quotes are plain characters.
pub(super) fn expand(lexer: &Lexer, content: &str, env: Env<'_>) -> Result<String, ShellError> {
    let mut out = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(i) = rest.find(['\\', '$']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let mut chars = tail.chars();
        let c = chars.next().expect("found above");
        let next = chars.next();
        if c == '\\' {
            match next {
                Some('\n') => {}
                Some(n @ ('$' | '`' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            rest = &tail[1 + next.map_or(0, char::len_utf8)..];
            continue;
        }
        let len = match next {
            Some('{') => braced_len(tail),
            Some(n) if n.is_ascii_alphabetic() || n == '_' => {
                1 + tail[1..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len() - 1)
            }
            _ => 0,
        };
        if len == 0 {
            out.push('$');
            rest = &tail[1..];
        } else {
            out.push_str(&lexer.expand(&tail[..len], env)?);
            rest = &tail[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The length of `${…}` at the start of `text` (nested braces counted), or 0
/// when it never closes (then the `$` is kept as written).
fn braced_len(text: &str) -> usize {
    let mut depth = 0;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, content: &str, chomp: bool) -> Heredoc {
        Heredoc { name: name.into(), content: content.into(), expand: true, chomp }
    }

    #[test]
    fn run_commands() {
        let (line, files) = run_command("<<EOF", &[doc("EOF", "echo a\necho b\n", false)]);
        assert_eq!(line, CommandLine::Shell("echo a\necho b\n".into()));
        assert!(files.is_empty());

        let (line, files) = run_command("<<-'S'", &[doc("S", "#!/usr/bin/env python3\n\tprint(1)\n", true)]);
        assert_eq!(line, CommandLine::Shell("/dev/pipes/S".into()));
        let script = "#!/usr/bin/env python3\nprint(1)\n";
        assert_eq!(files, [InlineFile { name: "/dev/pipes/S".into(), content: script.into() }]);

        // A tab before the shebang: no script file, though `<<-` strips the tab.
        let (line, files) = run_command("<<-S", &[doc("S", "\t#!/bin/sh\n\techo\n", true)]);
        assert_eq!(line, CommandLine::Shell("#!/bin/sh\necho\n".into()));
        assert!(files.is_empty());

        let docs = [doc("A", "x\n", false), doc("B", "\ty\n", true)];
        let (line, files) = run_command("cat <<A > a && cat <<-B > b", &docs);
        assert_eq!(line, CommandLine::Shell("cat <<A > a && cat <<-B > b\nx\nA\n\ty\nB".into()));
        assert!(files.is_empty());
    }

    #[test]
    fn summaries() {
        assert_eq!(summary("\n  echo a\necho b\n"), "echo a...");
        assert_eq!(summary("echo a\n"), "echo a");
        assert_eq!(summary(""), "");
    }

    #[test]
    fn expansion() {
        let lexer = Lexer::new('\\');
        let env = |n: &str| match n {
            "A" => Some("1".to_owned()),
            "B" => Some("two words".to_owned()),
            _ => None,
        };
        let cases = [
            ("a=$A b=${B} c=${C:-$A}\n", "a=1 b=two words c=1\n"),
            ("'$A' \"$B\"", "'1' \"two words\""),
            ("\\$A \\\\ \\n \\`", "$A \\ \\n `"),
            ("line \\\ncontinued", "line continued"),
            ("cost: $5 and $ and ${open", "cost: $5 and $ and ${open"),
            ("$Aa $A_ ${A}a", "  1a"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(&lexer, input, &env).unwrap(), want, "{input:?}");
        }
    }
}
