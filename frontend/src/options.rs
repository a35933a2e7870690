//! What a build hands the frontend besides the Dockerfile text: its options,
//! and the [`ImageResolver`] through which base images are looked up (the
//! frontend does no I/O of its own).

use std::collections::BTreeMap;

use crate::ImageConfig;

/// A base image, as the caller's store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The normalised name, e.g. `busybox:latest`.
    pub name: String,
    /// Manifest digest, `sha256:…`.
    pub digest: String,
    /// Its config: ENV, CMD, … and history are inherited by a stage built on it.
    pub config: ImageConfig,
}

/// Looks base images up. Implemented by the engine over its image store.
pub trait ImageResolver {
    /// Resolve `reference` (as written after FROM or `--from=`, expanded). `Ok(None)`
    /// when there is no such image; `Err` with a message when the lookup itself failed.
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String>;
}

/// What a build asks of the frontend besides the Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The Dockerfile's path as the user named it: errors start with it.
    pub dockerfile_name: String,
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// The platform built for and on, `os/arch[/variant]` (e.g. `linux/amd64`):
    /// the source of the predefined TARGET* and BUILD* ARGs. None: not predefined.
    pub platform: Option<String>,
    /// `--build-context NAME=…`: names that FROM and `COPY --from` look up
    /// before stages and images.
    pub named_contexts: BTreeMap<String, NamedContext>,
}

/// What a `--build-context` name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory (the engine knows where); read by `COPY --from=NAME`
    /// as [`crate::CopyFrom::NamedContext`], and usable as a base in FROM.
    Directory,
    /// `docker-image://REF`: the image REF stands in for the name.
    Image(String),
}
