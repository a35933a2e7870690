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
    /// WORKDIR: the directory (and its missing parents) made on input 0, so it
    /// exists in the image even when no later step writes there.
    Mkdir(MkdirOp),
}

/// Where a COPY or ADD reads from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyFrom {
    /// The build context (after .dockerignore).
    #[default]
    Context,
    /// The result of the vertex that is input 1 (an earlier stage or an image).
    Input,
    /// A named build context given as a directory (`--build-context NAME=DIR`),
    /// after its own .dockerignore; sources are relative to its root.
    NamedContext(String),
    /// `ADD <url>`: each source is an `http(s)://` URL, fetched at build time.
    Url,
    /// `ADD <git url>`: the one source is `url#ref:subdir`, cloned at build time.
    Git {
        /// `--keep-git-dir`: keep the `.git` folder in the copy.
        keep_git_dir: bool,
    },
    /// `COPY <<EOF`: the files come from the Dockerfile itself; each source
    /// names one of them.
    Inline(Vec<InlineFile>),
}

/// A file whose content is written in the Dockerfile (a heredoc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineFile {
    /// For COPY: the file name (the heredoc's delimiter word); for RUN: the
    /// absolute path the step sees it at.
    pub name: String,
    /// Expanded already when the heredoc's delimiter is unquoted.
    pub content: String,
}

/// WORKDIR's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkdirOp {
    /// Absolute and clean.
    pub path: String,
    /// `user[:group]` (as in USER) who owns the directories made; empty for root.
    pub user: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A COPY or ADD, with every word already expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// `--chmod=` as written (octal, or symbolic such as `u+x`), if given.
    pub chmod: Option<String>,
    /// ADD: local archives among the sources are extracted into `dest` (ADD's
    /// default; `--unpack` also asks it of a URL). Always false for COPY.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unpack: bool,
    /// ADD `--checksum=sha256:…` of a URL (or a git commit), checked after the fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `--link`: the layer does not depend on the files under `dest` in the base.
    #[serde(default, skip_serializing_if = "is_false")]
    pub link: bool,
    /// `--parents`: keep each source's parent directories under `dest`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub parents: bool,
    /// `--exclude=PATTERN`, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
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
    /// Files the step sees outside its root filesystem, never in a layer (a
    /// heredoc script with a shebang); `args` name them by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<InlineFile>,
    /// The proxy build args (`HTTP_PROXY`…): in the step's environment, but out of
    /// the vertex digest (so out of the cache key) and out of the history.
    #[serde(skip)]
    pub proxy_env: Vec<String>,
    /// `RUN --mount=…`, in the order written. A secret or ssh mount is named by
    /// its id only: its value never reaches the digest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<RunMount>,
    /// `RUN --network=…`.
    #[serde(default, skip_serializing_if = "Network::is_default")]
    pub network: Network,
    /// `RUN --security=insecure`: every capability, no seccomp filter. The
    /// engine refuses it unless the build was given `--allow security.insecure`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// A network namespace of the step's own with outbound access (pasta or
    /// slirp4netns), and no way to the host's loopback.
    #[default]
    Default,
    /// A network namespace of its own with only `lo`.
    None,
    /// The host's network: only with `--allow network.host`.
    Host,
}

impl Network {
    /// Whether this is the default (kept out of the digest, so RUN steps
    /// written before `--network` existed keep their cache keys).
    pub fn is_default(&self) -> bool {
        *self == Network::Default
    }
}

/// Where a bind or cache mount reads from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountFrom {
    /// The build context (after .dockerignore); the engine puts a checksum of
    /// what is mounted into the step's cache key.
    #[default]
    Context,
    /// The result of the vertex that is the step's input `N` (N ≥ 1: input 0
    /// is the root filesystem): a stage or an image named by `from=`.
    Input(usize),
    /// A named build context given as a directory (`--build-context NAME=DIR`).
    NamedContext(String),
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Steps using the same id at the same time share one folder.
    #[default]
    Shared,
    /// A step that finds the id in use gets a folder of its own.
    Private,
    /// A step waits until no other uses the id.
    Locked,
}

/// One `RUN --mount=…`, every word expanded, defaults applied (BuildKit's).
/// Targets are absolute and clean (a relative one is taken from the WORKDIR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum RunMount {
    /// `type=bind` (the default type).
    Bind {
        /// Where the step sees it.
        target: String,
        /// `from=`: the context (default), a stage, an image or a named context.
        from: MountFrom,
        /// Relative to the root of `from`, clean, without a leading `/`;
        /// empty for its root.
        source: String,
        /// `rw`: the step may write there; what it writes is thrown away.
        rw: bool,
    },
    /// `type=cache`: a folder kept in the store between builds, never in a layer.
    Cache {
        /// Where the step sees it.
        target: String,
        /// `id=`, defaulting to the target as written, cleaned (BuildKit's
        /// default: relative when the target was). A given id holds no `/`
        /// (the default may: the engine hashes ids into folder names).
        id: String,
        /// `ro`: the step may not write there.
        readonly: bool,
        /// `sharing=`.
        sharing: Sharing,
        /// `from=`: what a new cache starts with (with `source`); `None` for empty.
        from: Option<MountFrom>,
        /// `source=` inside `from`, clean and relative; empty for its root.
        source: String,
        /// Of the cache folder when it is made: 0o755, 0 and 0 by default.
        mode: u32,
        /// The owner `uid=`.
        uid: u32,
        /// The group `gid=`.
        gid: u32,
    },
    /// `type=tmpfs`.
    Tmpfs {
        /// Where the step sees it.
        target: String,
        /// `size=` in bytes; `None`: the kernel's default (half the memory).
        size: Option<u64>,
    },
    /// `type=secret`: the value of the build's `--secret id=ID`, as a file at
    /// `target` and/or in the environment variable `env`.
    Secret {
        /// `id=`.
        id: String,
        /// `None` when only `env` is given (BuildKit then mounts no file);
        /// else `/run/secrets/<id>` by default.
        target: Option<String>,
        /// `env=`: the variable that holds the value.
        env: Option<String>,
        /// `required=true`: the build fails before anything runs without it.
        required: bool,
        /// 0o400, 0 and 0 by default.
        mode: u32,
        /// The owner `uid=`.
        uid: u32,
        /// The group `gid=`.
        gid: u32,
    },
    /// `type=ssh`: the agent socket of the build's `--ssh ID=…`.
    Ssh {
        /// `default` unless given.
        id: String,
        /// `/run/buildkit/ssh_agent.N` by default (N counts the step's ssh mounts,
        /// from 0). The frontend sets `SSH_AUTH_SOCK` to the step's first one
        /// in [`ExecOp::env`] unless the environment sets it already, as
        /// BuildKit does: the engine need not add it.
        target: String,
        /// `required=true`: the build fails before anything runs without it.
        required: bool,
        /// 0o600, 0 and 0 by default.
        mode: u32,
        /// The owner `uid=`.
        uid: u32,
        /// The group `gid=`.
        gid: u32,
    },
}
