//! `--cache-from` and `--cache-to` as buildx writes them:
//! `type=local,src=DIR`, `type=local,dest=DIR[,mode=min|max]`,
//! `type=registry,ref=REPO:TAG[,mode=min|max]`; `--cache-to` also takes
//! `compression=gzip|zstd` (gzip unless told).

use std::path::PathBuf;

use super::CacheError;
use crate::outbound::Compression;
use crate::store::reference::Reference;

/// Where a cache is, for reading or writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    /// An OCI layout folder.
    Local(PathBuf),
    /// A registry repository and tag.
    Registry(Reference),
}

/// Which records an export carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// The steps of the final stage: those whose result the image is built on.
    #[default]
    Min,
    /// Every step of the build, every stage's.
    Max,
}

/// `--cache-to`: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheExport {
    /// Where it goes.
    pub to: CacheLocation,
    /// Which records.
    pub mode: Mode,
    /// How the layers are compressed on the way out.
    pub compression: Compression,
}

impl CacheLocation {
    /// `--cache-from`'s value.
    pub fn parse_from(spec: &str) -> Result<Self, CacheError> {
        let (location, mode) = parse(spec, "src")?;
        if mode.is_some() {
            return Err(bad(spec, "mode= is for --cache-to"));
        }
        Ok(location)
    }
}

impl CacheExport {
    /// `--cache-to`'s value.
    pub fn parse(spec: &str) -> Result<Self, CacheError> {
        let mut compression = Compression::default();
        let mut rest = Vec::new();
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("compression", "gzip")) => compression = Compression::Gzip,
                Some(("compression", "zstd")) => compression = Compression::Zstd,
                Some(("compression", _)) => return Err(bad(spec, "compression is gzip or zstd")),
                _ => rest.push(field),
            }
        }
        let (to, mode) = parse(&rest.join(","), "dest").map_err(|e| match e {
            // The error names the spec as given, compression= included.
            CacheError::Spec { why, .. } => bad(spec, why),
            other => other,
        })?;
        Ok(Self { to, mode: mode.unwrap_or_default(), compression })
    }
}

fn bad(spec: &str, why: &'static str) -> CacheError {
    CacheError::Spec { spec: spec.to_owned(), why }
}

/// `type=…` with a path field named `path_field` (src or dest), a ref, a mode.
fn parse(spec: &str, path_field: &str) -> Result<(CacheLocation, Option<Mode>), CacheError> {
    let (mut kind, mut path, mut reference, mut mode) = (None, None, None, None);
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("type", v)) => kind = Some(v),
            Some((k, v)) if k == path_field && !v.is_empty() => path = Some(PathBuf::from(v)),
            Some(("ref", v)) if !v.is_empty() => reference = Some(v),
            Some(("mode", "min")) => mode = Some(Mode::Min),
            Some(("mode", "max")) => mode = Some(Mode::Max),
            Some(("mode", _)) => return Err(bad(spec, "the modes are min and max")),
            _ => return Err(bad(spec, "the fields are type, src (from) or dest (to), ref and mode")),
        }
    }
    let location = match (kind, path, reference) {
        (Some("local"), Some(p), None) => CacheLocation::Local(p),
        (Some("local"), _, _) if path_field == "src" => return Err(bad(spec, "type=local needs src=DIR")),
        (Some("local"), _, _) => return Err(bad(spec, "type=local needs dest=DIR")),
        (Some("registry"), None, Some(r)) => CacheLocation::Registry(
            Reference::parse(r).map_err(|source| CacheError::Reference { spec: spec.to_owned(), source })?,
        ),
        (Some("registry"), _, _) => return Err(bad(spec, "type=registry needs ref=REPOSITORY:TAG")),
        (Some(_), _, _) => return Err(bad(spec, "the types are local and registry")),
        (None, _, _) => return Err(bad(spec, "it has no type=")),
    };
    Ok((location, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_like_buildx() {
        let local = |p: &str| CacheLocation::Local(PathBuf::from(p));
        let registry = |r: &str| CacheLocation::Registry(Reference::parse(r).unwrap());
        for (spec, want) in [
            ("type=local,dest=/c", Some((local("/c"), Mode::Min))),
            ("type=local,dest=/c,mode=max", Some((local("/c"), Mode::Max))),
            (
                "type=registry,ref=127.0.0.1:5000/app:cache,mode=min",
                Some((registry("127.0.0.1:5000/app:cache"), Mode::Min)),
            ),
            ("type=local,src=/c", None),
            ("type=local", None),
            ("type=registry,ref=", None),
            ("type=registry,ref=bad//name", None),
            ("type=gha", None),
            ("dest=/c", None),
            ("type=local,dest=/c,mode=all", None),
            ("type=local,dest=/c,compression=lz4", None),
        ] {
            let got = CacheExport::parse(spec).ok().map(|e| (e.to, e.mode));
            assert_eq!(got, want, "--cache-to {spec}");
        }
        for (spec, want) in [
            ("type=local,dest=/c", Some(Compression::Gzip)),
            ("type=local,dest=/c,compression=zstd,mode=max", Some(Compression::Zstd)),
            ("type=local,src=/c,compression=zstd", None),
        ] {
            assert_eq!(CacheExport::parse(spec).ok().map(|e| e.compression), want, "--cache-to {spec}");
        }
        assert!(CacheLocation::parse_from("type=local,src=/c,compression=zstd").is_err());
        for (spec, want) in [
            ("type=local,src=/c", Some(local("/c"))),
            ("type=registry,ref=127.0.0.1:5000/app:cache", Some(registry("127.0.0.1:5000/app:cache"))),
            ("type=local,dest=/c", None),
            ("type=local,src=/c,mode=max", None),
        ] {
            assert_eq!(CacheLocation::parse_from(spec).ok(), want, "--cache-from {spec}");
        }
    }
}
