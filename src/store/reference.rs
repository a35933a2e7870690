//! Image names as the user writes them, checked against docker's reference
//! grammar (distribution/reference) and normalised the way docker does for the
//! local store: a missing tag means `:latest`, and docker's default registry is
//! implied (`docker.io/library/busybox` is `busybox`).
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] component ( "/" component )*     at most 255 bytes
//! domain     := host [ ":" port ]          host: DNS labels joined by "." or "[ipv6]"
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := "sha256:" 64 lowercase hex digits               (the only kind kiln stores)
//! ```
//!
//! Where a name is looked up, an image ID may stand instead ([`IdPrefix`]): the
//! image's config digest (what `kiln build` prints and `kiln images` shows, as
//! docker does), whole or a prefix of at least [`ID_PREFIX_MIN`] hex digits,
//! with or without `sha256:`.
//!
//! Every name kiln takes — `-t`, `kiln tag`, lookups, `kiln import`, names in
//! loaded archives — goes through here, because names end up in the store's
//! index and in messages; one that is not a reference (`../../etc:1`, `@`,
//! control characters) must be refused, not stored.

use super::StoreError;

/// The longest repository name docker accepts (`NameTotalLengthMax`).
const NAME_MAX: usize = 255;
/// The longest tag.
const TAG_MAX: usize = 128;

/// The fewest hex digits an image ID prefix may have.
pub const ID_PREFIX_MIN: usize = 4;

/// An image ID, whole or its start, as written where a name is accepted:
/// lowercase hex digits of the image's config digest, with or without `sha256:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPrefix(String);

impl IdPrefix {
    /// `input` as an ID prefix, if it is one (it may be a name too: `cafe`).
    pub fn parse(input: &str) -> Option<Self> {
        let hex = input.strip_prefix("sha256:").unwrap_or(input);
        let ok = (ID_PREFIX_MIN..=64).contains(&hex.len()) && hex.bytes().all(is_lower_hex);
        ok.then(|| Self(hex.to_owned()))
    }

    /// Whether all 64 digits were written: then it can only be an ID.
    pub fn is_whole(&self) -> bool {
        self.0.len() == 64
    }

    /// Whether the image whose ID (config digest, `sha256:…`) is `id` starts so.
    pub fn matches(&self, id: &str) -> bool {
        id.strip_prefix("sha256:").is_some_and(|hex| hex.starts_with(&self.0))
    }
}

fn is_lower_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'f')
}

/// The registry a name without one is pulled from.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed image reference, its repository normalised: the typed value kiln
/// passes around. [`Reference::registry`], [`Reference::path`],
/// [`Reference::tag`] and [`Reference::digest`] are its parts as a registry
/// client needs them; [`Display`](std::fmt::Display) writes it fully
/// normalised (`docker.io/library/busybox:1.36`), and
/// [`Reference::tagged_name`] is the local store's short form
/// (`busybox:1.36`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The repository as the store names it (`busybox`, `localhost:5000/app`).
    pub repository: String,
    /// The tag, when one was written.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:<64 hex>`), when one was written.
    pub digest: Option<String>,
}

impl Reference {
    /// Parse a reference that may name a tag, a digest or both (a name to look up).
    pub fn parse(name: &str) -> Result<Self, StoreError> {
        parse(name).map_err(|why| StoreError::BadName(name.to_owned(), why))
    }

    /// The registry host (and port): [`DEFAULT_REGISTRY`] when the name has
    /// none. As docker decides it: the first part is a registry when more
    /// parts follow and it holds a `.` or a `:`, is `localhost`, or is not
    /// lowercase.
    pub fn registry(&self) -> &str {
        self.split().0
    }

    /// The repository at its registry: `library/busybox` for `busybox` on
    /// docker's registry, `me/app` for `quay.io/me/app`.
    pub fn path(&self) -> String {
        match self.split() {
            (DEFAULT_REGISTRY, rest) if !rest.contains('/') => format!("library/{rest}"),
            (_, rest) => rest.to_owned(),
        }
    }

    /// The tag as written, if one was.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest as written, if one was.
    pub fn digest(&self) -> Option<kiln_solver::Digest> {
        self.digest.as_deref().map(|d| d.parse().expect("parse checked the digest"))
    }

    /// (registry, the rest of the store's repository name).
    fn split(&self) -> (&str, &str) {
        match self.repository.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':']) || first == "localhost" || first != first.to_ascii_lowercase() =>
            {
                (first, rest)
            }
            _ => (DEFAULT_REGISTRY, &self.repository),
        }
    }

    /// `repository:tag`, the tag `latest` when none was written: how the store names images.
    pub fn tagged_name(&self) -> String {
        format!("{}:{}", self.repository, self.tag.as_deref().unwrap_or("latest"))
    }

    /// Whether the stored image `stored` (`repository:tag`) with manifest
    /// `digest` is what this reference names. With a digest, the tag is
    /// optional: `app@sha256:…` is any tag of `app` with that manifest.
    pub fn matches(&self, stored: &str, digest: &str) -> bool {
        match &self.digest {
            None => stored == self.tagged_name(),
            Some(d) => {
                let (repository, tag) = stored.rsplit_once(':').unwrap_or((stored, ""));
                d == digest && repository == self.repository && self.tag.as_deref().is_none_or(|t| t == tag)
            }
        }
    }
}

impl std::fmt::Display for Reference {
    /// The fully normalised form: `registry/path[:tag][@digest]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry(), self.path())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Normalise a name to tag an image with to `repository:tag`. A digest is
/// refused, as docker does: a tag names whatever is pushed to it next, a
/// digest one manifest forever.
pub fn normalize(name: &str) -> Result<String, StoreError> {
    let reference = Reference::parse(name)?;
    if reference.digest.is_some() {
        return Err(StoreError::BadName(name.to_owned(), "refusing to create a tag with a digest reference"));
    }
    Ok(reference.tagged_name())
}

fn parse(input: &str) -> Result<Reference, &'static str> {
    if input.is_empty() {
        return Err("it is empty");
    }
    if input.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it holds white space or control characters");
    }
    // docker refuses these so that a name is never taken for an image ID.
    if IdPrefix::parse(input).is_some_and(|id| id.is_whole()) {
        return Err("a name of 64 hex digits would read as an image ID");
    }
    // A name holds no `@`, a digest no `@` either: split at the first one.
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (input, None),
    };
    if let Some(d) = digest {
        let hex = d.strip_prefix("sha256:").ok_or(DIGEST)?;
        if hex.len() != 64 || !hex.bytes().all(is_lower_hex) {
            return Err(DIGEST);
        }
    }
    // The tag is after the last `:` of the last component; a `:` before that is a port.
    let last = rest.rsplit('/').next().unwrap_or(rest);
    let (name, tag) = match last.rfind(':') {
        Some(i) => (&rest[..rest.len() - last.len() + i], Some(&last[i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        if !is_tag(t) {
            return Err("a tag is 1 to 128 letters, digits, '_', '.' or '-', and starts with a letter, digit or '_'");
        }
    }
    if name.is_empty() {
        return Err("the repository part is empty");
    }
    if !is_name(name) {
        return Err(if is_name(&name.to_ascii_lowercase()) {
            "repository names must be lowercase"
        } else {
            "a repository is lowercase letters and digits in '/'-separated parts, joined inside a part \
             by one '.', one or two '_', or dashes (after an optional registry host[:port]/)"
        });
    }
    if name.len() > NAME_MAX {
        return Err("the repository name is longer than 255 characters");
    }
    // docker's default registry is implied. (docker would keep `library/` when
    // more parts follow; kiln has always dropped it, and names stay as they were.)
    let repository = match name.strip_prefix("docker.io/") {
        Some(rest) => rest.strip_prefix("library/").unwrap_or(rest),
        None => name,
    };
    Ok(Reference { repository: repository.to_owned(), tag: tag.map(str::to_owned), digest: digest.map(str::to_owned) })
}

const DIGEST: &str = "a digest is 'sha256:' and 64 lowercase hex digits";

/// `[domain/]component(/component)*`. The first part is a registry domain only
/// when more parts follow; as in docker's grammar, it may be either.
fn is_name(name: &str) -> bool {
    let mut parts = name.split('/');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let rest_ok = rest.iter().all(|p| is_component(p));
    rest_ok && (is_component(first) || (!rest.is_empty() && is_domain(first)))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_component(part: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = part.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while bytes.get(i).is_some_and(alnum) {
            i += 1;
        }
        if i == start {
            return false; // empty, or a separator at the start, the end or twice
        }
        if i == bytes.len() {
            return true;
        }
        let start = i;
        while bytes.get(i).is_some_and(|b| !alnum(b)) {
            i += 1;
        }
        let separator = &part[start..i];
        if !matches!(separator, "." | "_" | "__") && !separator.bytes().all(|b| b == b'-') {
            return false;
        }
    }
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    tag.len() <= TAG_MAX
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

/// `host[:port]`: DNS labels (`[A-Za-z0-9]` with inner `-`) joined by `.`, or `[ipv6]`.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.strip_prefix('[') {
        Some(v6) => {
            let Some((addr, after)) = v6.split_once(']') else { return false };
            if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return false;
            }
            match after {
                "" => return true,
                _ => (None, after.strip_prefix(':').unwrap_or("x")),
            }
        }
        None => match domain.split_once(':') {
            Some((host, port)) => (Some(host), port),
            None => (Some(domain), "0"),
        },
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let host_ok = host.is_none_or(|h| h.split('.').all(label_ok));
    host_ok && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::{normalize, IdPrefix, Reference};

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_like_docker() {
        let long_name = format!("a/{}", "b".repeat(254));
        let longest_tag = format!("app:{}", "t".repeat(128));
        for (input, want) in [
            ("busybox", Some("busybox:latest")),
            ("forcast:v1", Some("forcast:v1")),
            ("localhost:5000/app", Some("localhost:5000/app:latest")),
            ("docker.io/library/busybox:1.36", Some("busybox:1.36")),
            ("docker.io/someone/tool", Some("someone/tool:latest")),
            ("quay.io/me/app", Some("quay.io/me/app:latest")),
            ("localhost:5000/app:2", Some("localhost:5000/app:2")),
            ("a/b/c:1.0-rc_1", Some("a/b/c:1.0-rc_1")),
            ("localhost:5000", Some("localhost:5000")), // the image `localhost`, tag 5000, as in docker
            ("My-Registry.io/app", Some("My-Registry.io/app:latest")),
            ("[::1]:5000/app:v", Some("[::1]:5000/app:v")),
            ("a.b_c__d---e/f:_x", Some("a.b_c__d---e/f:_x")),
            (&longest_tag, Some(&longest_tag)),
            ("", None),
            ("Upper", None),
            ("app:", None),
            ("app:-x", None),
            ("app:.x", None),
            ("a b", None),
            // Hostile names: none of these may reach the index.
            ("@", None),
            ("../../x@y", None),
            ("../../etc:1", None),
            ("../x", None),
            ("a/../b", None),
            ("./a", None),
            ("/abs", None),
            ("a//b", None),
            ("a/", None),
            (".hidden", None),
            ("-x", None),
            ("x-", None),
            ("a..b", None),
            ("a___b", None),
            ("a\x1b[2Jb", None),
            ("a\rb", None),
            ("a\nb", None),
            ("app:a:b", None),
            ("app:v1@x", None),
            (":tag", None),
            ("host:port/app", None),
            ("-host/app", None),
            ("[zz]/app", None),
            ("app@sha256:abc", None),
            ("app\u{202e}", None),
            (HEX, None),
            (&format!("sha256:{HEX}"), None),
            (&long_name, None),
            (&format!("app:{}", "t".repeat(129)), None),
            // A name to tag cannot hold a digest, valid or not.
            (&format!("app@sha256:{HEX}"), None),
        ] {
            assert_eq!(normalize(input).ok().as_deref(), want, "{input:?}");
        }
    }

    #[test]
    fn parts_for_a_registry_client() {
        let d = format!("sha256:{HEX}");
        for (input, registry, path, shown) in [
            ("busybox", "docker.io", "library/busybox", "docker.io/library/busybox"),
            ("docker.io/library/busybox:1.36", "docker.io", "library/busybox", "docker.io/library/busybox:1.36"),
            ("someone/tool:v1", "docker.io", "someone/tool", "docker.io/someone/tool:v1"),
            ("quay.io/me/app", "quay.io", "me/app", "quay.io/me/app"),
            ("localhost/app", "localhost", "app", "localhost/app"),
            ("localhost:5000/a/b:2", "localhost:5000", "a/b", "localhost:5000/a/b:2"),
            ("My-Registry.io/app", "My-Registry.io", "app", "My-Registry.io/app"),
            ("[::1]:5000/app", "[::1]:5000", "app", "[::1]:5000/app"),
            (&format!("app:v1@{d}"), "docker.io", "library/app", &format!("docker.io/library/app:v1@{d}")),
        ] {
            let r = Reference::parse(input).unwrap();
            assert_eq!((r.registry(), r.path().as_str(), r.to_string().as_str()), (registry, path, shown), "{input}");
        }
        let r = Reference::parse(&format!("app@{d}")).unwrap();
        assert_eq!((r.tag(), r.digest().map(|d| d.to_string())), (None, Some(d.clone())));
        assert_eq!(Reference::parse("app:v1").unwrap().tag(), Some("v1"));
    }

    #[test]
    fn lookups_may_name_a_digest() {
        let d = format!("sha256:{HEX}");
        for (input, repository, tag, digest) in [
            (format!("app@{d}"), "app", None, Some(d.as_str())),
            (format!("docker.io/library/app:v1@{d}"), "app", Some("v1"), Some(d.as_str())),
            ("app:v1".to_owned(), "app", Some("v1"), None),
        ] {
            let r = Reference::parse(&input).unwrap();
            assert_eq!((r.repository.as_str(), r.tag.as_deref(), r.digest.as_deref()), (repository, tag, digest));
        }
        for bad in [
            format!("app@sha256:{}", HEX.to_uppercase()),
            format!("app@sha512:{HEX}"),
            format!("app@sha256:{HEX}0"),
            format!("@{d}"),
            format!("app@{d}@{d}"),
        ] {
            assert!(Reference::parse(&bad).is_err(), "{bad:?}");
        }
        let by_digest = Reference::parse(&format!("app@{d}")).unwrap();
        let by_both = Reference::parse(&format!("app:v1@{d}")).unwrap();
        let by_tag = Reference::parse("app").unwrap();
        for (reference, stored, digest, want) in [
            (&by_digest, "app:v1", d.as_str(), true),
            (&by_digest, "app:v2", d.as_str(), true),
            (&by_digest, "app:v1", "sha256:other", false),
            (&by_digest, "other:v1", d.as_str(), false),
            (&by_both, "app:v1", d.as_str(), true),
            (&by_both, "app:v2", d.as_str(), false),
            (&by_tag, "app:latest", "sha256:any", true),
            (&by_tag, "app:v1", "sha256:any", false),
        ] {
            assert_eq!(reference.matches(stored, digest), want, "{reference:?} {stored}");
        }
    }

    #[test]
    fn ids_are_hex_prefixes_of_the_config_digest() {
        let id = format!("sha256:{HEX}");
        for (input, whole, matches) in [
            ("0123", Some(false), true),
            ("sha256:0123", Some(false), true),
            (HEX, Some(true), true),
            (id.as_str(), Some(true), true),
            ("0124", Some(false), false),
            ("012", None, false),
            ("sha256:012", None, false),
            ("0123X", None, false),
            ("ABCD", None, false),
            ("app", None, false),
            ("", None, false),
        ] {
            let parsed = IdPrefix::parse(input);
            assert_eq!(parsed.as_ref().map(IdPrefix::is_whole), whole, "{input:?}");
            assert_eq!(parsed.is_some_and(|p| p.matches(&id)), matches, "{input:?}");
        }
        assert!(IdPrefix::parse(&format!("{HEX}0")).is_none());
    }
}
