//! Go's RE2 syntax, as far as a translated `.dockerignore` pattern can reach
//! it, rewritten for the `regex` crate.
//!
//! Docker hands `[...]` and `\x` from a pattern to Go's regexp unchanged, so a
//! pattern means what Go's regexp makes of them: `[^a]` is one character
//! (not one byte), `\d` is an ASCII digit, `[[:alpha:]]` a POSIX class, `\.`
//! a dot. The two dialects differ in places a pattern can reach (nested
//! classes and `&&` in a class, Unicode `\d` and `\b`), so the Go text is
//! parsed here and every literal written out as `\x{…}`, leaving nothing for
//! the `regex` crate to read differently. Escapes Go refuses are refused.

use std::iter::Peekable;
use std::str::Chars;

use regex::Regex;

/// Compile Go regex text (as patternmatcher builds it) into a Rust regex.
pub(super) fn compile(go: &str) -> Result<Regex, String> {
    let rust = translate(go)?;
    Regex::new(&rust).map_err(|e| format!("it does not compile as a regular expression: {e}"))
}

fn translate(go: &str) -> Result<String, String> {
    let mut out = String::with_capacity(go.len() * 4);
    let mut chars = go.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => escape_outside(&mut chars, &mut out)?,
            '[' => class(&mut chars, &mut out)?,
            // Only ever written by the translation itself: anchors, `.*`,
            // `(.*/)?`, quantifiers.
            '^' | '$' | '.' | '*' | '?' | '(' | ')' => out.push(c),
            _ => literal(c, &mut out),
        }
    }
    Ok(out)
}

fn literal(c: char, out: &mut String) {
    out.push_str(&format!("\\x{{{:X}}}", c as u32));
}

/// What follows a `\` outside a class.
fn escape_outside(chars: &mut Peekable<Chars>, out: &mut String) -> Result<(), String> {
    let Some(c) = chars.next() else {
        return Err("a trailing `\\` escapes nothing".into());
    };
    match c {
        'A' => out.push_str(r"\A"),
        'z' => out.push_str(r"\z"),
        // Go's word boundaries are ASCII ones.
        'b' => out.push_str(r"(?-u:\b)"),
        'B' => out.push_str(r"(?-u:\B)"),
        'Q' => {
            // Literal text up to `\E` (or the end).
            while let Some(q) = chars.next() {
                if q == '\\' && chars.peek() == Some(&'E') {
                    chars.next();
                    break;
                }
                literal(q, out);
            }
        }
        _ => {
            if let Some(class) = perl_or_unicode_class(c, chars)? {
                out.push_str(&class);
            } else {
                literal(escaped_char(c, chars)?, out);
            }
        }
    }
    Ok(())
}

/// `\d`, `\s`, `\w` and their negations (ASCII in Go), `\pL` / `\PL`: as a
/// Rust class usable inside or outside a class.
fn perl_or_unicode_class(c: char, chars: &mut Peekable<Chars>) -> Result<Option<String>, String> {
    let class = match c {
        'd' => "[0-9]",
        'D' => "[^0-9]",
        's' => r"[\t\n\f\r ]",
        'S' => r"[^\t\n\f\r ]",
        'w' => "[0-9A-Za-z_]",
        'W' => "[^0-9A-Za-z_]",
        'p' | 'P' => {
            // The translation escapes `{`, so only one-letter names reach Go.
            let name = chars.next().ok_or("`\\p` names no Unicode class")?;
            if !matches!(name, 'C' | 'L' | 'M' | 'N' | 'P' | 'S' | 'Z') {
                return Err(format!("`\\{c}{name}` is not a Unicode class Go knows"));
            }
            return Ok(Some(format!("\\{c}{{{name}}}")));
        }
        _ => return Ok(None),
    };
    Ok(Some(class.to_owned()))
}

/// A single character after `\` (Go's `parseEscape`): punctuation is itself,
/// then octal, `\xHH`, and the control escapes.
fn escaped_char(c: char, chars: &mut Peekable<Chars>) -> Result<char, String> {
    let octal = |c: &char| ('0'..='7').contains(c);
    match c {
        '1'..='7' if !chars.peek().is_some_and(octal) => {
            Err(format!("`\\{c}` is a back reference, which Go's patterns do not have"))
        }
        '0'..='7' => {
            let mut value = c.to_digit(8).unwrap_or(0);
            for _ in 0..2 {
                match chars.peek().copied().filter(octal) {
                    Some(d) => {
                        chars.next();
                        value = value * 8 + d.to_digit(8).unwrap_or(0);
                    }
                    None => break,
                }
            }
            char::from_u32(value).ok_or_else(|| format!("`\\{c}…` is not a character"))
        }
        'x' => {
            let hex: String = (0..2).filter_map(|_| chars.next()).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                .and_then(char::from_u32)
                .ok_or_else(|| format!("`\\x{hex}` is not a two-digit hex escape"))
        }
        'a' => Ok('\x07'),
        'f' => Ok('\x0c'),
        'n' => Ok('\n'),
        'r' => Ok('\r'),
        't' => Ok('\t'),
        'v' => Ok('\x0b'),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
        c => Err(format!("`\\{c}` is not an escape Go knows: write `{c}` alone")),
    }
}

/// A class, its `[` read already (Go's `parseClass`: `]` first is literal,
/// `-` is literal unless between two characters, `[:name:]` is POSIX).
fn class(chars: &mut Peekable<Chars>, out: &mut String) -> Result<(), String> {
    out.push('[');
    if chars.peek() == Some(&'^') {
        chars.next();
        out.push('^');
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.peek() else {
            return Err("a `[...]` class is not closed".into());
        };
        if c == ']' && !first {
            chars.next();
            break;
        }
        first = false;
        if c == '[' {
            if let Some(posix) = posix_class(chars)? {
                out.push_str(&posix);
                continue;
            }
        }
        chars.next();
        if c == '\\' {
            let e = chars.next().ok_or("a `[...]` class is not closed")?;
            if let Some(class) = perl_or_unicode_class(e, chars)? {
                out.push_str(&class);
                continue;
            }
            let lo = escaped_char(e, chars)?;
            range(lo, chars, out)?;
        } else {
            range(c, chars, out)?;
        }
    }
    out.push(']');
    Ok(())
}

/// `lo` alone, or `lo-hi` when a `-` and something other than `]` follow.
fn range(lo: char, chars: &mut Peekable<Chars>, out: &mut String) -> Result<(), String> {
    literal(lo, out);
    let mut ahead = chars.clone();
    if ahead.next() == Some('-') && ahead.peek().is_some_and(|c| *c != ']') {
        chars.next();
        let hi = match chars.next() {
            Some('\\') => {
                let e = chars.next().ok_or("a `[...]` class is not closed")?;
                escaped_char(e, chars)?
            }
            Some(c) => c,
            None => return Err("a `[...]` class is not closed".into()),
        };
        if hi < lo {
            return Err(format!("the class range `{lo}-{hi}` runs backwards"));
        }
        out.push('-');
        literal(hi, out);
    }
    Ok(())
}

/// `[:name:]` at the cursor (Go looks for the closing `:]` anywhere after).
fn posix_class(chars: &mut Peekable<Chars>) -> Result<Option<String>, String> {
    let rest: String = chars.clone().collect();
    let Some(body) = rest.strip_prefix("[:") else {
        return Ok(None);
    };
    let Some(end) = body.find(":]") else {
        return Ok(None);
    };
    let name = &body[..end];
    let known = [
        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper",
        "word", "xdigit",
    ];
    if !known.contains(&name.trim_start_matches('^')) {
        return Err(format!("`[:{name}:]` is not a POSIX class"));
    }
    for _ in 0..name.chars().count() + 4 {
        chars.next();
    }
    Ok(Some(format!("[:{name}:]")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_syntax() {
        let cases: &[(&str, &str, bool)] = &[
            ("^[^a]$", "é", true),
            ("^[^a]$", "a", false),
            ("^[!a]$", "!", true),
            ("^[!a]$", "b", false),
            (r"^\d$", "٣", false),
            (r"^\d$", "3", true),
            (r"^[\d]x$", "3x", true),
            ("^[[:alpha:]]$", "q", true),
            ("^[[:^alpha:]]$", "q", false),
            (r"^[\]]$", "]", true),
            (r"^[a\-z]$", "-", true),
            (r"^[a\-z]$", "b", false),
            ("^[[^/]*]$", "[^/]", true),
            ("^[a&&b]$", "&", true),
            (r"^\x41$", "A", true),
            (r"^\101$", "A", true),
            (r"^\Q*\E$", "*", true),
            (r"^a\.b$", "a.b", true),
            (r"^a\.b$", "axb", false),
            (r"^\pL$", "ж", true),
            ("^a^b$", "a^b", false),
        ];
        for (go, path, want) in cases {
            let re = compile(go).unwrap_or_else(|e| panic!("{go}: {e}"));
            assert_eq!(re.is_match(path), *want, "{go} on {path:?}");
        }
        for bad in [r"^\q$", r"^\1$", "^[z-a]$", r"^\p\{Greek\}$", "^[[:nope:]]$", r"^\xZZ$", "^[a"] {
            assert!(compile(bad).is_err(), "{bad} should be refused");
        }
    }
}
