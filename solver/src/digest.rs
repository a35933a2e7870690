//! Identity from canonical bytes: the [`Digest`] of content, and the
//! [`CacheKey`] of a result.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A sha256 content digest, written `sha256:<64 hex>`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

/// A digest string that is not `sha256:` followed by 64 lowercase hex digits.
#[derive(Debug, thiserror::Error)]
#[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
pub struct DigestError(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(bytes))
    }

    /// The digest a finished hasher holds.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Digest(format!("sha256:{}", hex::encode(hasher.finalize())))
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The whole `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
                Ok(Digest(s.to_owned()))
            }
            _ => Err(DigestError(s.to_owned())),
        }
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &self.0)
    }
}

/// The identity of a vertex's result: equal keys, equal results.
///
/// Built from length-prefixed fields so no two different field lists encode to
/// the same bytes, and never from `std::hash::Hash`, whose output is not stable.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Debug)]
pub struct CacheKey(pub Digest);

impl CacheKey {
    /// Derive a key from a vertex digest, its inputs' keys and an optional content checksum.
    pub fn derive(vertex: &Digest, inputs: &[CacheKey], content: Option<&Digest>) -> Self {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(b"kiln-cache-key-v1");
        field(vertex.as_str().as_bytes());
        field(&(inputs.len() as u64).to_le_bytes());
        for input in inputs {
            field(input.0.as_str().as_bytes());
        }
        field(content.map(Digest::as_str).unwrap_or("").as_bytes());
        CacheKey(Digest::from_hasher(h))
    }

    /// This key with `salt` mixed in: for an input every result depends on
    /// beyond the graph (see [`Solver::key_salt`](crate::Solver::key_salt)).
    pub fn salted(&self, salt: &Digest) -> Self {
        let mut h = Sha256::new();
        for bytes in [&b"kiln-cache-key-salt-v1"[..], self.0.as_str().as_bytes(), salt.as_str().as_bytes()] {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        CacheKey(Digest::from_hasher(h))
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_well_formed_digests() {
        let good = Digest::of(b"x");
        assert_eq!(good.as_str().parse::<Digest>().unwrap(), good);
        for bad in ["", "sha256:", "sha512:00", "sha256:ABC", &format!("{good}0")] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn cache_key_depends_on_every_field() {
        let v = Digest::of(b"v");
        let k = CacheKey(Digest::of(b"k"));
        let c = Digest::of(b"c");
        let base = CacheKey::derive(&v, std::slice::from_ref(&k), Some(&c));
        assert_eq!(base, CacheKey::derive(&v, std::slice::from_ref(&k), Some(&c)));
        assert_ne!(base, CacheKey::derive(&Digest::of(b"w"), std::slice::from_ref(&k), Some(&c)));
        assert_ne!(base, CacheKey::derive(&v, &[], Some(&c)));
        assert_ne!(base, CacheKey::derive(&v, &[k], None));
        assert_ne!(base.salted(&c), base);
        assert_ne!(base.salted(&c), base.salted(&v));
        assert_eq!(base.salted(&c), base.salted(&c));
    }
}
