//! COPY's source wildcards, with the semantics of Go's `filepath.Match`, which
//! BuildKit matches them with: `*` and `?` never match a `/`, classes are
//! `[abc]`, `[a-z]`, `[^a-z]`, `\` escapes the next character. A malformed
//! pattern matches nothing, as BuildKit ignores Go's `ErrBadPattern`.
//!
//! Plus `**`, as issue 8 asks and as .dockerignore (moby's patternmatcher)
//! reads it: it matches across `/`, and `**/` matches any number of folders,
//! none included, so `a/**/b` matches `a/b` and `a/x/y/b`.

/// `source` cut before its first unescaped wildcard, as BuildKit does: the
/// folder to search (everything before the component holding the wildcard),
/// and the pattern matched against paths relative to it. No wildcard: the
/// source whole, and `None`.
pub(super) fn split(source: &str) -> (&str, Option<&str>) {
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => break,
            _ => {}
        }
        i += 1;
    }
    if i >= bytes.len() {
        return (source, None);
    }
    match source[..i].rfind('/') {
        Some(slash) => (&source[..slash], Some(&source[slash + 1..])),
        None => ("", Some(source)),
    }
}

/// Whether `name` matches `pattern` whole.
///
/// The pattern comes from a Dockerfile, which may be hostile and up to 64 KiB
/// a line: so it is matched as an automaton, every position of the pattern at
/// once, in time proportional to the pattern's length times the name's and
/// without recursion, rather than by backtracking, which is exponential on
/// `**a**a**a…b` and one stack frame per pattern character.
pub(super) fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    if !well_formed(&pattern) {
        return false;
    }
    let tokens = tokens(&pattern);
    let end = tokens.len();
    // `states[k]`: the pattern up to token `k` matches the name read so far.
    let mut states = vec![false; end + 1];
    states[0] = true;
    close(&tokens, &mut states);
    let mut next = vec![false; end + 1];
    for &n in &name.chars().collect::<Vec<char>>() {
        next.iter_mut().for_each(|s| *s = false);
        for (k, token) in tokens.iter().enumerate() {
            if !states[k] {
                continue;
            }
            match token {
                Token::Star { across, .. } if *across || n != '/' => next[k] = true,
                Token::Star { .. } => {}
                Token::Any => next[k + 1] |= n != '/',
                Token::Class(negated, ranges) => {
                    next[k + 1] |= ranges.iter().any(|&(lo, hi)| lo <= n && n <= hi) != *negated
                }
                Token::Char(c) => next[k + 1] |= n == *c,
            }
        }
        close(&tokens, &mut next);
        std::mem::swap(&mut states, &mut next);
        if !states.contains(&true) {
            return false;
        }
    }
    states[end]
}

fn well_formed(mut p: &[char]) -> bool {
    while let Some(&c) = p.first() {
        p = match c {
            '\\' if p.len() < 2 => return false,
            '\\' => &p[2..],
            '[' => match class(&p[1..]) {
                Some((_, rest)) => rest,
                None => return false,
            },
            _ => &p[1..],
        };
    }
    true
}

/// One step of a pattern.
enum Token {
    /// `*` (not `across` a `/`) or `**` (`across`); `folders`: a `**/`,
    /// which may also stand for no folder at all, skipping its `/`.
    Star {
        across: bool,
        folders: bool,
    },
    /// `?`: any one character but `/`.
    Any,
    /// `[…]`: whether negated, and its ranges.
    Class(bool, Vec<(char, char)>),
    Char(char),
}

/// A well-formed pattern's steps.
fn tokens(mut p: &[char]) -> Vec<Token> {
    let mut out = Vec::new();
    while let Some(&c) = p.first() {
        match c {
            '*' => {
                let stars = p.iter().take_while(|&&c| c == '*').count();
                p = &p[stars..];
                let across = stars > 1;
                out.push(Token::Star { across, folders: across && p.first() == Some(&'/') });
                continue;
            }
            '?' => out.push(Token::Any),
            '[' => {
                let Some(((negated, ranges), rest)) = class(&p[1..]) else { unreachable!("checked well formed") };
                out.push(Token::Class(negated, ranges));
                p = rest;
                continue;
            }
            '\\' => {
                out.push(Token::Char(p[1]));
                p = &p[2..];
                continue;
            }
            c => out.push(Token::Char(c)),
        }
        p = &p[1..];
    }
    out
}

/// Add to `states` what they reach without reading a character: past a star
/// (matching nothing), and past a `**/` whole. These only go forward, so one
/// pass in order is enough.
fn close(tokens: &[Token], states: &mut [bool]) {
    for (k, token) in tokens.iter().enumerate() {
        if let (true, Token::Star { folders, .. }) = (states[k], token) {
            states[k + 1] = true;
            if *folders {
                states[k + 2] = true;
            }
        }
    }
}

type Class = (bool, Vec<(char, char)>);

/// A class after its `[`: whether it is negated, its ranges, and the pattern
/// after its `]`; `None` when malformed (Go's rules: not empty, a `-` or `]`
/// must be escaped where it is not the class's syntax).
fn class(mut p: &[char]) -> Option<(Class, &[char])> {
    let negated = p.first() == Some(&'^');
    if negated {
        p = &p[1..];
    }
    let mut ranges = Vec::new();
    loop {
        if p.first() == Some(&']') && !ranges.is_empty() {
            return Some(((negated, ranges), &p[1..]));
        }
        let (lo, rest) = escaped(p)?;
        p = rest;
        let mut hi = lo;
        if p.first() == Some(&'-') {
            (hi, p) = escaped(&p[1..])?;
            if hi < lo {
                return None;
            }
        }
        ranges.push((lo, hi));
    }
}

fn escaped(p: &[char]) -> Option<(char, &[char])> {
    match p {
        [] | ['-' | ']', ..] | ['\\'] => None,
        ['\\', c, rest @ ..] => Some((*c, rest)),
        [c, rest @ ..] => Some((*c, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_as_go_filepath_match() {
        // Cases from Go's own tests of filepath.Match, and BuildKit's use.
        for (pattern, name, want) in [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("*x", "xxx", true),
            ("a?", "a/", false),
            ("**.txt", "a.txt", true),
            // `**`: across folders, `**/` for none or any.
            ("**.txt", "d/a.txt", true),
            ("**", "a/b/c", true),
            ("**/*.txt", "a.txt", true),
            ("**/*.txt", "d/e/a.txt", true),
            ("**/*.txt", "d/e/a.md", false),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**/b", "a/x/y/c", false),
            ("a/**", "a/x/y", true),
            ("a/**", "b/x", false),
            ("a**b", "ax/yb", true),
            ("a\\**", "a*b/c", false),
            ("**/[", "a", false),
            ("[!a]", "b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "z", false),
            // Malformed: matches nothing.
            ("[]a]", "]", false),
            ("[-]", "-", false),
            ("[x-]", "x", false),
            ("[a-b-c]", "a", false),
            ("[", "a", false),
            ("[^", "a", false),
            ("*x\\", "xxx", false),
            ("a[", "x", false),
            ("[z-a]", "b", false),
        ] {
            assert_eq!(matches(pattern, name), want, "{pattern:?} against {name:?}");
        }
    }

    #[test]
    fn pathological_patterns_return_without_overflowing_the_stack() {
        // Exponential for a backtracking matcher.
        let many = "**a".repeat(20_000) + "b";
        assert!(!matches(&many, &"a".repeat(100)));
        // One frame per pattern character for a recursive one.
        let deep = "*?".repeat(30_000);
        assert!(!matches(&deep, "abc"));
        let folders = "**/".repeat(20_000) + "x";
        assert!(!matches(&folders, "a/b"));
        assert!(matches(&folders, "a/b/x"));
        assert!(matches(&deep[..200], &"x".repeat(100)));
        let long = "a".repeat(60 * 1024);
        assert!(!matches(&long, "ab"));
    }

    #[test]
    fn splits_before_the_first_wildcard() {
        for (source, dir, pattern) in [
            ("/a/b*/c", "/a", Some("b*/c")),
            ("/*.txt", "", Some("*.txt")),
            ("/a/*", "/a", Some("*")),
            ("/a/b", "/a/b", None),
            ("/a\\*b", "/a\\*b", None),
            ("/a\\*b/x?", "/a\\*b", Some("x?")),
            ("/x[ab]", "", Some("x[ab]")),
        ] {
            assert_eq!(split(source), (dir, pattern), "{source}");
        }
    }
}
