//! The shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}`, as BuildKit reads
//! them: `*` any run of characters, `?` one character, `\` makes the next
//! `*`, `?` or `\` literal (and is dropped before `}` and `/`, which it only
//! kept from ending the substitution). No bracket expressions: `[` is literal.
//!
//! A pattern becomes a regular expression, so which match wins is the regex
//! engine's leftmost-first rule, the same as Go's that BuildKit uses: the
//! results agree on the cases where "shortest" and "longest" are ambiguous.

use regex::Regex;

/// A pattern that cannot be used: the reason, for [`super::ShellError::Pattern`].
#[derive(Debug)]
pub(super) struct PatternError(pub(super) String);

/// `pattern` as a regular expression; `greedy` makes `*` match as much as it
/// can, `anchored` ties the match to the start of the value.
fn regex(pattern: &str, greedy: bool, anchored: bool) -> Result<Regex, PatternError> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => match chars.peek() {
                Some('}' | '/') => {}
                Some(&n @ ('*' | '?' | '\\')) => {
                    chars.next();
                    out.push_str(&regex::escape(n.encode_utf8(&mut [0; 4])));
                }
                Some(n) => {
                    return Err(PatternError(format!(
                        "invalid escape '\\{n}': in a pattern only \\*, \\?, \\\\, \\/ and \\}} are escapes"
                    )))
                }
                None => return Err(PatternError("the pattern ends with an escape '\\'".to_owned())),
            },
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    Regex::new(&out).map_err(|e| PatternError(e.to_string()))
}

/// `${v#p}` (shortest) and `${v##p}` (`greedy`, longest): `value` without the
/// prefix the pattern matches, or unchanged.
pub(super) fn trim_prefix(value: &str, pattern: &str, greedy: bool) -> Result<String, PatternError> {
    let re = regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_owned(),
        None => value.to_owned(),
    })
}

/// `${v%p}` and `${v%%p}`: a regex cannot look for the shortest match that
/// ends the string, so both value and pattern are reversed and the prefix
/// trimmed instead.
pub(super) fn trim_suffix(value: &str, pattern: &str, greedy: bool) -> Result<String, PatternError> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reversed, &reverse_pattern(pattern), greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// `pattern` back to front, each escape still before the character it escapes.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let len = if chars[i] == '\\' && i + 1 < chars.len() { 2 } else { 1 };
        units.push(&chars[i..i + len]);
        i += len;
    }
    units.iter().rev().flat_map(|u| u.iter()).collect()
}

/// `${v/p/r}` (the first, longest match) and `${v//p/r}` (`all` of them).
/// Replacing all expands `$name` in `replacement` as a regex replacement, as
/// BuildKit's does; the first match only is replaced by the text as it is.
pub(super) fn replace(value: &str, pattern: &str, replacement: &str, all: bool) -> Result<String, PatternError> {
    let re = regex(pattern, true, false)?;
    if all {
        return Ok(re.replace_all(value, replacement).into_owned());
    }
    Ok(match re.find(value) {
        Some(m) => format!("{}{replacement}{}", &value[..m.start()], &value[m.end()..]),
        None => value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_to_regex() {
        for (pattern, want) in [
            ("*", "^.*"),
            ("?", "^."),
            ("\\*", "^\\*"),
            ("a\\}b\\/c", "^a\\}b/c"),
            ("(()[]{\\}^$.\\*\\?|\\\\", "^\\(\\(\\)\\[\\]\\{\\}\\^\\$\\.\\*\\?\\|\\\\"),
        ] {
            assert_eq!(regex(pattern, true, true).unwrap().as_str(), want, "pattern {pattern}");
        }
        for bad in ["\\", "\\x", "\\\\\\"] {
            assert!(regex(bad, true, true).is_err(), "pattern {bad}");
        }
    }

    #[test]
    fn reverses_patterns() {
        for (pattern, want) in [
            ("a\\*c", "c\\*a"),
            ("\\\\\\ab", "b\\a\\\\"),
            ("ab\\", "\\ba"),
            ("👽\\🚀🖖", "🖖\\🚀👽"),
            ("\\\\b", "b\\\\"),
        ] {
            assert_eq!(reverse_pattern(pattern), want, "pattern {pattern}");
        }
    }

    #[test]
    fn replaces() {
        for (value, pattern, replacement, all, want) in [
            ("xxyy", "", "ww", false, "wwxxyy"),
            ("xxyy", "", "ww", true, "wwxwwxwwywwyww"),
            ("ab", "*", "x", true, "x"),
            ("aXbXc", "X", "-", true, "a-b-c"),
            ("aXbXc", "X*", "-", false, "a-"),
            ("line\nnext", "*", "-", false, "-\nnext"),
            ("/tmp/foo", "/", "$$", true, "$tmp$foo"),
        ] {
            assert_eq!(replace(value, pattern, replacement, all).unwrap(), want, "{value} / {pattern} / {replacement}");
        }
    }
}
