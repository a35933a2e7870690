//! One `.dockerignore` pattern, as moby/patternmatcher compiles and matches it.
//!
//! Docker checks a pattern's syntax with Go's `filepath.Match` ([`check`]),
//! then matches with one of four strategies chosen while translating it to a
//! Go regular expression: an exact string, a prefix (`abc/**`), a suffix
//! (`**/abc`, and `**abc`, which matches `xabc` too), or the regex itself. The
//! strategies are not equivalent to the regex, so they are kept as Docker has
//! them. The regex text is Go's RE2 syntax; [`super::goregex`] reads it.

use std::iter::Peekable;
use std::str::CharIndices;

use regex::Regex;

use super::goregex;

/// How one pattern matches a slash-separated path relative to the context root.
#[derive(Debug, Clone)]
pub(super) enum Matcher {
    /// The path is the pattern.
    Exact(String),
    /// The path starts with this (the pattern less its trailing `**`).
    Prefix(String),
    /// The path ends with this (the pattern less its leading `**`), or, when
    /// it starts with `/`, is it without that `/`.
    Suffix(String),
    /// The path matches the regex.
    Regex(Regex),
}

impl Matcher {
    /// Compile a pattern that passed [`check`] (cleaned, without its `!`).
    pub(super) fn compile(pattern: &str) -> Result<Matcher, String> {
        let mut kind = Kind::Exact;
        let mut re = String::from("^");
        let mut chars = pattern.chars().peekable();
        let mut first = true;
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    // `**/` is `**`: the slash is part of "any folders".
                    if chars.peek() == Some(&'/') {
                        chars.next();
                    }
                    if chars.peek().is_none() {
                        if kind == Kind::Exact {
                            kind = Kind::Prefix;
                        } else {
                            re.push_str(".*");
                            kind = Kind::Regex;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        kind = Kind::Regex;
                    }
                    if first {
                        kind = Kind::Suffix;
                    }
                }
                '*' => {
                    re.push_str("[^/]*");
                    kind = Kind::Regex;
                }
                '?' => {
                    re.push_str("[^/]");
                    kind = Kind::Regex;
                }
                // Meaningless to filepath.Match, meaningful to a regex.
                '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                    re.push('\\');
                    re.push(c);
                }
                '\\' => match chars.next() {
                    Some(next) => {
                        re.push('\\');
                        re.push(next);
                        kind = Kind::Regex;
                    }
                    None => re.push('\\'),
                },
                '[' | ']' => {
                    re.push(c);
                    kind = Kind::Regex;
                }
                _ => re.push(c),
            }
            first = false;
        }
        Ok(match kind {
            Kind::Exact => Matcher::Exact(pattern.to_owned()),
            Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_owned()),
            Kind::Suffix => Matcher::Suffix(pattern[2..].to_owned()),
            Kind::Regex => {
                re.push('$');
                Matcher::Regex(goregex::compile(&re)?)
            }
        })
    }

    /// Whether `path` (slash-separated, relative, clean) matches.
    pub(super) fn is_match(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(p) => path == p,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Suffix(s) => path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|s| path == s),
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Go's `filepath.Match` syntax check, which Docker runs on every pattern:
/// classes must close, hold at least one item, and have no bare `-` or `]`
/// where an item belongs; a `\` must escape something. The error is the
/// byte offset of the culprit in `pattern` and what to write instead.
pub(super) fn check(pattern: &str) -> Result<(), (usize, &'static str)> {
    let mut chars = pattern.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '\\' if chars.next().is_none() => return Err((at, TRAILING_BACKSLASH)),
            '[' => {
                let unclosed = move |e: Option<(usize, &'static str)>| e.unwrap_or((at, UNCLOSED));
                if chars.peek().map(|p| p.1) == Some('^') {
                    chars.next();
                }
                let mut items = 0;
                loop {
                    if chars.peek().map(|p| p.1) == Some(']') && items > 0 {
                        chars.next();
                        break;
                    }
                    class_item(&mut chars).map_err(unclosed)?;
                    if chars.peek().map(|p| p.1) == Some('-') {
                        chars.next();
                        class_item(&mut chars).map_err(unclosed)?;
                    }
                    items += 1;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// One character of a class (Go's `getEsc`): never a bare `-` or `]`, and
/// never the pattern's last character, since the class must still close
/// (`Err(None)`: the class is not closed).
fn class_item(chars: &mut Peekable<CharIndices>) -> Result<(), Option<(usize, &'static str)>> {
    match chars.next() {
        None => return Err(None),
        Some((at, '-')) => return Err(Some((at, BARE_DASH))),
        Some((at, ']')) => return Err(Some((at, BARE_BRACKET))),
        Some((_, '\\')) => {
            chars.next().ok_or(None)?;
        }
        Some(_) => {}
    }
    if chars.peek().is_none() {
        return Err(None);
    }
    Ok(())
}

const TRAILING_BACKSLASH: &str = "it ends with a lone `\\`, which escapes nothing: write `\\\\` to match a backslash";
const BARE_DASH: &str = "a `-` in a `[...]` class must sit between two characters (`a-z`): write `\\-` to match a dash";
const BARE_BRACKET: &str =
    "a `[...]` class is empty, or a `]` stands where a character belongs: write `\\]` to match a bracket";
const UNCLOSED: &str = "a `[...]` class is not closed: add the `]`, or write `\\[` to match a bracket";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_as_filepath_match() {
        for ok in ["a", "*", "[a-z]", "[^a]", "[!a]", r"[\]]", r"[\-]", "[a-b]c", "]", "a]b", r"\*", "[*]", "[[]"] {
            assert!(check(ok).is_ok(), "{ok} should be valid: {:?}", check(ok));
        }
        for bad in ["[", "[a", "[]", "[^]", "[a-b-c]", "[-a]", "[a-]", r"a\", r"[\", r"[a\]", "[a-", "x[^"] {
            assert!(check(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn kinds_as_docker_picks_them() {
        let kind = |p: &str| match Matcher::compile(p).unwrap() {
            Matcher::Exact(_) => "exact",
            Matcher::Prefix(_) => "prefix",
            Matcher::Suffix(_) => "suffix",
            Matcher::Regex(_) => "regex",
        };
        assert_eq!(kind("a.b"), "exact");
        assert_eq!(kind("a^b"), "exact");
        assert_eq!(kind("abc/**"), "prefix");
        assert_eq!(kind("**"), "suffix");
        assert_eq!(kind("**/a"), "suffix");
        assert_eq!(kind("**file"), "suffix");
        assert_eq!(kind("**/*.go"), "regex");
        assert_eq!(kind("a/**/b"), "regex");
        assert_eq!(kind(r"\a"), "regex");
    }
}
