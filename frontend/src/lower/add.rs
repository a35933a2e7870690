//! What ADD's sources are: local paths (from the context, unpacked when they
//! are archives), http(s) URLs, or git repositories, as BuildKit tells them
//! apart. A git source wins over a URL: `https://host/x.git#main`.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Kind {
    Local,
    Url,
    Git,
    /// A heredoc (never returned by `kind`: those are told apart by the parser).
    Inline,
}

pub(super) fn kind(source: &str) -> Kind {
    if is_git(source) {
        Kind::Git
    } else if source.starts_with("http://") || source.starts_with("https://") {
        // Lower case only: BuildKit takes `HTTP://h/x` for a local path.
        Kind::Url
    } else {
        Kind::Local
    }
}

/// BuildKit's git reference test (gitutil's `ParseGitRef`), as ADD uses it.
fn is_git(source: &str) -> bool {
    // `github.com/o/r` is a repository only as a build context.
    if ["./", "../", "github.com/"].iter().any(|p| source.starts_with(p)) {
        return false;
    }
    let Some((scheme, rest)) = source.split_once("://").filter(|(s, _)| is_word(s, |c| c.is_ascii_alphanumeric()))
    else {
        return scp_like(source);
    };
    match scheme.to_ascii_lowercase().as_str() {
        "git" | "ssh" => true,
        // Only a path ending in `.git`, before any query or fragment:
        // `https://h/r.git?branch=dev#…`, not `https://r.git` nor `…/r.git/`.
        "http" | "https" => {
            let rest = rest.split(['#', '?']).next().unwrap_or("");
            rest.find('/').is_some_and(|slash| rest[slash..].ends_with(".git"))
        }
        _ => false,
    }
}

/// `[user@]host:path`, git's scp-like address (BuildKit's sshutil pattern),
/// unless Go's URL parser reads it as `scheme:/path` first.
fn scp_like(source: &str) -> bool {
    let base = source.split('#').next().unwrap_or("");
    if let Some((scheme, rest)) = base.split_once(':') {
        let mut chars = scheme.chars();
        let is_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        let opaque = rest.split('?').next().unwrap_or("");
        if is_scheme && (opaque.is_empty() || opaque.starts_with('/')) {
            return false;
        }
    }
    let Some((head, _)) = source.split_once(':') else {
        return false;
    };
    let (user, host) = head.split_once('@').map_or((None, head), |(u, h)| (Some(u), h));
    user.is_none_or(|u| is_word(u, |c| c.is_ascii_alphanumeric() || "-_".contains(c)))
        && is_word(host, |c| c.is_ascii_alphanumeric() || "-.".contains(c))
}

fn is_word(s: &str, ok: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(ok)
}

/// A `--checksum` value: `algo:hex` for a URL (a digest), a commit id or a
/// prefix of one for git (what the engine checks the pinned commit against).
pub(super) fn checksum_ok(kind: Kind, value: &str) -> bool {
    let hex = |s: &str, lens: &[usize]| lens.contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit());
    match kind {
        Kind::Git => hex(value, &(1..=64).collect::<Vec<_>>()),
        _ => match value.split_once(':') {
            Some(("sha256", h)) => hex(h, &[64]),
            Some(("sha384", h)) => hex(h, &[96]),
            Some(("sha512", h)) => hex(h, &[128]),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        for (s, k) in [
            ("a.tar.gz", Kind::Local),
            ("dir/", Kind::Local),
            ("http://example.com/x.tgz", Kind::Url),
            ("HTTPS://example.com/x", Kind::Local),
            ("HTTPS://example.com/r.git", Kind::Git),
            ("https://example.com/repo.git?branch=dev", Kind::Git),
            ("https://example.com/repo.git?ref=v1&subdir=docs", Kind::Git),
            ("https://example.com/repo.git##ref=v1,subdir=docs", Kind::Git),
            ("https://repo.git", Kind::Url),
            ("https://example.com/R.GIT", Kind::Url),
            ("https://example.com/x?f=a.git", Kind::Url),
            ("ftp://example.com/r.git", Kind::Local),
            ("github.com/moby/buildkit", Kind::Local),
            ("./host:path", Kind::Local),
            ("host:path", Kind::Git),
            ("my.host:team/repo.git#main", Kind::Git),
            ("host:/abs/path", Kind::Local),
            ("host:", Kind::Local),
            ("1host:/path", Kind::Git),
            ("git_user@host:/abs", Kind::Git),
            ("https://github.com/moby/buildkit.git#v0.10.1:docs", Kind::Git),
            ("https://example.com/repo.git", Kind::Git),
            ("git@github.com:moby/buildkit.git", Kind::Git),
            ("git://example.com/r", Kind::Git),
            ("ssh://git@example.com/r", Kind::Git),
            ("deploy@example.com:team/repo", Kind::Git),
            ("https://example.com/repo.git/", Kind::Url),
            ("https://example.com/x.git?raw=1", Kind::Git),
            ("user@host", Kind::Local),
            ("dir/a@b:c", Kind::Local),
        ] {
            assert_eq!(kind(s), k, "{s}");
        }
    }

    #[test]
    fn checksums() {
        let h64 = "a".repeat(64);
        assert!(checksum_ok(Kind::Url, &format!("sha256:{h64}")));
        assert!(!checksum_ok(Kind::Url, &h64));
        assert!(!checksum_ok(Kind::Url, "sha256:abc"));
        assert!(checksum_ok(Kind::Git, &"0".repeat(40)));
        assert!(checksum_ok(Kind::Git, "0123abc"));
        assert!(!checksum_ok(Kind::Git, "main"));
        assert!(!checksum_ok(Kind::Git, &"0".repeat(65)));
    }
}
