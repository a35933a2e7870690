//! Parser directives: `# escape=`, `# syntax=`, `# check=` lines at the top of
//! the file. As in BuildKit they count only before the first instruction,
//! comment or blank line; names are case-insensitive; each may be given once;
//! a `# name=value` line with another name is a plain comment that ends them.

use super::{ParseError, DEFAULT_ESCAPE};
use crate::error::{Error, Location};

/// A directive's value as written, and where its line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive {
    pub(crate) value: String,
    pub(crate) location: Location,
}

/// The directives read so far.
#[derive(Debug)]
pub(super) struct Directives {
    pub(super) escape: char,
    escape_seen: bool,
    pub(super) syntax: Option<Directive>,
    pub(super) check: Option<Directive>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives { escape: DEFAULT_ESCAPE, escape_seen: false, syntax: None, check: None }
    }
}

impl Directives {
    /// Take `line` (number `number`) as a directive; false when it is none,
    /// which ends the directives.
    pub(super) fn read(&mut self, line: &str, number: usize) -> Result<bool, Error> {
        let Some((name, value, column)) = directive(line) else {
            return Ok(false);
        };
        let location = Location { line: number, column };
        let duplicate = || Err(Error::at(location, ParseError::DuplicateDirective(name.to_owned())));
        let found = Some(Directive { value: value.to_owned(), location });
        match name {
            "escape" if self.escape_seen => return duplicate(),
            "escape" => {
                self.escape_seen = true;
                self.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(Error::at(location, ParseError::InvalidEscape(value.to_owned()))),
                };
            }
            "syntax" if self.syntax.is_some() => return duplicate(),
            "syntax" => self.syntax = found,
            "check" if self.check.is_some() => return duplicate(),
            _ => self.check = found,
        }
        Ok(true)
    }
}

/// `# name=value`: the lowercased name (a known one), the value and the
/// column of the `#`.
fn directive(line: &str) -> Option<(&'static str, &str, usize)> {
    let start = line.trim_start();
    let column = line[..line.len() - start.len()].chars().count() + 1;
    let (name, value) = start.strip_prefix('#')?.split_once('=')?;
    let name = name.trim_matches([' ', '\t']).to_ascii_lowercase();
    let value = value.trim_matches([' ', '\t']);
    let name = ["escape", "syntax", "check"].into_iter().find(|known| *known == name)?;
    (!value.is_empty()).then_some((name, value, column))
}

/// The warning (without its place) a `# syntax=` directive deserves: kiln always builds with
/// its own frontend, which follows docker/dockerfile:1; any other frontend
/// image is not run, so its own syntax would not be understood.
pub(crate) fn syntax_warning(directive: &Directive) -> Option<String> {
    let image = directive.value.split(['@']).next().unwrap_or("");
    let repo = image.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')).map_or(image, |(repo, _)| repo);
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    if ["docker/dockerfile", "docker/dockerfile-upstream"].contains(&repo) {
        return None;
    }
    Some(format!(
        "# syntax={} is ignored: kiln builds with its own Dockerfile frontend (docker/dockerfile:1), \
         not that image; remove the line or build with BuildKit",
        directive.value
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warns(value: &str) -> bool {
        syntax_warning(&Directive { value: value.into(), location: Location { line: 1, column: 1 } }).is_some()
    }

    #[test]
    fn known_frontends() {
        for known in [
            "docker/dockerfile:1",
            "docker/dockerfile:1.7-labs",
            "docker.io/docker/dockerfile:1.4",
            "docker/dockerfile-upstream:master",
            "docker/dockerfile@sha256:ac85f380a63b13dfcefa89046420e1781752bab202122f8f50032edf31be0021",
            "docker/dockerfile",
        ] {
            assert!(!warns(known), "{known}");
        }
        for other in ["tonistiigi/dockerfile:x", "registry.example.com/docker/dockerfile:1", "earthly/dockerfile"] {
            assert!(warns(other), "{other}");
        }
    }

    #[test]
    fn directive_lines() {
        assert_eq!(directive("# escape=`"), Some(("escape", "`", 1)));
        assert_eq!(directive("  #SYNTAX = docker/dockerfile:1 "), Some(("syntax", "docker/dockerfile:1", 3)));
        assert_eq!(directive("# check=skip=all;error=true"), Some(("check", "skip=all;error=true", 1)));
        assert_eq!(directive("# foo=bar"), None);
        assert_eq!(directive("# escape="), None);
        assert_eq!(directive("RUN x"), None);
        assert_eq!(directive(""), None);
    }
}
