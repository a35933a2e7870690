//! `FROM --platform`: kiln builds for the build platform only, so another
//! platform is refused; the same one (however it is spelt) is fine.

use super::{LowerError, Lowering};
use crate::error::Error;
use crate::instructions::Word;

impl Lowering<'_> {
    /// Check a stage's `--platform` (expanded with the global ARGs, which hold
    /// `BUILDPLATFORM` and `TARGETPLATFORM`).
    pub(super) fn check_platform(&self, word: &Word) -> Result<(), Error> {
        let globals = &self.global_args;
        let requested = self.expand(word, &|n| globals.get(n).cloned())?;
        // Without a known build platform (a caller that sets none), there is
        // nothing to compare with.
        let Some(build) = &self.opts.platform else {
            return Ok(());
        };
        if requested.is_empty() {
            return Err(Error::at(word.location, LowerError::EmptyValue("FROM --platform")));
        }
        if normalize(build) != normalize(&requested) {
            return Err(Error::at(word.location, LowerError::Platform { requested, build: build.clone() }));
        }
        Ok(())
    }
}

/// containerd's normalisation: lowercase, arch aliases, the default variants.
fn normalize(platform: &str) -> (String, String, String) {
    let lower = platform.to_ascii_lowercase();
    let mut parts = lower.splitn(3, '/');
    let os = parts.next().unwrap_or("").to_owned();
    let arch = parts.next().unwrap_or("");
    let variant = parts.next().unwrap_or("");
    let (arch, variant) = match (arch, variant) {
        ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", ""),
        ("x86_64" | "x86-64", v) => ("amd64", v),
        ("aarch64" | "arm64", "v8" | "") => ("arm64", ""),
        ("aarch64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "") => ("arm", "v7"),
        ("i386" | "i686", v) => ("386", v),
        (a, v) => (a, v),
    };
    (os, arch.to_owned(), variant.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_platforms() {
        for (a, b) in [
            ("linux/amd64", "linux/x86_64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/aarch64", "linux/arm64/v8"),
            ("Linux/AMD64", "linux/amd64/v1"),
            ("linux/arm", "linux/arm/v7"),
        ] {
            assert_eq!(normalize(a), normalize(b), "{a} {b}");
        }
        assert_ne!(normalize("linux/amd64"), normalize("linux/arm64"));
        assert_ne!(normalize("linux/arm/v6"), normalize("linux/arm/v7"));
    }
}
