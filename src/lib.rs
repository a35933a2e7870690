//! kiln: build OCI images from Dockerfiles, without a daemon and without root.
//!
//! The library behind the `kiln` command: the store, snapshots, layers, the
//! sandbox, the build engine, image import and export. A build is one call,
//! [`build()`]; running an image is [`container::run`]. The command (`main.rs`,
//! with its `cli/` flags and `commands/`) only enters kiln's namespaces, reads
//! its settings and calls these.

#![warn(unreachable_pub)]

pub mod build;
pub mod cache;
pub mod container;
pub mod content;
pub mod context;
pub mod copy;
pub mod digest;
pub mod docker_config;
pub mod fetch;
pub mod flags;
pub mod fsutil;
pub mod history;
pub mod host;
pub mod image;
pub mod image_io;
pub mod layer;
pub mod ops;
pub mod outbound;
pub mod progress;
pub mod registry;
pub mod sandbox;
pub mod secrets;
pub mod snapshot;
pub mod store;
pub mod users;

pub use build::{build, BuildError, BuildRequest, BuildResult};

pub use kiln_frontend::DEFAULT_PATH;
