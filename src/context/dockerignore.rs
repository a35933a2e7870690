//! `.dockerignore` with Docker's semantics (moby/patternmatcher), which differ
//! from gitignore's in ways users rely on:
//!
//! - a pattern is relative to the context root: `node_modules` excludes
//!   `node_modules` but not `src/node_modules` (write `**/node_modules` for
//!   that); a leading `/` means nothing more than the root;
//! - a path is excluded when it or any of its parent folders matches, so `docs`
//!   excludes `docs/a/b`;
//! - `!pattern` re-includes, checked against parents the same way, and the last
//!   pattern that matches wins; so `dir` then `!dir/keep` sends only
//!   `dir/keep` from `dir` (a walker must still enter `dir`: see
//!   [`DockerIgnore::has_exceptions`]);
//! - `*` and `?` stop at `/`, `**` crosses any number of folders, `[...]` is a
//!   class and `\` escapes the next character;
//! - a line is a comment when `#` is its first character (before trimming,
//!   as Docker does: `  #x` is a pattern), blank lines are skipped, and each
//!   pattern is cleaned like Go's `filepath.Clean` (`./a/../b/` → `b`).
//!
//! Known differences from Docker's regex translation, all in patterns nobody
//! writes on purpose: `**` that is not a whole path component (`a**b`) acts as
//! `*` here, and `[!…]` negates a class here (Go only negates with `[^…]`).

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

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
    matcher: GlobMatcher,
    /// A `!` pattern: a match re-includes.
    exception: bool,
}

impl DockerIgnore {
    /// No rules: every file of the context is sent.
    pub fn none() -> Self {
        DockerIgnore { patterns: Vec::new() }
    }

    /// Compile the text of an ignore file; `file_name` names it in errors.
    pub fn parse(text: &str, file_name: &str) -> Result<Self, ContextError> {
        let mut ignore = DockerIgnore::none();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
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
            if pattern.is_empty() {
                return Err(ContextError::LoneExclusion {
                    file: file_name.to_owned(),
                    line: index + 1,
                    pattern: line.to_owned(),
                });
            }
            let cleaned = clean(pattern);
            let cleaned = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest.to_owned(),
                _ => cleaned,
            };
            let matcher = GlobBuilder::new(&to_glob(&cleaned))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|source| ContextError::BadPattern {
                    file: file_name.to_owned(),
                    line: index + 1,
                    pattern: line.to_owned(),
                    source,
                })?
                .compile_matcher();
            ignore.patterns.push(Pattern { matcher, exception });
        }
        Ok(ignore)
    }

    /// The rules for a build: `<Dockerfile>.dockerignore` beside the
    /// Dockerfile when it exists (BuildKit's per-Dockerfile ignore file), else
    /// `.dockerignore` at the context root, else none. `dockerfile` is the
    /// Dockerfile's path; when it lies inside `context` it is always kept.
    pub fn load(context: &Path, dockerfile: &Path) -> Result<Self, ContextError> {
        let mut specific = dockerfile.as_os_str().to_owned();
        specific.push(FILE_NAME);
        let candidates = [PathBuf::from(specific), context.join(FILE_NAME)];
        let mut ignore = DockerIgnore::none();
        for path in candidates {
            match fs::read_to_string(&path) {
                Ok(text) => {
                    ignore = DockerIgnore::parse(&text, &path.display().to_string())?;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(crate::fsutil::PathError { action: "reading", path, source }.into()),
            }
        }
        Ok(ignore)
    }

    /// Whether the rules exclude `rel`, a path relative to the context root
    /// (`./` and a leading `/` are ignored).
    pub fn is_excluded(&self, rel: &Path) -> bool {
        let parts = components(rel);
        if parts.is_empty() {
            return false;
        }
        let full: PathBuf = parts.iter().collect();
        let parents: Vec<PathBuf> = (1..parts.len()).map(|n| parts[..n].iter().collect()).collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // Only a pattern that could change the verdict is evaluated: an
            // exclusion while included, an exception while excluded.
            if pattern.exception != excluded {
                continue;
            }
            let hit = pattern.matcher.is_match(&full) || parents.iter().any(|p| pattern.matcher.is_match(p));
            if hit {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// Whether any `!` pattern exists. Without one, a walker can skip an
    /// excluded folder whole; with one, something below it may be included.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }
}

/// The normal components of a relative path, dropping `.` and a leading `/`.
fn components(rel: &Path) -> Vec<&OsStr> {
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part),
            _ => None,
        })
        .collect()
}

/// Go's `filepath.Clean`: drop empty and `.` elements, resolve `..` against
/// the element before it (at the root, `..` is the root), and say `.` for
/// nothing.
fn clean(path: &str) -> String {
    let lexical = crate::fsutil::lexical(Path::new(path));
    let names = lexical.names.iter().map(|n| n.to_string_lossy());
    if path.starts_with('/') {
        return format!("/{}", names.collect::<Vec<_>>().join("/"));
    }
    let parts: Vec<_> = std::iter::repeat_n("..".into(), lexical.climbs).chain(names).collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// A Docker pattern in globset syntax: braces are plain characters to
/// Docker, so they are put in classes; a trailing lone `\` is a literal one.
fn to_glob(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if !in_class => match chars.next() {
                Some(next) => {
                    glob.push('\\');
                    glob.push(next);
                }
                None => glob.push_str(r"\\"),
            },
            '[' if !in_class => {
                in_class = true;
                glob.push(c);
            }
            ']' if in_class => {
                in_class = false;
                glob.push(c);
            }
            '{' | '}' | ',' if !in_class => {
                glob.push('[');
                glob.push(c);
                glob.push(']');
            }
            _ => glob.push(c),
        }
    }
    glob
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ignore file, path, excluded?), one case a line.
    const CASES: &[(&str, &str, bool)] = &[
        // plain names are anchored at the root
        ("node_modules", "node_modules", true),
        ("node_modules", "node_modules/x/y.js", true),
        ("node_modules", "src/node_modules", false),
        ("node_modules", "src/node_modules/x.js", false),
        ("**/node_modules", "src/node_modules/x.js", true),
        ("**/node_modules", "node_modules", true),
        // a parent folder match excludes everything below
        ("docs", "docs/a/b", true),
        ("docs", "docsx", false),
        ("docs/", "docs/a", true),
        // a leading `/` and `./` only anchor, as everything does
        ("/abs", "abs", true),
        ("/abs", "abs/file", true),
        ("/abs", "x/abs", false),
        ("./abs", "abs", true),
        ("a/../b", "b", true),
        ("a/../b", "a", false),
        // `*` and `?` do not cross `/`
        ("*.md", "README.md", true),
        ("*.md", "docs/a.md", false),
        ("*/*.md", "docs/a.md", true),
        ("?.txt", "a.txt", true),
        ("?.txt", "ab.txt", false),
        ("a?b", "a/b", false),
        ("*", "anything/at/all", true),
        // `**` crosses folders, zero or more
        ("**/*.log", "a.log", true),
        ("**/*.log", "x/y/z.log", true),
        ("**/*.log", "x/y/z.txt", false),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/**", "a/x", true),
        ("**", "x/y", true),
        // classes and escapes
        ("[ab].txt", "a.txt", true),
        ("[ab].txt", "c.txt", false),
        ("[^ab].txt", "c.txt", true),
        ("[a-c]", "b", true),
        (r"\*.txt", "*.txt", true),
        (r"\*.txt", "a.txt", false),
        ("{a,b}", "{a,b}", true),
        ("{a,b}", "a", false),
        // exceptions: the last match wins
        ("*.md\n!README.md", "notes.md", true),
        ("*.md\n!README.md", "README.md", false),
        ("!README.md\n*.md", "README.md", true),
        ("dir\n!dir/keep", "dir/keep", false),
        ("dir\n!dir/keep", "dir/other", true),
        ("dir\n!dir/keep", "dir", true),
        ("dir\n!dir/keep\ndir/keep", "dir/keep", true),
        // exceptions are checked against parents too
        ("dir/*\n!dir/sub", "dir/sub/deep/file", false),
        ("dir/*\n!dir/sub", "dir/other/file", true),
        ("*\n!src\nsrc/*.tmp", "src/a.tmp", true),
        ("*\n!src\nsrc/*.tmp", "src/a.rs", false),
        // comments, blanks, whitespace
        ("# node_modules", "node_modules", false),
        ("# comment\n\n  target  \n", "target/debug", true),
        ("  #target", "#target", true),
        ("\u{feff}bom", "bom", true),
        ("! keep\n*", "keep", true),
        ("*\n! keep", "keep", false),
        // paths are normalised too
        ("a/b", "./a/b", true),
        ("a/b", "/a/b/c", true),
        ("anything", "", false),
    ];

    #[test]
    fn docker_semantics() {
        let mut failures = Vec::new();
        for (rules, path, want) in CASES {
            let ignore = DockerIgnore::parse(rules, ".dockerignore").unwrap();
            if ignore.is_excluded(Path::new(path)) != *want {
                failures.push(format!("{rules:?} on {path:?}: want excluded={want}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = DockerIgnore::parse("a\n\n[unclosed\n", "ctx/.dockerignore").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("ctx/.dockerignore:3: "), "{text}");
        assert!(text.contains("[unclosed"), "{text}");
        let err = DockerIgnore::parse("# c\n!\n", ".dockerignore").unwrap_err();
        assert!(matches!(err, ContextError::LoneExclusion { line: 2, .. }), "{err}");
    }

    #[test]
    fn none_excludes_nothing() {
        let none = DockerIgnore::none();
        assert!(!none.is_excluded(Path::new("a/b")));
        assert!(!none.has_exceptions());
        let ignore = DockerIgnore::parse("*\n!x", "i").unwrap();
        assert!(ignore.has_exceptions());
    }

    #[test]
    fn load_prefers_the_dockerfile_specific_file() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        let dockerfile = ctx.join("app.Dockerfile");
        fs::write(ctx.join(FILE_NAME), "general\n").unwrap();
        let ignore = DockerIgnore::load(ctx, &dockerfile).unwrap();
        assert!(ignore.is_excluded(Path::new("general")));
        fs::write(ctx.join("app.Dockerfile.dockerignore"), "specific\n").unwrap();
        let ignore = DockerIgnore::load(ctx, &dockerfile).unwrap();
        assert!(ignore.is_excluded(Path::new("specific")));
        assert!(!ignore.is_excluded(Path::new("general")));
        let empty = tempfile::tempdir().unwrap();
        let ignore = DockerIgnore::load(empty.path(), &empty.path().join("Dockerfile")).unwrap();
        assert!(!ignore.is_excluded(Path::new("x")));
    }
}
