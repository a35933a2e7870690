//! `.dockerignore` exactly as BuildKit applies it: the file read as
//! moby/patternmatcher's `ignorefile.ReadAll` reads it ([`read_all`]), the
//! patterns compiled as `patternmatcher.New` compiles them ([`super::pattern`]),
//! and paths judged as fsutil's walker judges them while it sends a context
//! (`MatchesUsingParentResults`, see [`DockerIgnore::matches`]). What users
//! rely on, and the tests below pin:
//!
//! - a pattern is relative to the context root: `node_modules` excludes
//!   `node_modules` but not `src/node_modules` (write `**/node_modules`); a
//!   leading `/` means nothing more than the root;
//! - a path is excluded when it or a parent folder matches, so `docs`
//!   excludes `docs/a/b`;
//! - `!pattern` re-includes, and the last pattern that applies wins; so `dir`
//!   then `!dir/keep` sends only `dir/keep` from `dir`;
//! - `*` and `?` stop at `/` (`?` and `[^a]` are one character, not one byte),
//!   `**` crosses folders, `[...]` is a class, `\` escapes;
//! - a line is a comment when `#` is its first character (before trimming),
//!   blank lines are skipped, each pattern is cleaned like Go's
//!   `filepath.Clean`; a malformed pattern is an error naming file and line.
//!
//! Known difference: a file name that is not UTF-8 is matched by its lossy
//! UTF-8 form (Go matches each bad byte as U+FFFD).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::pattern::{self, Matcher};
use super::ContextError;

/// The name of the ignore file at the root of a context.
pub const FILE_NAME: &str = ".dockerignore";

/// The compiled rules of one `.dockerignore` file.
#[derive(Debug, Clone)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// Cleaned, without its `!`.
    text: String,
    matcher: Matcher,
    /// A `!` pattern: a match re-includes.
    exception: bool,
}

/// One pattern as [`read_all`] leaves it, and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based.
    pub line: usize,
    /// Cleaned; `!` first for an exception.
    pub pattern: String,
    /// The line as written, for the column an error points at.
    pub text: String,
}

impl Line {
    /// A pattern given alone, as line `line` of its source.
    pub fn new(line: usize, pattern: &str) -> Self {
        Line { line, pattern: pattern.to_owned(), text: pattern.to_owned() }
    }

    /// The 1-based column of byte `at` of the cleaned pattern `body` (without
    /// its `!`) in the line as written; where the pattern starts when
    /// cleaning changed it.
    fn column(&self, body: &str, at: usize) -> usize {
        let start = self.text.len() - self.text.trim_start().len();
        let (from, at) = match self.text.find(body) {
            Some(found) if !body.is_empty() => (found, at),
            _ => (start, 0),
        };
        self.text[..from].chars().count() + body.get(..at).map_or(0, |b| b.chars().count()) + 1
    }
}

/// Which patterns matched a folder: what its children are judged with
/// (fsutil's `MatchInfo`). Empty for the context root.
#[derive(Debug, Clone, Default)]
pub struct MatchInfo(Vec<bool>);

/// The patterns of an ignore file, as `ignorefile.ReadAll` returns them: a
/// UTF-8 BOM dropped, `#` lines (before trimming) and blank lines skipped,
/// each trimmed, `!` split off and trimmed again, cleaned like Go's
/// `filepath.Clean`, a leading `/` dropped (but `/` itself kept).
pub fn read_all(text: &str) -> Vec<Line> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let exception = pattern.starts_with('!');
        if exception {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = go_clean(pattern);
            if cleaned.len() > 1 {
                if let Some(rest) = cleaned.strip_prefix('/') {
                    cleaned = rest.to_owned();
                }
            }
        }
        if exception {
            cleaned.insert(0, '!');
        }
        out.push(Line { line: index + 1, pattern: cleaned, text: line.to_owned() });
    }
    out
}

impl DockerIgnore {
    /// No rules: every file of the context is sent.
    pub fn none() -> Self {
        DockerIgnore { patterns: Vec::new() }
    }

    /// Compile the text of an ignore file; `file_name` names it in errors.
    pub fn parse(text: &str, file_name: &str) -> Result<Self, ContextError> {
        Self::new(&read_all(text), file_name)
    }

    /// Compile patterns as `patternmatcher.New` does: trimmed and cleaned
    /// once more (with their `!`: so `!/` is a lone `!`), then checked with
    /// Go's `filepath.Match` rules.
    pub fn new(lines: &[Line], file_name: &str) -> Result<Self, ContextError> {
        let mut patterns = Vec::new();
        for entry in lines {
            let trimmed = entry.pattern.trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = go_clean(trimmed);
            let (exception, text) = match cleaned.strip_prefix('!') {
                Some("") => {
                    let column = entry.column("!", 0);
                    return Err(ContextError::LoneExclusion { file: file_name.to_owned(), line: entry.line, column });
                }
                Some(rest) => (true, rest.to_owned()),
                None => (false, cleaned),
            };
            let bad = |at: usize, reason: String| ContextError::BadPattern {
                file: file_name.to_owned(),
                line: entry.line,
                column: entry.column(&text, at),
                pattern: entry.text.trim().to_owned(),
                reason,
            };
            pattern::check(&text).map_err(|(at, why)| bad(at, why.to_owned()))?;
            let matcher = Matcher::compile(&text).map_err(|why| bad(0, why))?;
            patterns.push(Pattern { text, matcher, exception });
        }
        Ok(DockerIgnore { patterns })
    }

    /// The rules for a build: `<Dockerfile>.dockerignore` beside the
    /// Dockerfile when it exists (BuildKit's per-Dockerfile ignore file), else
    /// `.dockerignore` at the context root, else none. `dockerfile` is the
    /// Dockerfile's path, if it has one.
    pub fn load(context: &Path, dockerfile: Option<&Path>) -> Result<Self, ContextError> {
        let specific = dockerfile.map(|d| {
            let mut name = d.as_os_str().to_owned();
            name.push(FILE_NAME);
            PathBuf::from(name)
        });
        for path in specific.into_iter().chain([context.join(FILE_NAME)]) {
            match fs::read(&path) {
                Ok(bytes) => return DockerIgnore::parse(&String::from_utf8_lossy(&bytes), &path.display().to_string()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(crate::fsutil::PathError { action: "reading", path, source }.into()),
            }
        }
        Ok(DockerIgnore::none())
    }

    /// Judge `path` (slash-separated, relative to the root) given what its
    /// parent folder's judgement left (`MatchesUsingParentResults`): a
    /// pattern that matched the parent matches the child; one that did not,
    /// or was not consulted then, is tried on the child alone. Patterns that
    /// cannot change the verdict so far are not consulted. Returns whether
    /// the path is excluded, and the info its own children need.
    pub fn matches(&self, path: &str, parent: &MatchInfo) -> (bool, MatchInfo) {
        let mut excluded = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = parent.0.get(i).copied().unwrap_or(false);
            if !hit {
                if pattern.exception != excluded {
                    continue;
                }
                hit = pattern.matcher.is_match(path);
                if !hit && parent.0.is_empty() {
                    // No parent judgement: try each parent folder, as
                    // `MatchesOrParentMatches` does.
                    hit = path.match_indices('/').any(|(at, _)| pattern.matcher.is_match(&path[..at]));
                }
            }
            info[i] = hit;
            if hit {
                excluded = !pattern.exception;
            }
        }
        (excluded, MatchInfo(info))
    }

    /// Whether the rules exclude `rel`, a path relative to the context root
    /// (`./` and a leading `/` are ignored), judged folder by folder from the
    /// root down as a walk of the context judges it.
    pub fn is_excluded(&self, rel: &Path) -> bool {
        self.judge(rel).0
    }

    /// [`DockerIgnore::is_excluded`], with what `rel`'s entries are judged
    /// with ([`DockerIgnore::matches`]): for a walk that starts below the root.
    pub fn judge(&self, rel: &Path) -> (bool, MatchInfo) {
        // Most contexts have no .dockerignore: no path to build, per entry.
        if self.patterns.is_empty() {
            return (false, MatchInfo::default());
        }
        // Each folder's path from the root, grown in place: one String per call.
        let mut path = String::new();
        let mut info = MatchInfo::default();
        let mut excluded = false;
        for part in rel.components().filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy()),
            _ => None,
        }) {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(&part);
            (excluded, info) = self.matches(&path, &info);
        }
        (excluded, info)
    }

    /// Whether a walk may skip the excluded folder `dir` whole (fsutil's
    /// shortcut, kept because it decides what is sent): when no `!` pattern
    /// exists, or every one is a plain path (no wildcard) and none lies
    /// below `dir`.
    pub fn skips_dir(&self, dir: &str) -> bool {
        let exceptions: Vec<&Pattern> = self.patterns.iter().filter(|p| p.exception).collect();
        if exceptions.is_empty() {
            return true;
        }
        let plain =
            exceptions.iter().all(|p| !without_trailing_glob(&p.text).contains(['*', '[', ']', '?', '^', '\\']));
        let below = format!("{dir}/");
        plain && !exceptions.iter().any(|p| format!("{}/", without_trailing_glob(&p.text)).starts_with(&below))
    }

    /// Whether any `!` pattern exists. Without one, a walker can skip an
    /// excluded folder whole; with one, something below it may be included.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

fn without_trailing_glob(pattern: &str) -> &str {
    let p = pattern.strip_suffix("/**").unwrap_or(pattern);
    p.strip_suffix("/*").unwrap_or(p)
}

/// Go's `filepath.Clean` on a slash path: no empty or `.` elements, `..`
/// takes the element before it (and nothing at the root), no trailing `/`,
/// `.` for nothing.
pub fn go_clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[cfg(test)]
#[path = "dockerignore_tests.rs"]
mod tests;
