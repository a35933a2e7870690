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

mod agent;
mod check;
mod flags;
mod mount;
mod redact;

pub(crate) use check::check_exec;
pub use check::check_graph;
pub use flags::{entitlements_from_flags, secrets_from_flags, ssh_from_flags};
pub(crate) use mount::StepSecrets;
pub use redact::Redactor;

/// The most a secret may hold, as BuildKit's `MaxSecretSize` (500 KiB).
pub const MAX_SECRET_SIZE: u64 = 500 * 1024;

/// Why a build's secrets, ssh agents or entitlements cannot be used. None
/// of these messages holds a secret's value: only ids, variable names and
/// paths.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("invalid --secret {flag:?}: {why}")]
    SecretFlag { flag: String, why: String },
    #[error("--secret id={0} is given twice: give each id once")]
    DuplicateSecret(String),
    #[error("--secret id={id}: cannot read {}", .path.display())]
    SecretFile {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--secret id={id}: {} is not a regular file", .path.display())]
    SecretNotFile { id: String, path: PathBuf },
    #[error("--secret id={id}: {} holds {size} bytes; a secret may hold at most 500 KiB", .path.display())]
    SecretTooBig { id: String, path: PathBuf, size: u64 },
    #[error("invalid --ssh {flag:?}: {why}")]
    SshFlag { flag: String, why: String },
    #[error("--ssh {0} is given twice: give each id once")]
    DuplicateSsh(String),
    #[error(
        "--ssh {0}: SSH_AUTH_SOCK is not set: start an agent (eval $(ssh-agent); ssh-add) or pass --ssh {0}=/path/to/agent.sock"
    )]
    NoAgent(String),
    #[error("--ssh {0}: key files are not supported, only agent sockets: load the keys into an agent (ssh-add KEY) and pass --ssh {0}=$SSH_AUTH_SOCK")]
    SshKeys(String),
    #[error("--ssh {id}: {} is not a socket: pass an ssh agent's socket (such as $SSH_AUTH_SOCK)", .path.display())]
    NotASocket { id: String, path: PathBuf },
    #[error("--ssh {id}: cannot use {}", .path.display())]
    SshPath {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown --allow {0:?}: kiln knows network.host and security.insecure")]
    Entitlement(String),
    /// `place` is `Dockerfile:LINE: ` when known, as in every step error.
    #[error("{place}RUN --mount=type=secret,id={id},required: no secret {id:?} was given: pass --secret id={id},src=FILE (or id={id},env=VARIABLE)")]
    MissingSecret { place: String, id: String },
    #[error("{place}RUN --mount=type=ssh,id={id},required: no ssh agent {id:?} was given: pass --ssh {id} (for $SSH_AUTH_SOCK) or --ssh {id}=/path/to/agent.sock")]
    MissingSsh { place: String, id: String },
    #[error("{place}RUN --network=host needs the entitlement: pass --allow network.host")]
    NetworkHost { place: String },
    #[error("{place}RUN --security=insecure needs the entitlement: pass --allow security.insecure")]
    Insecure { place: String },
    #[error("secret {id:?}: {what}")]
    Mount {
        id: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
}
