//! The expansion itself: one pass over a word's characters, recursing into
//! each `${…}`'s word.

use std::collections::BTreeSet;

use super::pattern::{self, PatternError};
use super::words::Words;
use super::{Env, ShellError, MAX_EXPANSION, MAX_NESTING};

/// The modifiers `${NAME<op>word}` takes, with or without a colon before them.
const MODIFIERS: &[char] = &['-', '+', '?', '#', '%'];

pub(super) struct Scanner<'a> {
    chars: Vec<char>,
    pos: usize,
    /// How many `${…}` the scanner is inside: bounded by [`MAX_NESTING`].
    depth: usize,
    escape: char,
    /// The longest any expanded text may be: checked before each append, so
    /// a hostile word fails before the big string is allocated.
    limit: usize,
    /// Keep escape characters in the result: a pattern needs them to tell
    /// `\*` from `*`.
    raw_escapes: bool,
    env: Env<'a>,
    /// The names looked up and set, and those not set (for the build checks).
    pub(super) matched: BTreeSet<String>,
    pub(super) unmatched: BTreeSet<String>,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(text: &str, escape: char, env: Env<'a>) -> Self {
        Scanner {
            chars: text.chars().collect(),
            pos: 0,
            depth: 0,
            escape,
            limit: text.len().saturating_add(MAX_EXPANSION),
            raw_escapes: false,
            env,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// The text from `start` to where the scanner is, for error messages.
    fn text_from(&self, start: usize) -> String {
        self.chars[start..self.pos.min(self.chars.len())].iter().collect()
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        let value = (self.env)(name);
        match value {
            Some(_) => self.matched.insert(name.to_owned()),
            None => self.unmatched.insert(name.to_owned()),
        };
        value
    }

    /// Refuse to make `text` longer than the limit by `more` bytes.
    fn fits(&self, text: &str, more: &str) -> Result<(), ShellError> {
        if text.len().saturating_add(more.len()) > self.limit {
            return Err(ShellError::TooLong { limit: self.limit });
        }
        Ok(())
    }

    /// Expand up to `stop` (consumed) or the end: the expanded text and its
    /// words. Reaching the end while looking for `stop` is an
    /// [`ShellError::MissingClose`] the caller fills in.
    pub(super) fn process(&mut self, stop: Option<char>) -> Result<(String, Words), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((result, words));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    self.fits(&result, &value)?;
                    words.add_str(&value);
                    result.push_str(&value);
                }
                '\'' | '"' => {
                    let value = if c == '\'' { self.single_quoted()? } else { self.double_quoted()? };
                    self.fits(&result, &value)?;
                    words.add_raw(&value);
                    result.push_str(&value);
                }
                _ => {
                    self.next();
                    if c != self.escape {
                        words.add_char(c);
                        result.push(c);
                        continue;
                    }
                    if self.raw_escapes {
                        words.add_raw(c.encode_utf8(&mut [0; 4]));
                        result.push(c);
                    }
                    // An escape at the very end escapes nothing and is dropped.
                    let Some(c) = self.next() else { break };
                    words.add_raw(c.encode_utf8(&mut [0; 4]));
                    result.push(c);
                }
            }
        }
        match stop {
            Some(_) => Err(ShellError::MissingClose { close: ' ', text: String::new() }),
            None => Ok((result, words)),
        }
    }

    /// Everything literal up to the next `'`: no escapes at all.
    fn single_quoted(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.next();
        let mut s = String::new();
        loop {
            match self.next() {
                None => return Err(ShellError::UnterminatedQuote { quote: "single", text: self.text_from(start) }),
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    /// Up to the next unescaped `"`: `$` expands; the escape character
    /// escapes only `"`, `$` and itself and is kept before anything else.
    fn double_quoted(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.next();
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(ShellError::UnterminatedQuote { quote: "double", text: self.text_from(start) }),
                Some('"') => {
                    self.next();
                    return Ok(s);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    self.fits(&s, &value)?;
                    s.push_str(&value);
                }
                Some(c) => {
                    self.next();
                    if c == self.escape {
                        if self.raw_escapes {
                            s.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.next();
                                s.push(n);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    s.push(c);
                }
            }
        }
    }

    /// A name after `$` or `${`: letters, digits and `_`; or a run of digits
    /// (`$1`); or one special parameter (`$@`, `$#`, …). Positional and special
    /// parameters are never set in a Dockerfile, so they expand to nothing.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_numeric() => {
                while let Some(c) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(c);
                    self.next();
                }
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!')) => {
                self.next();
                name.push(c);
            }
            _ => {
                while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
                    name.push(c);
                    self.next();
                }
            }
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ShellError> {
        let start = self.pos;
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(self.lookup(&name).unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err(ShellError::MissingClose { close: '}', text: self.text_from(start) }),
            Some('{' | '}' | ':') => {
                self.next();
                return Err(ShellError::BadSubstitution { text: self.text_from(start) });
            }
            Some(_) => {}
        }
        let name = self.name();
        match self.next() {
            None => Err(ShellError::MissingClose { close: '}', text: self.text_from(start) }),
            Some('}') => Ok(self.lookup(&name).unwrap_or_default()),
            Some(':') => match self.next() {
                None => Err(ShellError::MissingClose { close: '}', text: self.text_from(start) }),
                Some(op) if MODIFIERS.contains(&op) => self.modified(start, &name, op, true),
                Some(op) => {
                    Err(ShellError::UnsupportedModifier { modifier: format!(":{op}"), text: self.text_from(start) })
                }
            },
            Some('/') => self.replace(start, &name),
            Some(op) if MODIFIERS.contains(&op) => self.modified(start, &name, op, false),
            Some(op) => Err(ShellError::UnsupportedModifier { modifier: op.to_string(), text: self.text_from(start) }),
        }
    }

    /// The word of a `${…}` that began at `start`, expanded up to `close`;
    /// `raw` keeps its escapes (patterns).
    fn nested(&mut self, start: usize, close: char, raw: bool) -> Result<String, ShellError> {
        if self.depth == MAX_NESTING {
            return Err(ShellError::TooDeep);
        }
        self.depth += 1;
        let was_raw = std::mem::replace(&mut self.raw_escapes, raw);
        let result = self.process(Some(close));
        self.raw_escapes = was_raw;
        self.depth -= 1;
        match result {
            Ok((word, _)) => Ok(word),
            Err(ShellError::MissingClose { text, .. }) if text.is_empty() => {
                Err(ShellError::MissingClose { close, text: self.text_from(start) })
            }
            Err(e) => Err(e),
        }
    }

    /// `${NAME<op>word}`; with a `colon`, an empty value counts as unset
    /// for `-`, `+` and `?`.
    fn modified(&mut self, start: usize, name: &str, op: char, colon: bool) -> Result<String, ShellError> {
        let word = self.nested(start, '}', op == '#' || op == '%')?;
        let value = self.lookup(name);
        let null = value.as_deref().is_none_or(|v| colon && v.is_empty());
        match op {
            '-' if null => Ok(word),
            '+' if null => Ok(String::new()),
            '+' => Ok(word),
            '?' if null => {
                let message = match (&value, word.is_empty()) {
                    (_, false) => word,
                    (None, true) => "is not allowed to be unset".to_owned(),
                    (Some(_), true) => "is not allowed to be empty".to_owned(),
                };
                Err(ShellError::Unset { name: name.to_owned(), message, text: self.text_from(start) })
            }
            '#' | '%' => {
                let (pattern, greedy) = match word.strip_prefix(op) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                let value = value.unwrap_or_default();
                let trimmed = if op == '#' {
                    pattern::trim_prefix(&value, pattern, greedy)
                } else {
                    pattern::trim_suffix(&value, pattern, greedy)
                };
                trimmed.map_err(|e| self.pattern_error(start, e))
            }
            _ => Ok(value.unwrap_or_default()),
        }
    }

    /// `${NAME/pattern/replacement}`, `${NAME//pattern/replacement}`.
    fn replace(&mut self, start: usize, name: &str) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = self.nested(start, '/', true)?;
        let replacement = self.nested(start, '}', true)?;
        let value = self.lookup(name).unwrap_or_default();
        match pattern::replace(&value, &pattern, &replacement, all, self.limit) {
            Ok(Some(replaced)) => Ok(replaced),
            Ok(None) => Err(ShellError::TooLong { limit: self.limit }),
            Err(e) => Err(self.pattern_error(start, e)),
        }
    }

    fn pattern_error(&self, start: usize, e: PatternError) -> ShellError {
        ShellError::Pattern { reason: e.0, text: self.text_from(start) }
    }
}
