//! Word expansion with the Dockerfile rules (BuildKit's `shell/lex.go`).
//!
//! Not a shell: no globbing, no command substitution, no arithmetic. It knows
//! `$NAME` and `${NAME}`; `${NAME:-w}`, `${NAME:+w}`, `${NAME:?w}` and their
//! forms without the colon (which test "set" rather than "set and not
//! empty"); `${NAME#p}`, `${NAME##p}`, `${NAME%p}`, `${NAME%%p}`,
//! `${NAME/p/r}` and `${NAME//p/r}` with shell patterns (`pattern`); single
//! quotes (everything literal), double quotes (only `$` expands; the escape
//! character escapes `"`, `$` and itself) and the escape character outside
//! quotes (the next character is literal). Quotes are removed as words are
//! expanded. Positional and special parameters (`$1`, `$@`, `$#`, `$$`, …) are
//! never set, so they expand to nothing, as in BuildKit.

mod pattern;
mod scan;
mod words;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use crate::shorten::Shortened;
use scan::Scanner;

/// A word that cannot be expanded. Each message quotes the part of the word
/// at fault and says what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShellError {
    /// A quote (named: single or double) that is never closed.
    #[error("missing closing {quote} quote: {} never ends; close it, or escape the opening quote", quoted(.text))]
    UnterminatedQuote {
        /// "single" or "double".
        quote: &'static str,
        /// From the opening quote to the end of the word.
        text: String,
    },
    /// `${` without its `}`, or `${NAME/pattern` without its second `/`.
    #[error("missing '{close}' in {}: end the substitution with '{close}'", quoted(.text))]
    MissingClose {
        /// The character missing.
        close: char,
        /// The substitution, from its `$` to the end of the word.
        text: String,
    },
    /// `${}`, `${:…}` or `${{…`: no name.
    #[error("bad substitution {}: a variable name must follow '${{', as in ${{NAME}}", quoted(.text))]
    BadSubstitution {
        /// The substitution as far as it was read.
        text: String,
    },
    /// A `${NAME<op>…}` operator the Dockerfile language does not have.
    #[error(
        "unsupported modifier '{modifier}' in {}: a Dockerfile knows ${{NAME:-word}}, ${{NAME-word}}, \
         ${{NAME:+word}}, ${{NAME+word}}, ${{NAME:?word}}, ${{NAME?word}}, ${{NAME#pattern}}, ${{NAME##pattern}}, \
         ${{NAME%pattern}}, ${{NAME%%pattern}}, ${{NAME/pattern/word}} and ${{NAME//pattern/word}}",
        quoted(.text)
    )]
    UnsupportedModifier {
        /// The modifier, with its colon if it had one.
        modifier: String,
        /// The substitution as far as it was read.
        text: String,
    },
    /// `${NAME:?message}` with NAME unset (or empty).
    #[error("{name}: {message} (required by {}): give {name} a value with ARG, ENV or --build-arg", quoted(.text))]
    Unset {
        /// The variable.
        name: String,
        /// The word after `?`, or a default message.
        message: String,
        /// The substitution.
        text: String,
    },
    /// A pattern (`${NAME#pattern}`, …) that cannot be matched.
    #[error("bad pattern in {}: {reason}", quoted(.text))]
    Pattern {
        /// Why.
        reason: String,
        /// The substitution.
        text: String,
    },
    /// Substitutions nest deeper than `MAX_NESTING` (100) levels.
    #[error("variable expansion nests deeper than {MAX_NESTING} levels: flatten the ${{…:-…}} chain")]
    TooDeep,
    /// Expanding a word makes more than [`MAX_EXPANSION`] bytes beyond the
    /// word's own length.
    #[error(
        "variable expansion grows a value past {limit} bytes ({} MiB more than the text written): \
         a value this large is a mistake or an attack; shorten the variables it expands \
         (large data belongs in a file COPY'd into the image)",
        MAX_EXPANSION >> 20
    )]
    TooLong {
        /// The most the value could hold.
        limit: usize,
    },
}

fn quoted(text: &str) -> String {
    Shortened::new(text).quoted()
}

/// How deep `${a:-${b:-…}}` may nest. Expansion recurses once per level, so
/// without a bound a hostile word overflows the stack and kills the process;
/// real Dockerfiles nest a handful of levels at most.
pub(crate) const MAX_NESTING: usize = 100;

/// How much longer than the text written an expanded value may grow. A
/// replacement is itself expanded, so `ARG a=${a//?/$a}` squares a's length
/// and five such lines would need terabytes: the cap keeps memory
/// proportional to the Dockerfile. BuildKit has no cap; no real value (a
/// PATH, a list of packages, a flag set) comes near a mebibyte.
pub(crate) const MAX_EXPANSION: usize = 1 << 20;

/// Variables in scope: a name → its value, `None` when unset.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What expanding a text gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expansion {
    /// The text expanded, quotes and escapes removed, not split.
    pub(crate) text: String,
    /// The text expanded and split into words (BuildKit's ProcessWords).
    pub(crate) words: Vec<String>,
    /// The names it looked up that were set.
    pub(crate) matched: BTreeSet<String>,
    /// The names it looked up that were not set.
    pub(crate) unmatched: BTreeSet<String>,
}

/// Expands and splits words, with the file's escape character.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lexer {
    escape: char,
}

impl Lexer {
    pub(crate) fn new(escape: char) -> Self {
        Lexer { escape }
    }

    /// Expand `text`: the result whole and split, and the names not set.
    pub(crate) fn process(&self, text: &str, env: Env<'_>) -> Result<Expansion, ShellError> {
        let mut scanner = Scanner::new(text, self.escape, env);
        let (text, words) = scanner.process(None)?;
        Ok(Expansion { text, words: words.finish(), matched: scanner.matched, unmatched: scanner.unmatched })
    }

    /// Expand one word: variables substituted, quotes and escapes removed, no
    /// splitting (`ENV A="x y"` gives `x y`).
    pub(crate) fn expand(&self, word: &str, env: Env<'_>) -> Result<String, ShellError> {
        self.process(word, env).map(|e| e.text)
    }

    /// Expand and split into words on unquoted blanks, including blanks that come
    /// from unquoted variables (`EXPOSE $PORTS`).
    pub(crate) fn expand_words(&self, text: &str, env: Env<'_>) -> Result<Vec<String>, ShellError> {
        self.process(text, env).map(|e| e.words)
    }

    /// Split `text` on blanks outside quotes, without expanding anything: each
    /// word (quotes and escapes kept) with its byte offset.
    pub(crate) fn split<'t>(&self, text: &'t str) -> Vec<(usize, &'t str)> {
        words::split(text, self.escape)
    }
}

/// Expand one word as a Dockerfile does, with `\` as the escape character and
/// `env` the variables set: BuildKit's `ProcessWord`.
pub fn expand_word(word: &str, env: &BTreeMap<String, String>) -> Result<String, ShellError> {
    Lexer::new('\\').expand(word, &|name| env.get(name).cloned())
}

/// Expand `text` and split it into words on unquoted blanks: BuildKit's
/// `ProcessWords`.
pub fn expand_words(text: &str, env: &BTreeMap<String, String>) -> Result<Vec<String>, ShellError> {
    Lexer::new('\\').expand_words(text, &|name| env.get(name).cloned())
}
