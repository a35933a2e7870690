//! kiln's Dockerfile frontend: Dockerfile text in, a content-addressed build graph out.
//!
//! The pipeline is one module per stage, like BuildKit's:
//! `parser` (text → [`parser::Node`]s with line and column) →
//! `instructions` (typed instructions) → `shell` (word expansion) →
//! `convert` (stages → a [`BuildGraph`] of [`ops::Op`] vertices).
//!
//! It does no I/O: the caller hands in the Dockerfile text and an [`ImageResolver`]
//! that looks base images up in whatever store it has.

pub mod ops;

use std::collections::{BTreeMap, BTreeSet};

use kiln_solver::{Digest, Graph};
use serde::{Deserialize, Serialize};

pub use ops::{CopyFrom, CopyOp, ExecOp, Op};

/// The image metadata a stage carries (the `config` of an OCI image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `KEY=value`, in order, each key once.
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// Empty when unset.
    pub working_dir: String,
    /// Empty when unset.
    pub user: String,
    pub labels: BTreeMap<String, String>,
    /// `80/tcp`, `53/udp`: a bare port gets `/tcp`.
    pub exposed_ports: BTreeSet<String>,
    /// One entry per instruction, oldest first; base image history included.
    pub history: Vec<History>,
}

/// One line of an image's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Like docker: `RUN /bin/sh -c make`, `COPY app /app`, `ENV A=b`, `CMD ["x"]`.
    pub created_by: String,
    /// True for instructions that add no layer (everything but COPY and RUN).
    pub empty_layer: bool,
}

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
}

/// The result of lowering a Dockerfile.
#[derive(Debug, Clone)]
pub struct BuildGraph {
    /// Every vertex the target stage needs (and nothing else).
    pub graph: Graph<Op>,
    /// The vertex whose result is the image's filesystem.
    pub target: Digest,
    /// The image config of the target stage, history included.
    pub config: ImageConfig,
    /// Things worth telling the user that do not stop the build (unused build args…).
    pub warnings: Vec<String>,
}
