//! The engine: kiln's implementation of the solver's `Executor` — what each
//! operation of the build graph does, over the store, snapshots and the
//! sandbox. One file per operation: [`source`] (FROM: scratch and images),
//! [`copy`] (COPY), [`add`] (ADD of URLs and git repositories), [`exec`] (RUN), [`mkdir`]
//! (WORKDIR's directory). Results are remembered in the build
//! [`cache`](crate::cache).

mod add;
mod copy;
mod debug_shell;
mod exec;
mod listing;
mod mkdir;
pub mod run_mounts;
mod source;

use std::collections::BTreeMap;

pub(crate) use exec::step_limits;

use kiln_frontend::{CopyFrom, Op};
use kiln_solver::{CacheKey, Cancellation, Digest, ExecContext, Executor, Lookup};

use crate::cache::{CacheError, CacheRecord, CacheStorage, KeyLocks, LocalCache};
use crate::copy::{CopyError, SourceRoot};
use crate::image::ImageError;
use crate::layer::{Layer, LayerError};
use crate::sandbox::{Sandbox, SandboxError};
use crate::snapshot::{SnapshotError, Snapshotter};
use crate::store::{Store, StoreError};

/// The result of a vertex: a filesystem as a stack of layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsState {
    /// Bottom first.
    pub layers: Vec<Layer>,
    /// When the newest layer was made (RFC 3339). Kept in the cache, so an image
    /// rebuilt from cache gets the same config, and the same digest.
    pub created: Option<String>,
}

impl FsState {
    /// This filesystem with `layer` on top, made now.
    fn with(&self, layer: Layer) -> FsState {
        let mut layers = self.layers.clone();
        layers.push(layer);
        FsState { layers, created: Some(crate::image::now_rfc3339()) }
    }
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// `command` is quoted, and shortened when long (see [`kiln_frontend::Shortened::quoted`]).
    #[error("process {command} did not complete successfully: exit code: {code}{}{}", exec::tail_text(.tail), exec::hint_text(.hint))]
    RunFailed { command: String, code: i32, tail: Vec<String>, hint: Option<String> },
    /// The kernel's OOM killer killed a process of the step, which then failed.
    #[error("out of memory (the limit is {limit}): process {command} was killed; raise --memory{}", exec::tail_text(.tail))]
    OutOfMemory { command: String, limit: String, tail: Vec<String> },
    /// The step ran past `--step-timeout`; all of its processes were killed.
    #[error("timed out after {after}: process {command} was killed; raise --step-timeout{}", exec::tail_text(.tail))]
    TimedOut { command: String, after: String, tail: Vec<String> },
    #[error("the step was cancelled because another step failed")]
    Cancelled,
    #[error(transparent)]
    Copy(#[from] CopyError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Fetch(#[from] crate::fetch::FetchError),
    #[error("image {name}")]
    BadImage {
        name: String,
        #[source]
        source: ImageError,
    },
    #[error(transparent)]
    Mkdir(#[from] mkdir::MkdirError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error(transparent)]
    RunMount(#[from] run_mounts::RunMountError),
    #[error("COPY from the build context, but this build has no context")]
    NoContext,
    #[error("no build context named {0:?} was given: pass --build-context {0}=DIR")]
    NoNamedContext(String),
    /// BuildKit's entitlement: the host's network only when the caller allows it.
    #[error("RUN --network=host needs the entitlement network.host: pass --allow network.host to kiln build")]
    NetworkHostNotAllowed,
    /// An operation this engine cannot run yet.
    #[error("{0} is not supported yet")]
    Unsupported(String),
}

/// What the engine needs to run a build's steps.
pub struct Engine {
    store: Store,
    snapshots: Snapshotter,
    sandbox: Sandbox,
    cache: Box<dyn CacheStorage>,
    context: Option<SourceRoot>,
    /// `--build-context NAME=DIR`: each directory, with its own .dockerignore.
    named: BTreeMap<String, SourceRoot>,
    downloads: crate::fetch::http::Downloads,
    resolved: crate::fetch::Resolved,
    git_mtime: crate::fetch::git::Mtime,
    /// `SOURCE_DATE_EPOCH`: no file time in a layer this engine writes is later.
    epoch: Option<u64>,
    /// Secrets, ssh agents, entitlements and limits for RUN steps.
    run: crate::build::RunOptions,
    /// The keys this build is running, locked against other builds.
    locks: KeyLocks,
    explain: Option<std::sync::Arc<crate::explain::Explainer>>,
    /// What each context folder's files held when last read.
    indexes: listing::Indexes,
    runs_ahead: exec::RunsAhead,
}

impl Engine {
    /// An engine over `store`, its build cache in the store; `context` is where
    /// COPY reads from (`None` for a build without a context).
    pub fn new(store: &Store, context: Option<SourceRoot>) -> Result<Self, EngineError> {
        let exe = std::env::current_exe().map_err(SandboxError::Spawn)?;
        Ok(Self {
            store: store.clone(),
            snapshots: Snapshotter::new(store),
            sandbox: Sandbox::new(&exe, &store.work_dir()),
            cache: Box::new(LocalCache::new(store)),
            context,
            named: BTreeMap::new(),
            downloads: crate::fetch::http::Downloads::new(store),
            resolved: Default::default(),
            git_mtime: crate::fetch::git::Mtime::from_env(),
            epoch: None,
            run: Default::default(),
            locks: KeyLocks::new(store),
            explain: None,
            indexes: listing::Indexes::new(store),
            runs_ahead: Default::default(),
        })
    }

    /// Re-execute `exe` as the sandbox (`kiln __sandbox`) instead of this
    /// process's own executable, which is not kiln when kiln is a library.
    pub fn with_sandbox_exe(mut self, exe: &std::path::Path) -> Self {
        self.sandbox = Sandbox::new(exe, &self.store.work_dir());
        self
    }

    /// Give files of git sources the commit's time (as when `SOURCE_DATE_EPOCH`
    /// is set) or their checkout's.
    pub fn with_git_mtime(mut self, mtime: crate::fetch::git::Mtime) -> Self {
        self.git_mtime = mtime;
        self
    }

    /// Write every file time later than `epoch` (`SOURCE_DATE_EPOCH`) as
    /// `epoch`, in every layer (COPY, ADD, RUN), and give git sources their
    /// commit's time, as BuildKit does when the epoch is set.
    pub fn with_epoch(mut self, epoch: Option<u64>) -> Self {
        self.epoch = epoch;
        self.git_mtime = match epoch {
            Some(_) => crate::fetch::git::Mtime::Commit,
            None => crate::fetch::git::Mtime::Checkout,
        };
        self
    }

    /// What RUN steps may use: secrets, ssh agents, entitlements, limits.
    pub fn with_run_options(mut self, run: crate::build::RunOptions) -> Self {
        self.run = run;
        self
    }

    /// The operations the build will look up or run: while its first steps
    /// run, sandboxes are started for its RUN steps (see `exec::RunsAhead`).
    /// Called after [`Engine::with_sandbox_exe`].
    pub fn with_ops_ahead<'a>(mut self, ops: impl IntoIterator<Item = &'a Op>) -> Self {
        let runs = ops.into_iter().filter_map(|op| match op {
            Op::Exec(e) => Some(e.network),
            _ => None,
        });
        self.runs_ahead = exec::RunsAhead::new(runs);
        self
    }

    /// Keep the build cache in `cache` instead of the store.
    pub fn with_cache(mut self, cache: impl CacheStorage + 'static) -> Self {
        self.cache = Box::new(cache);
        self
    }

    /// Keep what fed each step's key, and tell why the first step missed.
    pub fn with_explainer(mut self, explain: std::sync::Arc<crate::explain::Explainer>) -> Self {
        self.explain = Some(explain);
        self
    }

    /// Where `COPY --from=NAME` reads for each directory given as a named context.
    pub fn with_named_contexts(mut self, named: BTreeMap<String, SourceRoot>) -> Self {
        self.named = named;
        self
    }

    fn context(&self) -> Result<&SourceRoot, EngineError> {
        self.context.as_ref().ok_or(EngineError::NoContext)
    }

    /// The folder a COPY reads from when it reads one from the host: the
    /// build context or a named one; `None` for a stage or an image.
    fn host_source(&self, from: &CopyFrom) -> Result<Option<&SourceRoot>, EngineError> {
        match from {
            CopyFrom::Context => self.context().map(Some),
            CopyFrom::NamedContext(name) => {
                self.named.get(name).map(Some).ok_or_else(|| EngineError::NoNamedContext(name.clone()))
            }
            _ => Ok(None),
        }
    }
}

impl Executor for Engine {
    type Op = Op;
    type Output = FsState;
    type Error = EngineError;

    fn content_checksum(&self, op: &Op) -> Result<Option<Digest>, EngineError> {
        match op {
            Op::Copy(c) if matches!(c.from, CopyFrom::Url | CopyFrom::Git { .. }) => self.add_checksum(c),
            Op::Copy(c) => match self.host_source(&c.from)? {
                Some(root) => Ok(Some(self.host_checksum(root, c)?)),
                None => Ok(None),
            },
            Op::Exec(e) => self.mounts_checksum(e),
            _ => Ok(None),
        }
    }

    fn load(&self, key: &CacheKey, op: &Op, cancellation: &Cancellation) -> Result<Option<FsState>, EngineError> {
        let found = || self.cache.load(key).map(|r| FsState { layers: r.layers, created: r.created });
        if let Some(hit) = found() {
            self.runs_ahead.found_in_cache(op);
            return Ok(Some(hit));
        }
        // Another build may be running this very step: wait for it, then look
        // again. Held from here until the result is saved or the step fails.
        if !self.locks.acquire(key, &|| cancellation.is_cancelled())? {
            return Err(EngineError::Cancelled);
        }
        let hit = found();
        if hit.is_some() {
            self.locks.release(key);
            self.runs_ahead.found_in_cache(op);
        }
        Ok(hit)
    }

    fn looked_up(&self, lookup: &Lookup<'_, Op>) {
        if let Some(explain) = &self.explain {
            let files = || match &lookup.vertex.op {
                // Files that changed since the key was made are not what it lists.
                Op::Copy(c) => {
                    let listing = self.copy_listing(c).ok().flatten();
                    listing.filter(|l| Some(&l.checksum) == lookup.content).map(|l| l.entries)
                }
                _ => None,
            };
            explain.looked_up(lookup, files);
        }
    }

    fn execute(&self, ctx: &ExecContext, op: &Op, inputs: &[FsState]) -> Result<FsState, EngineError> {
        self.warm_ahead(op);
        let result = self.run_op(ctx, op, inputs);
        if result.is_err() {
            self.locks.release(ctx.key());
        }
        // Whatever an operation stopped on once the build was cancelled
        // (a layer writer refusing to write, say), it stopped for that.
        result.map_err(|e| if ctx.is_cancelled() { EngineError::Cancelled } else { e })
    }

    fn save(&self, key: &CacheKey, output: &FsState) -> Result<(), EngineError> {
        let saved = self.cache.save(key, &CacheRecord::new(output.layers.clone(), output.created.clone()));
        if saved.is_ok() {
            if let Some(explain) = &self.explain {
                explain.saved(key);
            }
        }
        self.locks.release(key);
        Ok(saved?)
    }
}

impl Engine {
    fn run_op(&self, ctx: &ExecContext, op: &Op, inputs: &[FsState]) -> Result<FsState, EngineError> {
        match op {
            Op::Scratch => Ok(FsState::default()),
            Op::Image { name, digest } => source::image(&self.store, name, digest),
            Op::Copy(c) if matches!(c.from, CopyFrom::Url | CopyFrom::Git { .. }) => self.add(ctx, c, inputs),
            Op::Copy(c) => self.copy(ctx, c, inputs),
            Op::Exec(e) => self.exec(ctx, e, inputs),
            Op::Mkdir(m) => self.mkdir(m, inputs),
        }
    }
}
