//! Word expansion with the Dockerfile rules (BuildKit's `shell/lex.go`).
//!
//! Not a shell: no globbing, no command substitution, no arithmetic. It knows
//! `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR:+w}`, `${VAR:?w}` and their forms without
//! the colon (which test "set" rather than "set and not empty"), single quotes
//! (everything literal), double quotes (only `$` expands; the escape character
//! escapes `"`, `$` and itself) and the escape character outside quotes (the next
//! character is literal). Quotes are removed as words are expanded.

/// A word that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// A quote (named: single or double) that is never closed.
    #[error("missing closing {0} quote")]
    UnterminatedQuote(&'static str),
    /// `${` without its `}`.
    #[error("missing '}}' in variable substitution")]
    MissingBrace,
    /// `${}` or a name that is not one.
    #[error("bad substitution")]
    BadSubstitution,
    /// A `${VAR<op>…}` operator the Dockerfile language does not have.
    #[error("unsupported modifier '{0}' in variable substitution")]
    UnsupportedModifier(char),
    /// `${VAR:?message}` with VAR unset (or empty).
    #[error("{name}: {message}")]
    Unset {
        /// The variable.
        name: String,
        /// The word after `:?`, or a default message.
        message: String,
    },
    /// Substitutions nest deeper than `MAX_NESTING` (100) levels.
    #[error("variable expansion nests deeper than {MAX_NESTING} levels: flatten the ${{…:-…}} chain")]
    TooDeep,
}

/// How deep `${a:-${b:-…}}` may nest. Expansion recurses once per level, so
/// without a bound a hostile word overflows the stack and kills the process;
/// real Dockerfiles nest a handful of levels at most.
pub(crate) const MAX_NESTING: usize = 100;

/// Variables in scope: a name → its value, `None` when unset.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands and splits words, with the file's escape character.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lexer {
    escape: char,
}

impl Lexer {
    pub(crate) fn new(escape: char) -> Self {
        Lexer { escape }
    }

    /// Expand one word: variables substituted, quotes and escapes removed, no
    /// splitting (`ENV A="x y"` gives `x y`).
    pub(crate) fn expand(&self, word: &str, env: Env<'_>) -> Result<String, ShellError> {
        Ok(self.scanner(word, env).process(None)?.0)
    }

    /// Expand and split into words on unquoted blanks, including blanks that come
    /// from unquoted variables (`EXPOSE $PORTS`).
    pub(crate) fn expand_words(&self, text: &str, env: Env<'_>) -> Result<Vec<String>, ShellError> {
        Ok(self.scanner(text, env).process(None)?.1.finish())
    }

    /// Split `text` on blanks outside quotes, without expanding anything: each
    /// word (quotes and escapes kept) with its byte offset.
    pub(crate) fn split<'t>(&self, text: &'t str) -> Vec<(usize, &'t str)> {
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
                    } else if c == self.escape {
                        chars.next();
                    }
                }
                (Some(q), _) if c == q => quote = None,
                (Some(q), _) if c == self.escape && q != '\'' => {
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

    fn scanner<'a>(&self, text: &str, env: Env<'a>) -> Scanner<'a> {
        Scanner { chars: text.chars().collect(), pos: 0, depth: 0, escape: self.escape, env }
    }
}

/// Words being built by [`Lexer::expand_words`] (BuildKit's `wordsStruct`):
/// literal characters from quotes never split, unquoted ones and variable
/// values do.
#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw(c.encode_utf8(&mut [0; 4]));
        }
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Scanner<'a> {
    chars: Vec<char>,
    pos: usize,
    /// How many `${…}` the scanner is inside: bounded by [`MAX_NESTING`].
    depth: usize,
    escape: char,
    env: Env<'a>,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    /// Expand up to `stop` (consumed) or the end: the expanded text and its words.
    fn process(&mut self, stop: Option<char>) -> Result<(String, Words), ShellError> {
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
                    words.add_str(&value);
                    result.push_str(&value);
                }
                '\'' | '"' => {
                    let value = if c == '\'' { self.single_quoted()? } else { self.double_quoted()? };
                    words.add_raw(&value);
                    result.push_str(&value);
                }
                _ => {
                    self.next();
                    if c == self.escape {
                        // An escape at the very end is dropped.
                        let Some(c) = self.next() else { break };
                        words.add_raw(c.encode_utf8(&mut [0; 4]));
                        result.push(c);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        match stop {
            Some(_) => Err(ShellError::MissingBrace),
            None => Ok((result, words)),
        }
    }

    fn single_quoted(&mut self) -> Result<String, ShellError> {
        self.next();
        let mut s = String::new();
        loop {
            match self.next() {
                None => return Err(ShellError::UnterminatedQuote("single")),
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ShellError> {
        self.next();
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(ShellError::UnterminatedQuote("double")),
                Some('"') => {
                    self.next();
                    return Ok(s);
                }
                Some('$') => s.push_str(&self.dollar()?),
                Some(c) => {
                    self.next();
                    if c == self.escape {
                        match self.peek() {
                            // Only `"`, `$` and the escape itself can be escaped;
                            // any other escape is kept as written.
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.next();
                                s.push(n);
                                continue;
                            }
                            None => continue,
                            Some(_) => {}
                        }
                    }
                    s.push(c);
                }
            }
        }
    }

    /// A name after `$`: letters, digits and `_`; a leading digit reads digits
    /// only (`$1`, which is never set here).
    fn name(&mut self) -> String {
        let mut name = String::new();
        let digits = self.peek().is_some_and(|c| c.is_ascii_digit());
        while let Some(c) = self.peek() {
            let ok = if digits { c.is_ascii_digit() } else { c.is_alphanumeric() || c == '_' };
            if !ok {
                break;
            }
            name.push(c);
            self.next();
        }
        name
    }

    fn dollar(&mut self) -> Result<String, ShellError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok((self.env)(&name).unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err(ShellError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ShellError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let value = (self.env)(&name);
        // With a colon, an empty value counts as unset.
        let (modifier, set) = match self.next() {
            None => return Err(ShellError::MissingBrace),
            Some('}') => return Ok(value.unwrap_or_default()),
            Some(':') => (self.next(), value.as_deref().is_some_and(|v| !v.is_empty())),
            Some(c) => (Some(c), value.is_some()),
        };
        let word = match modifier {
            Some('-' | '+' | '?') => {
                if self.depth == MAX_NESTING {
                    return Err(ShellError::TooDeep);
                }
                self.depth += 1;
                let word = self.process(Some('}'))?.0;
                self.depth -= 1;
                word
            }
            Some(c) => return Err(ShellError::UnsupportedModifier(c)),
            None => return Err(ShellError::MissingBrace),
        };
        match modifier {
            Some('-') if set => Ok(value.unwrap_or_default()),
            Some('-') => Ok(word),
            Some('+') if set => Ok(word),
            Some('+') => Ok(String::new()),
            _ if set => Ok(value.unwrap_or_default()),
            _ => Err(ShellError::Unset {
                name,
                message: if word.is_empty() { "is not allowed to be unset".to_owned() } else { word },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        let v = match name {
            "PWD" => "/home",
            "SHELL" => "bash",
            "EMPTY" => "",
            "SPACED" => " a  b ",
            "QUOTE" => "it's \"q\"",
            "é" => "accent",
            _ => return None,
        };
        Some(v.to_owned())
    }

    /// `input | expected`, like BuildKit's `envVarTest`. `error: …` expects that
    /// error message.
    const EXPAND: &str = r#"
        hello                    | hello
        he\llo                   | hello
        he\\llo                  | he\llo
        'he\llo'                 | he\llo
        "he\llo"                 | he\llo
        "he\\llo"                | he\llo
        "a\"b\$c"                | a"b$c
        'a"b' "c'd"              | a"b c'd
        ENV A="x y"              | ENV A=x y
        $PWD                     | /home
        ${PWD}                   | /home
        ${PWD}x$PWD              | /homex/home
        '$PWD'                   | $PWD
        "$PWD"                   | /home
        \$PWD                    | $PWD
        "\$PWD"                  | $PWD
        $NOPE.                   | .
        $                        | $
        a$                       | a$
        $.x                      | $.x
        $1x                      | x
        ${NOPE:-def}             | def
        ${EMPTY:-def}            | def
        ${EMPTY-def}             |
        ${NOPE-def}              | def
        ${PWD:-def}              | /home
        ${PWD:+alt}              | alt
        ${EMPTY:+alt}            |
        ${EMPTY+alt}             | alt
        ${NOPE+alt}              |
        ${NOPE:-$PWD/x}          | /home/x
        ${NOPE:-'a b'}           | a b
        ${NOPE:-${SHELL:-no}}    | bash
        ${PWD:?oops}             | /home
        ${é}                     | accent
        $QUOTE                   | it's "q"
        'a''b'                   | ab
        trailing\                | trailing
        ${NOPE:?must be set}     | error: NOPE: must be set
        ${NOPE?}                 | error: NOPE: is not allowed to be unset
        "abc                     | error: missing closing double quote
        'abc                     | error: missing closing single quote
        ${PWD                    | error: missing '}' in variable substitution
        ${PWD:-x                 | error: missing '}' in variable substitution
        ${                       | error: missing '}' in variable substitution
        ${}                      | error: bad substitution
        ${:-x}                   | error: bad substitution
        ${PWD#x}                 | error: unsupported modifier '#' in variable substitution
        ${PWD:=x}                | error: unsupported modifier '=' in variable substitution
    "#;

    #[test]
    fn expands() {
        let lexer = Lexer::new('\\');
        for line in EXPAND.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (input, want) = line.rsplit_once('|').unwrap();
            let (input, want) = (input.trim(), want.trim());
            let got = match lexer.expand(input, &env) {
                Ok(s) => s,
                Err(e) => format!("error: {e}"),
            };
            assert_eq!(got, want, "input: {input}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let lexer = Lexer::new('\\');
        let nested = |n: usize| format!("{}x{}", "${NOPE:-".repeat(n), "}".repeat(n));
        for (depth, want) in [
            (1, Ok("x".to_owned())),
            (MAX_NESTING, Ok("x".to_owned())),
            (MAX_NESTING + 1, Err(ShellError::TooDeep)),
            // Deep enough to overflow the stack if nothing stopped it.
            (20_000, Err(ShellError::TooDeep)),
        ] {
            assert_eq!(lexer.expand(&nested(depth), &env), want, "depth {depth}");
            assert_eq!(lexer.expand_words(&nested(depth), &env).map(|w| w.join(" ")), want, "depth {depth}");
        }
        // Inside double quotes too, and siblings do not add up.
        let quoted = format!("\"{}\"", nested(MAX_NESTING + 1));
        assert_eq!(lexer.expand(&quoted, &env), Err(ShellError::TooDeep));
        let siblings = nested(MAX_NESTING).repeat(3);
        assert_eq!(lexer.expand(&siblings, &env).unwrap(), "xxx");
    }

    #[test]
    fn backtick_escape() {
        let lexer = Lexer::new('`');
        for (input, want) in [(r"c:\dir", r"c:\dir"), ("a`$PWD", "a$PWD"), ("\"a`\"b\"", "a\"b"), ("\"a\\b\"", "a\\b")]
        {
            assert_eq!(lexer.expand(input, &env).unwrap(), want, "input: {input}");
        }
    }

    #[test]
    fn expands_words() {
        let lexer = Lexer::new('\\');
        for (input, want) in [
            ("a b  c", vec!["a", "b", "c"]),
            ("80 $SPACED", vec!["80", "a", "b"]),
            ("\"$SPACED\"", vec![" a  b "]),
            ("x$SPACED", vec!["x", "a", "b"]),
            ("'a b' c\\ d", vec!["a b", "c d"]),
            ("$EMPTY", vec![]),
            ("", vec![]),
        ] {
            assert_eq!(lexer.expand_words(input, &env).unwrap(), want, "input: {input}");
        }
    }

    #[test]
    fn splits() {
        let lexer = Lexer::new('\\');
        for (input, want) in [
            ("a=b c=d", vec![(0, "a=b"), (4, "c=d")]),
            ("  A=\"x y\"   B='1 2' ", vec![(2, "A=\"x y\""), (12, "B='1 2'")]),
            ("a\\ b c", vec![(0, "a\\ b"), (5, "c")]),
            ("a=\"q\\\" x\" y", vec![(0, "a=\"q\\\" x\""), (10, "y")]),
            ("'a\\' b", vec![(0, "'a\\'"), (5, "b")]),
            ("\"open x", vec![(0, "\"open x")]),
            ("", vec![]),
        ] {
            assert_eq!(lexer.split(input), want, "input: {input}");
        }
    }
}
