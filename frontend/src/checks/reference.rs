//! Whether a FROM's expansion is an image name docker would parse
//! (distribution/reference's ParseNormalizedNamed), for InvalidDefaultArgInFrom.

use std::sync::OnceLock;

use regex::Regex;

/// Docker's reference grammar: `[domain/]path[:tag][@digest]`, the path in
/// lowercase components joined by `.`, `_`, `__` or dashes.
///
/// The classes are ASCII (Go's `\w` is) and the tag's and digest's length
/// bounds are checked in [`is_valid`]: a Unicode `\w{0,127}` compiles to a
/// multi-megabyte automaton, which cost every build tens of milliseconds.
fn grammar() -> &'static Regex {
    static GRAMMAR: OnceLock<Regex> = OnceLock::new();
    GRAMMAR.get_or_init(|| {
        let component = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
        let domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let host = format!(r"(?:{domain_component}(?:\.{domain_component})*|\[[a-fA-F0-9:]+\])");
        let domain = format!(r"{host}(?::[0-9]+)?");
        let tag = r"[A-Za-z0-9_][A-Za-z0-9_.-]*";
        let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:([0-9a-fA-F]+)";
        let pattern = format!(r"^(?:({domain})/)?({component}(?:/{component})*)(?::({tag}))?(?:@{digest})?$");
        Regex::new(&pattern).expect("the reference grammar is a valid regex")
    })
}

/// Whether `name` is an image reference docker accepts.
pub(super) fn is_valid(name: &str) -> bool {
    // A bare 64-hex string is an image ID, which FROM cannot name.
    if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        return false;
    }
    // An uppercase first component is taken for a domain, as docker does
    // (`Team/app`), which the grammar's optional domain already allows.
    let Some(caps) = grammar().captures(name) else {
        return false;
    };
    let tag_fits = caps.get(3).is_none_or(|tag| tag.len() <= 128);
    let digest_fits = caps.get(4).is_none_or(|hex| hex.len() >= 32);
    // The name (domain and path, without tag or digest) is at most 255 long.
    tag_fits && digest_fits && caps.get(2).is_some_and(|path| path.end() <= 255)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_docker_parses() {
        for ok in [
            "alpine",
            "alpine:3.19",
            "library/alpine:latest",
            "docker.io/library/alpine",
            "localhost:5000/my-app_x/y.z:v1.0-rc1",
            "Registry.Example.com/team/app",
            "ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "scratch",
            "builder",
            "[::1]:5000/app",
            "Team/app",
            &format!("app:{}", "t".repeat(128)),
        ] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "Alpine",
            "alpine:",
            ":latest",
            "alpine::1",
            "a//b",
            "-alpine",
            "alpine@sha256:short",
            "alpine:-x",
            "my image",
            "app:é",
            &format!("app:{}", "t".repeat(129)),
            &format!("app@sha256:{}", "a".repeat(31)),
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
