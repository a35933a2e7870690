//! Long instruction text cut for display: a RUN line can be megabytes long,
//! and printed whole, in every place that names the step, it floods the terminal.

use std::fmt;

/// How many characters of an instruction or a command line progress lines
/// and errors show.
pub const SHOWN_CHARS: usize = 200;

/// Text cut for progress lines and errors. Displays as its first
/// [`SHOWN_CHARS`] characters and, when that is not all of it,
/// `… (N characters)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortened<'a> {
    /// The text shown.
    pub head: &'a str,
    /// The whole text's length in characters, when `head` is not all of it.
    pub chars: Option<usize>,
}

impl<'a> Shortened<'a> {
    /// `text`, cut if it is longer than [`SHOWN_CHARS`] characters.
    pub fn new(text: &'a str) -> Self {
        match text.char_indices().nth(SHOWN_CHARS) {
            None => Shortened { head: text, chars: None },
            Some((end, _)) => Shortened { head: &text[..end], chars: Some(text.chars().count()) },
        }
    }

    /// The head in double quotes, escaped like `{:?}`, then the note: for
    /// messages that quote the text (the note is not part of it).
    pub fn quoted(&self) -> String {
        format!("{:?}{}", self.head, self.note())
    }

    fn note(&self) -> String {
        self.chars.map(|n| format!("… ({n} characters)")).unwrap_or_default()
    }
}

impl fmt::Display for Shortened<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.head, self.note())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_shortened_for_display() {
        let long = "x".repeat(SHOWN_CHARS - 1);
        for (text, shown, quoted) in [
            ("make", "make".to_owned(), "\"make\"".to_owned()),
            ("say \"hi\"", "say \"hi\"".to_owned(), r#""say \"hi\"""#.to_owned()),
            (&format!("{long}y"), format!("{long}y"), format!("\"{long}y\"")),
            (&format!("{long}yz"), format!("{long}y… (201 characters)"), format!("\"{long}y\"… (201 characters)")),
            // Cut between characters, never inside one; counted in characters.
            (&format!("{long}éèà"), format!("{long}é… (202 characters)"), format!("\"{long}é\"… (202 characters)")),
        ] {
            let s = Shortened::new(text);
            assert_eq!((s.to_string(), s.quoted()), (shown, quoted), "{text}");
        }
    }
}
