//! Secret values out of step output: each line a step prints is redacted
//! before it reaches progress, the failure's tail, or anything kept.

use std::borrow::Cow;

/// What replaces a secret's value.
const MASK: &str = "****";

/// Replaces the values of the secrets a step can see with [`MASK`].
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a value that holds another is masked whole.
    values: Vec<String>,
}

/// By hand: a derived `Debug` would print the values it masks.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").field("values", &self.values.len()).finish()
    }
}

impl Redactor {
    /// Also mask `value`. Output arrives line by line, so a value of several
    /// lines is masked line by line too (each non-empty line of it), as is
    /// the value without its trailing newline (`echo` of a file's content).
    pub fn add(&mut self, value: &[u8]) {
        let text = String::from_utf8_lossy(value);
        let whole = text.trim_end_matches(['\n', '\r']);
        let parts = std::iter::once(whole).chain(whole.lines().map(|l| l.trim_end_matches('\r')));
        for part in parts.filter(|p| !p.is_empty()) {
            if !self.values.iter().any(|v| v == part) {
                self.values.push(part.to_owned());
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `line` with every value masked.
    pub fn line<'a>(&self, line: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(line);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), MASK));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_masked_wherever_they_appear() {
        let mut r = Redactor::default();
        r.add(b"s3cr3t\n");
        r.add(b"line one\nline two\n");
        r.add(b"");
        r.add(b"s3cr3t-longer");
        for (line, want) in [
            ("nothing here", "nothing here"),
            ("s3cr3t", "****"),
            ("a s3cr3t and s3cr3t", "a **** and ****"),
            ("s3cr3t-longer", "****"),
            ("line one", "****"),
            ("> line two <", "> **** <"),
            ("", ""),
        ] {
            assert_eq!(r.line(line), want, "{line}");
        }
        assert!(Redactor::default().is_empty());
        let debug = format!("{r:?}");
        assert!(!debug.contains("s3cr3t") && !debug.contains("line one"), "{debug}");
    }
}
