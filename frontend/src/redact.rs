//! A URL's password kept out of what a build shows: ADD's step name,
//! progress, history and every frontend error say `https://user:xxxxx@host/…`,
//! as Go's `URL.Redacted` (BuildKit's `urlutil.RedactCredentials`) writes it.
//! The op keeps the real URL: the engine needs it, and the vertex digest is a hash.

/// `text` with the password of each `scheme://user:password@host` in it
/// replaced by `xxxxx`; a user alone (often a token) is kept, as Go does.
pub fn credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends where the path, query or fragment starts (or the word).
        let end = tail.find(|c: char| "/?#\"'".contains(c) || c.is_whitespace()).unwrap_or(tail.len());
        let authority = &tail[..end];
        // Go takes the last `@` of the authority as the end of the user info.
        match authority.rfind('@').and_then(|a| authority[..a].find(':').map(|c| (c, a))) {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str("xxxxx");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::credentials;

    #[test]
    fn passwords_are_replaced() {
        for (text, want) in [
            ("ADD https://u:s3cret@h/x.tgz /", "ADD https://u:xxxxx@h/x.tgz /"),
            (
                "ADD https://u:p@ss@h:8443/r.git#main /a https://v:q@h2 /",
                "ADD https://u:xxxxx@h:8443/r.git#main /a https://v:xxxxx@h2 /",
            ),
            ("ADD https://token@h/x /", "ADD https://token@h/x /"),
            ("ADD https://h/x?u=a:b@c /", "ADD https://h/x?u=a:b@c /"),
            ("ADD [\"https://u:p@h/x\", \"/\"]", "ADD [\"https://u:xxxxx@h/x\", \"/\"]"),
            ("ADD git@h:o/r.git /", "ADD git@h:o/r.git /"),
            ("COPY a:// /", "COPY a:// /"),
        ] {
            assert_eq!(credentials(text), want, "{text}");
        }
    }
}
