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
    let lower = source.to_ascii_lowercase();
    let http = lower.starts_with("http://") || lower.starts_with("https://");
    // An http(s) URL is a repository only when its path ends in `.git`.
    let path = lower.split(['#', '?']).next().unwrap_or("");
    let git = ["git://", "ssh://"].iter().any(|p| lower.starts_with(p))
        || scp_like(source)
        || (http && path.ends_with(".git"));
    if git {
        Kind::Git
    } else if http {
        Kind::Url
    } else {
        Kind::Local
    }
}

/// `user@host:path`, git's scp-like address.
fn scp_like(source: &str) -> bool {
    let Some((user, rest)) = source.split_once('@') else {
        return false;
    };
    let Some((host, _)) = rest.split_once(':') else {
        return false;
    };
    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    word(user) && word(host) && !source.contains("://")
}

/// A `--checksum` value: `algo:hex` for a URL (a digest), a commit id for git.
pub(super) fn checksum_ok(kind: Kind, value: &str) -> bool {
    let hex = |s: &str, lens: &[usize]| lens.contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit());
    match kind {
        Kind::Git => hex(value, &[40, 64]),
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
            ("HTTPS://example.com/x", Kind::Url),
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
        assert!(!checksum_ok(Kind::Git, "main"));
    }
}
