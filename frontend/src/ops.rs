//! The operations a Dockerfile lowers to. They are the `O` of `kiln_solver::Graph<O>`:
//! everything in them is part of a vertex digest, so they hold no host paths, no
//! timestamps and only ordered collections.

use serde::{Deserialize, Serialize};

/// One build step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// An empty filesystem (`FROM scratch`). No inputs.
    Scratch,
    /// A local image. No inputs. `digest` pins its manifest, so the vertex (and
    /// every step after it) changes when the image behind the name changes.
    Image {
        /// The name as resolved, e.g. `busybox:latest`.
        name: String,
        /// The manifest digest, `sha256:…`.
        digest: String,
    },
    /// COPY. Input 0 is the filesystem copied into; with [`CopyFrom::Input`],
    /// input 1 is the filesystem copied from.
    Copy(CopyOp),
    /// RUN. Input 0 is the root filesystem it runs on.
    Exec(ExecOp),
}

/// Where a COPY reads from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyFrom {
    /// The build context (after .dockerignore).
    Context,
    /// The result of the vertex that is input 1 (an earlier stage or an image).
    Input,
}

/// A COPY, with every word already expanded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyOp {
    /// Where from.
    pub from: CopyFrom,
    /// Source paths as written (may hold `*`, `?`, `[…]` wildcards), relative to the
    /// context root or to the source filesystem's root. Never empty.
    pub sources: Vec<String>,
    /// Absolute destination: the WORKDIR is already applied to a relative one. A
    /// trailing `/` is kept, because it means "into this directory".
    pub dest: String,
    /// `--chown=user[:group]` as written, if given.
    pub chown: Option<String>,
    /// `--chmod=` as written (octal), if given.
    pub chmod: Option<String>,
}

/// A RUN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    /// The command. Shell form is already wrapped: `["/bin/sh", "-c", "…"]`.
    pub args: Vec<String>,
    /// The environment, `KEY=value`, in the order the image config would list it:
    /// the base image's Env, then the stage's ENV, then ARGs in scope (which do not
    /// reach the image config). Does not hold a default PATH: the engine adds one
    /// when none is set.
    pub env: Vec<String>,
    /// Absolute working directory (`/` when none was set).
    pub cwd: String,
    /// `user[:group]` as written in USER, or empty for root.
    pub user: String,
}
