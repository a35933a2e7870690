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
/// `None` when the result would be longer than `limit` bytes: each piece is
/// checked before it is appended, as a replacement of a mebibyte for each of
/// a mebibyte of matches would otherwise allocate a tebibyte first.
pub(super) fn replace(
    value: &str,
    pattern: &str,
    replacement: &str,
    all: bool,
    limit: usize,
) -> Result<Option<String>, PatternError> {
    let re = regex(pattern, true, false)?;
    let mut out = String::new();
    let push = |out: &mut String, s: &str| {
        if out.len().saturating_add(s.len()) > limit {
            return false;
        }
        out.push_str(s);
        true
    };
    if !all {
        let Some(m) = re.find(value) else { return Ok(Some(value.to_owned()).filter(|v| v.len() <= limit)) };
        let fits = [&value[..m.start()], replacement, &value[m.end()..]].iter().all(|s| push(&mut out, s));
        return Ok(fits.then_some(out));
    }
    let pieces = replacement_pieces(replacement);
    let mut last = 0;
    for m in re.find_iter(value) {
        if !push(&mut out, &value[last..m.start()]) {
            return Ok(None);
        }
        // The pieces, with the match between each two.
        for (i, piece) in pieces.iter().enumerate() {
            if (i > 0 && !push(&mut out, m.as_str())) || !push(&mut out, piece) {
                return Ok(None);
            }
        }
        last = m.end();
    }
    Ok(push(&mut out, &value[last..]).then_some(out))
}

/// `replacement` as the regex crate expands it, cut where the match goes.
/// A pattern's regex has no groups, so `$0` and `${0}` are the whole match
/// and every other reference is empty; rather than re-implement the crate's
/// reference syntax, the crate expands the replacement once against a
/// one-character match of a character the replacement lacks, which then marks
/// the cuts. The pieces are no longer than the replacement, and each match
/// costs only appends that can be checked against the limit.
fn replacement_pieces(replacement: &str) -> Vec<String> {
    let marker = ('\u{e000}'..='\u{f8ff}')
        .chain('\u{f0000}'..='\u{ffffd}')
        .find(|c| !replacement.contains(*c))
        .expect("a replacement of bounded length lacks one of 130000 characters");
    let haystack = marker.to_string();
    let any = Regex::new("(?s).").expect("a valid regex");
    let caps = any.captures(&haystack).expect("one character matches '.'");
    let mut expanded = String::new();
    caps.expand(replacement, &mut expanded);
    expanded.split(marker).map(str::to_owned).collect()
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
    fn replacing_stops_at_the_limit_before_allocating() {
        let value = "x".repeat(1000);
        let replacement = "y".repeat(1000);
        // A million bytes wanted, a thousand allowed: refused, not built.
        assert_eq!(replace(&value, "?", &replacement, true, 1000).unwrap(), None);
        assert_eq!(replace(&value, "?", "$0$0", true, 1999).unwrap(), None);
        assert_eq!(replace(&value, "?", "$0$0", true, 2000).unwrap().map(|s| s.len()), Some(2000));
        assert_eq!(replace(&value, "x", &replacement, false, 1998).unwrap(), None);
        assert_eq!(replace(&value, "x", &replacement, false, 1999).unwrap().map(|s| s.len()), Some(1999));
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
            ("ab", "?", "<$0|${0}|$00|$1|$x|$>", true, "<a|a|a|||$><b|b|b|||$>"),
            ("ab", "", "$0.", true, ".a.b."),
        ] {
            let got = replace(value, pattern, replacement, all, usize::MAX).unwrap();
            assert_eq!(got.as_deref(), Some(want), "{value} / {pattern} / {replacement}");
        }
    }
}
