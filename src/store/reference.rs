//! Image names as the user writes them, normalised the way docker does for the
//! local store: a missing tag means `:latest`, and docker's default registry is
//! implied (`docker.io/library/busybox` is `busybox`).

use super::StoreError;

/// Normalise `name` to `repository:tag`. `name@sha256:…` is kept as written.
pub fn normalize(name: &str) -> Result<String, StoreError> {
    let bad = |why| StoreError::BadName(name.to_owned(), why);
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("it holds white space"));
    }
    let name = match name.strip_prefix("docker.io/") {
        Some(rest) => rest.strip_prefix("library/").unwrap_or(rest),
        None => name,
    };
    if name.contains('@') {
        return Ok(name.to_owned());
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo, tag) = match last.rfind(':') {
        Some(i) => (&name[..name.len() - last.len() + i], &last[i + 1..]),
        None => (name, "latest"),
    };
    if repo.is_empty() || repo.ends_with('/') {
        return Err(bad("the repository part is empty"));
    }
    if repo.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(bad("repository names must be lowercase"));
    }
    let tag_ok = !tag.is_empty()
        && tag.len() <= 128
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !tag.starts_with(['.', '-']);
    if !tag_ok {
        return Err(bad("a tag is 1 to 128 letters, digits, '_', '.' or '-'"));
    }
    Ok(format!("{repo}:{tag}"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalizes_like_docker() {
        for (input, want) in [
            ("busybox", Some("busybox:latest")),
            ("forcast:v1", Some("forcast:v1")),
            ("localhost:5000/app", Some("localhost:5000/app:latest")),
            ("docker.io/library/busybox:1.36", Some("busybox:1.36")),
            ("docker.io/someone/tool", Some("someone/tool:latest")),
            ("quay.io/me/app", Some("quay.io/me/app:latest")),
            ("localhost:5000/app:2", Some("localhost:5000/app:2")),
            ("a/b/c:1.0-rc_1", Some("a/b/c:1.0-rc_1")),
            ("", None),
            ("Upper", None),
            ("app:", None),
            ("app:-x", None),
            ("a b", None),
        ] {
            assert_eq!(normalize(input).ok().as_deref(), want, "{input:?}");
        }
    }
}
