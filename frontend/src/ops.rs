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
}
