use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What to run, handed from the engine to `kiln __sandbox` as a JSON file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// The root filesystem, already mounted by the engine (an overlay).
    pub rootfs: PathBuf,
    /// The command and its arguments; `args[0]` is looked up in the PATH of `env`.
    pub args: Vec<String>,
    /// `KEY=value`.
    pub env: Vec<String>,
    /// Absolute working directory inside the rootfs, created when missing.
    pub cwd: String,
    /// `user[:group]`, names or numbers; empty for root.
    pub user: String,
    /// The UTS namespace's hostname.
    pub hostname: String,
}
