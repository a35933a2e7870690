//! The image metadata a stage carries beside its filesystem: what ENV, CMD,
//! LABEL, … set, inherited through FROM, and the history docker shows.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The image metadata a stage carries (the `config` of an OCI image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `KEY=value`, in order, each key once.
    pub env: Vec<String>,
    /// The default command (CMD), exec form; shell form already wrapped in
    /// `/bin/sh -c`. `None` when unset, which differs from an empty list.
    pub cmd: Option<Vec<String>>,
    /// The ENTRYPOINT, in the same form as `cmd`; `None` when unset.
    pub entrypoint: Option<Vec<String>>,
    /// Empty when unset.
    pub working_dir: String,
    /// Empty when unset.
    pub user: String,
    /// LABELs, later ones replacing earlier ones of the same key.
    pub labels: BTreeMap<String, String>,
    /// `80/tcp`, `53/udp`: a bare port gets `/tcp`.
    pub exposed_ports: BTreeSet<String>,
    /// VOLUME paths, absolute.
    pub volumes: BTreeSet<String>,
    /// STOPSIGNAL as written (`SIGTERM`, `9`).
    pub stop_signal: Option<String>,
    /// HEALTHCHECK; `Some` with test `["NONE"]` turns an inherited one off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// SHELL: the command shell form is wrapped in; `None` means `/bin/sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// ONBUILD triggers, each the instruction as written after `ONBUILD`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_build: Vec<String>,
    /// docker's `ArgsEscaped`: BuildKit sets it with every CMD (for Windows'
    /// sake, but on every platform) and a child inherits it; tools compare it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    /// MAINTAINER: the image's `author`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// One entry per instruction, oldest first; base image history included.
    pub history: Vec<History>,
}

/// HEALTHCHECK, as docker's image config holds it (durations in nanoseconds;
/// 0 means "inherit/the default").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// `--interval`.
    pub interval: u64,
    /// `--timeout`.
    pub timeout: u64,
    /// `--start-period`.
    pub start_period: u64,
    /// `--start-interval`.
    pub start_interval: u64,
    /// `--retries`.
    pub retries: u64,
}

/// The PATH docker gives a stage, a RUN step or a container whose image sets
/// none. The one copy in the workspace: the engine and the sandbox use it too.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One line of an image's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// When the entry was made (RFC 3339): kept from a base image's history;
    /// `None` for an entry of this build, which gets the image's time when the
    /// image is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Like docker: `RUN /bin/sh -c make`, `COPY app /app`, `ENV A=b`, `CMD ["x"]`.
    pub created_by: String,
    /// A base image's comment on the entry (`docker import` writes one); kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True for instructions that add no layer (everything but COPY and RUN).
    pub empty_layer: bool,
}
