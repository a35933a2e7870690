//! Registries in and out: pull an image into the store, push one from it,
//! the credentials and the settings both need.
//!
//! - [`client`]: one registry host as the distribution protocol sees it —
//!   `oci-client` for manifests and blobs (it also does the bearer-token
//!   dance), `reqwest` (which it already pulls in) for what it lacks. Plain
//!   http only for loopback hosts and hosts the config marks insecure; extra
//!   CAs from the config or `/etc/kiln/certs.d/<host>/ca.crt`; bounded retries
//!   with backoff for connection errors and 5xx.
//! - [`auth`]: credentials from docker's and podman's files and credential
//!   helpers, never shown ([`auth::Credential`]'s Debug redacts the secret).
//! - [`pull`]: manifest (an index picks the platform) → blobs, each streamed
//!   into the store as a content [`crate::content::Ingester`], which verifies
//!   it → layers extracted → name, last.
//! - [`push`]: blobs the registry has are skipped, blobs of another
//!   repository of the same registry mounted (see [`sources`]), the rest
//!   uploaded in parallel, in chunks that resume after a dropped connection;
//!   layers in the compression asked for ([`compress`]); the manifest (the
//!   tag) last.
//!
//! The library is synchronous; each operation runs on a runtime of its own
//! ([`block_on`]), on a thread of its own when the caller is inside one
//! (`kiln::build` is), since runtimes do not nest.

pub mod auth;
pub mod client;
pub mod pull;
pub mod push;
pub mod sources;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use crate::outbound::Compression;
pub use client::{Client, RegistryError};
pub use pull::{ensure, pull, PullOptions, PullPolicy};
pub use push::{push, PushOptions, Pushed};

/// The settings of one registry host (`[registries."host:port"]` in kiln's
/// config file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    /// Speak plain http to it (loopback hosts always may).
    pub insecure: bool,
    /// A PEM file of CA certificates to trust for it, besides the system's.
    pub ca: Option<PathBuf>,
    /// Registries to try first for pulls (`http://127.0.0.1:5000`,
    /// `mirror.example`), in order; the host itself is tried last.
    pub mirrors: Vec<String>,
}

/// Everything the registry client is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Per host (`docker.io`, `127.0.0.1:5000`).
    pub hosts: BTreeMap<String, HostConfig>,
    /// Where `<host>/ca.crt` is looked for (docker's `/etc/docker/certs.d`).
    pub certs_dir: PathBuf,
    /// Where credentials come from.
    pub auth: auth::AuthFiles,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { hosts: BTreeMap::new(), certs_dir: PathBuf::from("/etc/kiln/certs.d"), auth: auth::AuthFiles::default() }
    }
}

impl RegistryConfig {
    /// The settings of `host`, defaults when the config has none.
    pub fn host(&self, host: &str) -> HostConfig {
        self.hosts.get(host).cloned().unwrap_or_default()
    }
}

/// An image platform: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// `linux`.
    pub os: String,
    /// Go's name: `amd64`, `arm64`.
    pub architecture: String,
    /// `v7`, `v8`, when it matters.
    pub variant: Option<String>,
}

impl Platform {
    /// The host's.
    pub fn host() -> Self {
        Self { os: "linux".into(), architecture: crate::image::host_architecture().into(), variant: None }
    }

    /// `os/arch[/variant]` as `--platform` takes it.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let parts: Vec<&str> = text.split('/').collect();
        let ok = (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty());
        if !ok {
            return Err(RegistryError::Platform(text.to_owned()));
        }
        Ok(Self { os: parts[0].into(), architecture: parts[1].into(), variant: parts.get(2).map(|v| v.to_string()) })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What happened to one blob during a pull or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transfer {
    /// Already where it had to go: nothing moved.
    Exists { digest: String },
    /// Moving (`size` bytes).
    Started { digest: String, size: u64 },
    /// Moved.
    Done { digest: String, size: u64 },
    /// Mounted from another repository of the same registry.
    Mounted { digest: String, from: String },
}

/// Where transfer progress goes; called from many tasks.
pub trait TransferProgress: Send + Sync {
    /// One blob's state changed.
    fn transfer(&self, _event: &Transfer) {}
}

/// A [`TransferProgress`] that reports nothing.
pub struct Quiet;

impl TransferProgress for Quiet {}

/// Run `future` (registry calls: [`Client`]'s are async) to completion on a
/// runtime of its own. Inside a runtime already (a build's solver), on a new
/// thread: tokio's `block_on` there would panic.
pub fn block_on<F>(future: F) -> Result<F::Output, RegistryError>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    let run = move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(RegistryError::Runtime)?;
        Ok(runtime.block_on(future))
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return run();
    }
    std::thread::scope(|s| s.spawn(run).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse() {
        for (text, want) in [
            ("linux/amd64", Some("linux/amd64")),
            ("linux/arm/v7", Some("linux/arm/v7")),
            ("linux", None),
            ("linux//v7", None),
            ("a/b/c/d", None),
        ] {
            assert_eq!(Platform::parse(text).ok().map(|p| p.to_string()).as_deref(), want, "{text}");
        }
    }

    #[test]
    fn block_on_works_inside_a_runtime_too() {
        assert_eq!(block_on(async { 1 }).unwrap(), 1);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(rt.block_on(async { block_on(async { 2 }).unwrap() }), 2);
    }
}
