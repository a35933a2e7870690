//! `--build-context`: the names a build hands the frontend, and the folders
//! the engine reads for those that are directories.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use kiln_frontend::NamedContext;

use super::BuildError;
use crate::context::dockerignore::DockerIgnore;
use crate::copy::SourceRoot;
use crate::store::reference;

/// What a `--build-context` name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContextSource {
    /// A folder, read with its own `.dockerignore`.
    Directory(PathBuf),
    /// `docker-image://REF`: the image REF.
    Image(String),
}

impl NamedContextSource {
    /// `--build-context NAME=VALUE`: the name (a valid image name, as in
    /// buildx, `:latest` dropped) and what it stands for.
    pub fn parse_flag(flag: &str) -> Result<(String, Self), BuildError> {
        let bad = |why| BuildError::NamedContextFlag(flag.to_owned(), why);
        let (name, value) = flag.split_once('=').ok_or_else(|| bad("it has no `=`"))?;
        if value.is_empty() {
            return Err(bad("the value is empty"));
        }
        let parsed = reference::Reference::parse(name)
            .map_err(|_| bad("NAME is not a valid image name (lowercase letters, digits, `.`, `_`, `-`, `/`)"))?;
        if parsed.digest.is_some() {
            return Err(bad("NAME may not hold a digest"));
        }
        let name = name.strip_suffix(":latest").unwrap_or(name);
        Ok((name.to_owned(), Self::parse(value)?))
    }

    /// `--build-context`'s value: `docker-image://REF` or a folder. Other
    /// sources BuildKit knows (URLs, git, `oci-layout://`, `target:`) are
    /// refused by name.
    pub fn parse(value: &str) -> Result<Self, BuildError> {
        if let Some(reference) = value.strip_prefix("docker-image://") {
            reference::Reference::parse(reference).map_err(BuildError::Name)?;
            return Ok(NamedContextSource::Image(reference.to_owned()));
        }
        let scheme = value
            .split_once("://")
            .map(|(s, _)| s)
            .filter(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)));
        if scheme.is_some() || value.starts_with("target:") || value.starts_with("git@") {
            return Err(BuildError::NamedContextKind(value.to_owned()));
        }
        Ok(NamedContextSource::Directory(PathBuf::from(value)))
    }
}

/// The named contexts as the frontend sees them.
pub(super) fn frontend(named: &BTreeMap<String, NamedContextSource>) -> BTreeMap<String, NamedContext> {
    let frontend = |source: &NamedContextSource| match source {
        NamedContextSource::Directory(_) => NamedContext::Directory,
        NamedContextSource::Image(reference) => NamedContext::Image(reference.clone()),
    };
    named.iter().map(|(name, source)| (name.clone(), frontend(source))).collect()
}

/// The folders the engine reads: each named folder checked, with its own
/// `.dockerignore` loaded.
pub(super) fn resolve(
    named: &BTreeMap<String, NamedContextSource>,
) -> Result<BTreeMap<String, SourceRoot>, BuildError> {
    let mut roots = BTreeMap::new();
    for (name, source) in named {
        if let NamedContextSource::Directory(path) = source {
            let bad = || BuildError::NamedContextDir { name: name.clone(), path: path.clone() };
            let root = path.canonicalize().map_err(|_| bad())?;
            if !root.is_dir() {
                return Err(bad());
            }
            let ignore = DockerIgnore::load(&root, None)?;
            roots.insert(name.clone(), SourceRoot::Context { root, ignore: Arc::new(ignore) });
        }
    }
    Ok(roots)
}
