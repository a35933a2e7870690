//! What the parser knows of each instruction: its flags, whether it has a JSON
//! form, and the "did you mean" of a misspelt keyword.

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--name=value`, once.
    Value,
    /// `--name` or `--name=true|false`, once.
    Bool,
    /// `--name=value`, as many times as wanted.
    Repeated,
}

/// What the parser knows about one instruction.
pub(crate) struct Spec {
    pub(crate) keyword: &'static str,
    /// Flags it takes.
    pub(crate) flags: &'static [(&'static str, FlagKind)],
    /// Whether its arguments may be a JSON array (exec form, or a list).
    pub(crate) json: bool,
}

const fn spec(keyword: &'static str, json: bool) -> Spec {
    Spec { keyword, flags: &[], json }
}

use FlagKind::{Bool, Repeated, Value};

/// Every instruction Docker knows, in the order "did you mean" prefers on a tie.
pub(crate) const SPECS: &[Spec] = &[
    Spec { flags: &[("platform", Value)], ..spec("FROM", false) },
    Spec { flags: &[("mount", Repeated), ("network", Value), ("security", Value)], ..spec("RUN", true) },
    Spec {
        flags: &[
            ("from", Value),
            ("chown", Value),
            ("chmod", Value),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", Repeated),
        ],
        ..spec("COPY", true)
    },
    spec("CMD", true),
    spec("ENTRYPOINT", true),
    spec("ENV", false),
    spec("ARG", false),
    spec("WORKDIR", false),
    spec("USER", false),
    spec("LABEL", false),
    spec("EXPOSE", false),
    Spec {
        flags: &[
            ("chown", Value),
            ("chmod", Value),
            ("link", Bool),
            ("exclude", Repeated),
            ("checksum", Value),
            ("keep-git-dir", Bool),
            ("unpack", Bool),
        ],
        ..spec("ADD", true)
    },
    spec("VOLUME", true),
    Spec {
        flags: &[
            ("interval", Value),
            ("timeout", Value),
            ("start-period", Value),
            ("start-interval", Value),
            ("retries", Value),
        ],
        // Its JSON form is the command's, after the CMD word: typed later.
        ..spec("HEALTHCHECK", false)
    },
    spec("SHELL", true),
    spec("STOPSIGNAL", false),
    spec("ONBUILD", false),
    spec("MAINTAINER", false),
];

/// The spec of an uppercased keyword.
pub(crate) fn find(keyword: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.keyword == keyword)
}

/// The known keyword closest to `keyword`, if it is close enough to be a typo.
pub(crate) fn suggest(keyword: &str) -> Option<&'static str> {
    let mut best: Option<(usize, &'static str)> = None;
    for spec in SPECS {
        let d = edit_distance(keyword, spec.keyword);
        if d <= 2 && d < spec.keyword.len() && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, spec.keyword));
        }
    }
    best.map(|(_, k)| k)
}

/// Optimal string alignment distance: Levenshtein plus swaps of two neighbours,
/// so `FORM` is one edit from `FROM`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        for (a, b, d) in [
            ("RUN", "RUN", 0),
            ("RUNN", "RUN", 1),
            ("FORM", "FROM", 1),
            ("CPY", "COPY", 1),
            ("ENTRYPONT", "ENTRYPOINT", 1),
            ("XYZ", "ARG", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("RUNN"), Some("RUN"));
        assert_eq!(suggest("HEALTHCHEK"), Some("HEALTHCHECK"));
        assert_eq!(suggest("XYZZY"), None);
    }
}
