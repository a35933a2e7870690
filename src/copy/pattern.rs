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
pub(super) fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    well_formed(&pattern) && match_at(&pattern, &name)
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

fn match_at(p: &[char], name: &[char]) -> bool {
    let Some(&c) = p.first() else {
        return name.is_empty();
    };
    match c {
        '*' if p.get(1) == Some(&'*') => {
            let rest = &p[p.iter().take_while(|&&c| c == '*').count()..];
            // `**/` may stand for no folder at all.
            if rest.first() == Some(&'/') && match_at(&rest[1..], name) {
                return true;
            }
            (0..=name.len()).any(|i| match_at(rest, &name[i..]))
        }
        '*' => {
            let rest = &p[1..];
            // Each split of the name after a run of non-separators.
            for i in 0..=name.len() {
                if match_at(rest, &name[i..]) {
                    return true;
                }
                if name.get(i) == Some(&'/') {
                    break;
                }
            }
            false
        }
        '?' => name.first().is_some_and(|&n| n != '/') && match_at(&p[1..], &name[1..]),
        '[' => {
            let Some(((negated, ranges), rest)) = class(&p[1..]) else { return false };
            let Some(&n) = name.first() else { return false };
            let inside = ranges.iter().any(|&(lo, hi)| lo <= n && n <= hi);
            inside != negated && match_at(rest, &name[1..])
        }
        '\\' => name.first() == p.get(1) && match_at(&p[2..], &name[1..]),
        c => name.first() == Some(&c) && match_at(&p[1..], &name[1..]),
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
