//! The one place kiln's digest meets oci-spec's.
//!
//! kiln names blobs, cache keys and vertices with the solver's
//! [`kiln_solver::Digest`] (sha256 only: the one kind kiln stores); OCI
//! documents (manifests, descriptors, indexes) carry
//! [`oci_spec::image::Digest`], which admits any algorithm. Every conversion
//! goes through the two functions here, so the rule "a non-sha256 digest is
//! refused, never mangled" lives in one place.

pub use kiln_solver::{Digest, DigestError};

/// `d` as oci-spec's digest, for a descriptor.
pub fn to_oci(d: &Digest) -> oci_spec::image::Digest {
    // Every sha256:<64 hex> string is a valid OCI digest.
    d.as_str().parse().expect("a sha256 digest is a valid OCI digest")
}

/// The digest an OCI document names, as kiln stores it; an error for any
/// algorithm but sha256.
pub fn from_oci(d: &oci_spec::image::Digest) -> Result<Digest, DigestError> {
    d.to_string().parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_both_ways_and_refuses_other_algorithms() {
        let d = Digest::of(b"x");
        assert_eq!(from_oci(&to_oci(&d)).unwrap(), d);
        let hex = "a".repeat(128);
        for (oci, ok) in [(format!("sha512:{hex}"), false), (d.to_string(), true)] {
            let parsed: oci_spec::image::Digest = oci.parse().unwrap();
            assert_eq!(from_oci(&parsed).is_ok(), ok, "{oci}");
        }
    }
}
