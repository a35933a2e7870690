//! Text for the terminal. Error messages, warnings and step output quote what
//! kiln read — archive entry names, Dockerfile words, a RUN's output — and a
//! terminal acts on control characters: `\x1b[2J` clears the screen, `\r`
//! rewrites the line, `\x1b]0;…\x07` retitles the window. Everything kiln
//! prints about its input goes through [`escape`], so the user sees those
//! bytes instead of obeying them.

use std::fmt::Write as _;

/// `text` with every control character shown as an escape (`\r`, `\t`,
/// `\x1b`, `\u{9b}`) except the newline, which multi-line messages (the tail
/// of a failed RUN's output) use as such; bidirectional overrides are escaped
/// too, since they reorder what the terminal shows. `text` is a Rust string,
/// so bytes that were not UTF-8 were already replaced by U+FFFD when it was
/// decoded; controls are what is left to neutralise.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push('\n'),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || is_bidi_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The Unicode marks and overrides that change the display order of text.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn controls_are_shown_not_obeyed() {
        for (input, want) in [
            ("plain text: ok", "plain text: ok"),
            ("two\nlines", "two\nlines"),
            ("\x1b[2Jcleared", "\\x1b[2Jcleared"),
            ("over\rwritten", "over\\rwritten"),
            ("tab\there", "tab\\there"),
            ("bell\x07 nul\0 del\x7f", "bell\\x07 nul\\x00 del\\x7f"),
            ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
            ("c1 \u{9b}31m", "c1 \\u{9b}31m"),
            ("rtl \u{202e}gnp.exe", "rtl \\u{202e}gnp.exe"),
            ("lossy \u{fffd} stays, é stays", "lossy \u{fffd} stays, é stays"),
            ("a backslash \\x1b stays as typed", "a backslash \\x1b stays as typed"),
        ] {
            assert_eq!(escape(input), want, "{input:?}");
        }
    }
}
