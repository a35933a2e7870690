//! What a build's RUN steps may use beyond the Dockerfile: secrets, ssh
//! agents, entitlements, limits.

use crate::sandbox::Limits;
use crate::secrets::{SecretSource, SshSource};

/// `kiln build`'s options for RUN steps.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--secret`, each id once.
    pub secrets: Vec<SecretSource>,
    /// `--ssh`, each id once.
    pub ssh: Vec<SshSource>,
    /// `--allow`.
    pub allow: Entitlements,
    /// `--memory`, `--pids-limit`, `--cpus`, `--step-timeout`, for every RUN.
    /// `pids`: `None` for the engine's default
    /// ([`crate::sandbox::cgroup::DEFAULT_PIDS_LIMIT`]), `Some(0)` for none.
    pub limits: Limits,
    /// `--debug-shell`: when a RUN fails, open a shell in its filesystem.
    pub debug_shell: bool,
}

/// `--allow`: what a Dockerfile may ask for only when the caller allows it,
/// as BuildKit's entitlements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entitlements {
    /// `network.host`: `RUN --network=host`.
    pub network_host: bool,
    /// `security.insecure`: `RUN --security=insecure`.
    pub security_insecure: bool,
}
