//! Field splitting: the words an expansion makes (BuildKit's `wordsStruct`).

/// Words being built as a text is expanded: characters that were quoted or
/// escaped never split a word; unquoted blanks, including those a variable's
/// value brings, do.
#[derive(Debug, Default)]
pub(super) struct Words {
    words: Vec<String>,
    word: String,
    /// Something, maybe an empty quoted string, was added since the last split.
    in_word: bool,
}

impl Words {
    /// An unquoted character: a blank ends the word (an empty one is dropped).
    pub(super) fn add_char(&mut self, c: char) {
        if !c.is_whitespace() {
            self.add_raw(c.encode_utf8(&mut [0; 4]));
        } else if self.in_word && !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
            self.in_word = false;
        }
    }

    /// Unquoted text, a variable's value: split on its blanks.
    pub(super) fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    /// Quoted or escaped text: part of the current word, blanks and all.
    pub(super) fn add_raw(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    pub(super) fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

/// Split `text` on blanks outside quotes, without expanding anything: each
/// word (quotes and escapes kept) with its byte offset.
pub(super) fn split(text: &str, escape: char) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match (quote, start) {
            (None, Some(s)) if c.is_whitespace() => {
                words.push((s, &text[s..i]));
                start = None;
            }
            (None, None) if c.is_whitespace() => {}
            (None, _) => {
                start.get_or_insert(i);
                if c == '"' || c == '\'' {
                    quote = Some(c);
                } else if c == escape {
                    chars.next();
                }
            }
            (Some(q), _) if c == q => quote = None,
            (Some(q), _) if c == escape && q != '\'' => {
                chars.next();
            }
            (Some(_), _) => {}
        }
    }
    if let Some(s) = start {
        words.push((s, &text[s..]));
    }
    words
}
