//! Build secrets and ssh agents: what `kiln build --secret` and `--ssh` give
//! a build, and what RUN's `--mount=type=secret|ssh` mounts. A secret's value
//! is read only when a step mounts it, lives on kiln's private tmpfs while
//! the step runs, and never reaches a layer, the config, a cache key or the
//! logs (step output is redacted).

use std::path::PathBuf;

/// One `--secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSource {
    /// The id RUN's `--mount=type=secret,id=…` names.
    pub id: String,
    pub kind: SecretKind,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretKind {
    /// A file's content (`src=PATH`).
    File(PathBuf),
    /// An environment variable of kiln's (`env=VAR`).
    Env(String),
}

/// One `--ssh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSource {
    /// The id RUN's `--mount=type=ssh,id=…` names (`default` unless given).
    pub id: String,
    /// The agent socket (`$SSH_AUTH_SOCK` for `--ssh default`).
    pub socket: PathBuf,
}
