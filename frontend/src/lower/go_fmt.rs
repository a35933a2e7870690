//! Go's `%q` formatting, which BuildKit uses in history entries
//! (`CMD ["/bin/sh" "-c" "x"]`, HEALTHCHECK's retries as `'\x03'`), so
//! kiln's image history reads like docker's.

/// `strconv.Quote`: double-quoted, with Go's escapes.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape(c, '"', &mut out);
    }
    out.push('"');
    out
}

/// `%q` of a `[]string`: `["a" "b"]`.
pub(super) fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// `%q` of an integer: the character of that code point, single-quoted.
pub(super) fn quote_rune(n: u64) -> String {
    let c = u32::try_from(n).ok().and_then(char::from_u32).unwrap_or('\u{fffd}');
    let mut out = String::from("'");
    escape(c, '\'', &mut out);
    out.push('\'');
    out
}

fn escape(c: char, quote: char, out: &mut String) {
    match c {
        '\\' => out.push_str("\\\\"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes() {
        assert_eq!(quote("a \"b\" \\ é\n\t\u{1b}"), r#""a \"b\" \\ é\n\t\x1b""#);
        assert_eq!(quote_list(&["/bin/sh".into(), "-c".into(), "echo 'hi'".into()]), r#"["/bin/sh" "-c" "echo 'hi'"]"#);
        assert_eq!(quote_list(&[]), "[]");
        assert_eq!(quote_rune(3), r"'\x03'");
        assert_eq!(quote_rune(0), r"'\x00'");
        assert_eq!(quote_rune(10), r"'\n'");
        assert_eq!(quote_rune(39), r"'\''");
        assert_eq!(quote_rune(65), "'A'");
    }
}
