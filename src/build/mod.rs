//! A build as one library call: [`build`] takes a [`BuildRequest`] (what
//! `kiln build` takes on its command line) and returns a [`BuildResult`].
//!
//! The path: Dockerfile → graph (the frontend, with base images looked up in
//! the store by [`resolver::StoreResolver`]) → solve (the solver over the
//! [`Engine`]) → image (config and manifest written to the store) → outputs
//! (archives, folders: [`Output`]) → names, last, so a build that fails
//! anywhere names nothing.
//!
//! Mounts: the kiln command lives in a private mount namespace of its own, so
//! none of its mounts can outlive it. A library caller need not: every overlay
//! a build mounts is a [`crate::snapshot::Mount`], unmounted when dropped,
//! whether the step succeeded, failed or was cancelled. A caller killed in the
//! middle of a build can leave mounts behind, which a private namespace would
//! have taken away with it. A caller that is not root must itself be root in a
//! user namespace first (as the kiln command is, see [`crate::sandbox::userns`]):
//! overlay mounts and the sandbox's id maps need it.

mod check;
mod epoch;
mod logs;
mod metadata;
mod named;
mod resolver;
mod run_options;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use check::{check, CheckOutcome};
use kiln_frontend::BuildOptions;
use kiln_solver::{Digest, Event, SolveError, Solver};
use oci_spec::image::Descriptor;

use crate::context::dockerignore::DockerIgnore;
use crate::context::ContextError;
use crate::copy::SourceRoot;
use crate::image::ImageError;
use crate::image_io::{ImageIoError, Named, Output};
use crate::ops::{Engine, EngineError};
use crate::store::{reference, Store, StoreError};

pub use named::NamedContextSource;
pub use run_options::{Entitlements, RunOptions};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("build context {0} is not a directory")]
    NoContext(PathBuf),
    #[error("invalid --build-context {0:?}: {1}; write NAME=DIR or NAME=docker-image://REF")]
    NamedContextFlag(String, &'static str),
    #[error("--build-context {0:?}: kiln takes NAME=DIR or NAME=docker-image://REF")]
    NamedContextKind(String),
    #[error("--build-context {name}={}: not a directory", .path.display())]
    NamedContextDir { name: String, path: PathBuf },
    #[error("reading the build context {0}")]
    Context(PathBuf, #[source] std::io::Error),
    #[error("cannot read the Dockerfile {0}: name one with -f, or add a Dockerfile to the context")]
    Dockerfile(PathBuf, #[source] std::io::Error),
    /// A Dockerfile that is not UTF-8 (kiln reads its text as UTF-8 only).
    #[error("{}:{line}:{column}: the Dockerfile is not UTF-8 (byte {byte:#04x}): save it as UTF-8", .path.display())]
    NotUtf8 { path: PathBuf, line: usize, column: usize, byte: u8 },
    #[error("invalid --build-arg {0:?}: the name is empty; write --build-arg NAME=VALUE")]
    BuildArg(String),
    #[error(
        "SOURCE_DATE_EPOCH={0:?} (a --build-arg, or the environment) is not a whole number of seconds since 1970: \
         give one such as 1700000000, or $(git log -1 --format=%ct)"
    )]
    SourceDateEpoch(String),
    #[error(transparent)]
    Name(StoreError),
    #[error(transparent)]
    Frontend(#[from] kiln_frontend::Error),
    #[error(transparent)]
    Ignore(#[from] ContextError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Limits(#[from] crate::sandbox::cgroup::CgroupError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("starting the build's threads")]
    Runtime(#[source] std::io::Error),
    /// `place` is `Dockerfile:LINE: ` when the failing step is known; `log`
    /// its whole output, when it printed any (see `logs`).
    #[error("{place}build failed{}", .log.as_ref().map(|l| format!("; the step's full output is in {}", l.display())).unwrap_or_default())]
    Solve {
        place: String,
        log: Option<PathBuf>,
        #[source]
        source: Box<SolveError<EngineError>>,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    NoCacheFilter(#[from] crate::explain::UnknownStage),
    #[error(transparent)]
    Gc(#[from] crate::gc::GcError),
    #[error("exporting the image to {dest}")]
    Output {
        dest: String,
        #[source]
        source: Box<ImageIoError>,
    },
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, Default)]
pub enum Dockerfile {
    /// `Dockerfile` in the context folder.
    #[default]
    InContext,
    /// A file.
    Path(PathBuf),
    /// Text in memory; `name` is what messages call it (`Dockerfile:3: …`).
    Text {
        /// The name in messages.
        name: String,
        /// The Dockerfile itself.
        text: String,
    },
}

/// What a build reports while it runs. Called from many threads; every
/// method does nothing unless implemented.
pub trait Progress: Send + Sync {
    /// A step started, was cached, printed a line, finished or failed.
    fn event(&self, _event: &Event) {}
    /// The Dockerfile has something worth a warning (given before any step runs).
    fn warning(&self, _message: &str) {}
    /// The image was written; `id` is its ID (config digest).
    fn image_written(&self, _id: &Digest) {}
    /// The image now has the name `name`.
    fn named(&self, _name: &str) {}
    /// A base image's blob is being pulled.
    fn transfer(&self, _event: &crate::registry::Transfer) {}
    /// The first step that missed the cache, and why (`kiln build --explain`).
    fn cache_miss(&self, _miss: &crate::explain::Miss) {}
}

/// A [`Progress`] that reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// Everything a build takes: what `kiln build` takes on its command line.
pub struct BuildRequest {
    /// The build context folder: COPY's sources, `.dockerignore`.
    pub context: PathBuf,
    /// The Dockerfile.
    pub dockerfile: Dockerfile,
    /// `ARG` values (see [`build_args_from_flags`] for docker's `--build-arg`).
    pub build_args: BTreeMap<String, String>,
    /// The stage to build instead of the last one.
    pub target: Option<String>,
    /// Names for the image (`NAME[:TAG]`), checked before any work. Without
    /// one, the image is kept without a name, reachable by its ID.
    pub tags: Vec<String>,
    /// Where the image goes (`-o`), each checked before any work: with
    /// [`Output::Image`] (the default) it is named `tags` in the store;
    /// without, it is kept there unnamed and `tags` name it in the archives.
    pub outputs: Vec<Output>,
    /// Run every step, even those with a cached result.
    pub no_cache: bool,
    /// Run the steps of these stages (by name), and so everything after
    /// them, even those with a cached result (`--no-cache-filter`).
    pub no_cache_filter: Vec<String>,
    /// How many steps may run at once; `None` for the number of CPUs.
    pub jobs: Option<usize>,
    /// Where progress goes.
    pub progress: Arc<dyn Progress>,
    /// The kiln binary the sandbox re-executes as `kiln __sandbox`; `None`
    /// for this process's own executable. A program that links kiln as a
    /// library (a test binary, say) must name the kiln binary here.
    pub sandbox_exe: Option<PathBuf>,
    /// When base images are pulled from their registry.
    pub pull: crate::registry::PullPolicy,
    /// Registries, mirrors and credentials for those pulls (and for registry caches).
    pub registry: crate::registry::RegistryConfig,
    /// Caches other builds exported (`--cache-from`), consulted in order on a
    /// miss in the store's own. One that cannot be read is warned about and
    /// skipped: a cache is never needed for a build to succeed.
    pub cache_from: Vec<crate::cache::CacheLocation>,
    /// Where to export the records this build used (`--cache-to`), before
    /// the image is named.
    pub cache_to: Vec<crate::cache::CacheExport>,
    /// `--build-context NAME=…`: names FROM and `COPY --from` look up before
    /// stages and images.
    pub named_contexts: BTreeMap<String, NamedContextSource>,
    /// Whether `.dockerignore` applies to the context: BuildKit applies it to
    /// a local folder, not to a context that came as an archive.
    pub dockerignore: bool,
    /// Secrets, ssh agents, entitlements and limits for RUN steps.
    pub run: RunOptions,
}

impl BuildRequest {
    /// A build of `context`'s Dockerfile with every option at its default.
    pub fn new(context: impl Into<PathBuf>) -> Self {
        Self {
            context: context.into(),
            dockerfile: Dockerfile::InContext,
            build_args: BTreeMap::new(),
            target: None,
            tags: Vec::new(),
            outputs: vec![Output::Image],
            no_cache: false,
            no_cache_filter: Vec::new(),
            jobs: None,
            progress: Arc::new(Silent),
            sandbox_exe: None,
            pull: crate::registry::PullPolicy::Missing,
            registry: crate::registry::RegistryConfig::default(),
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            named_contexts: BTreeMap::new(),
            dockerignore: true,
            run: RunOptions::default(),
        }
    }
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The image ID: its config digest, as docker's image ID is.
    pub id: Digest,
    /// The manifest's descriptor (its digest is what `name@sha256:…` names).
    pub manifest: Descriptor,
    /// The names given, normalised (`app` → `app:latest`).
    pub tags: Vec<String>,
    /// The frontend's warnings (also given to [`Progress::warning`]).
    pub warnings: Vec<String>,
}

/// Build an image into `store`. Creates a runtime of its own: not to be
/// called from inside an async runtime.
pub fn build(store: &Store, request: BuildRequest) -> Result<BuildResult, BuildError> {
    // Until the image is named, what this build writes is reachable from
    // nothing: no collection may run meanwhile (see `crate::gc`).
    let _in_use = crate::gc::StoreLock::shared(store)?;
    // Dropped after all below: the steps' scratch folders are gone when this returns.
    let _emptied = crate::store::trash::EmptiedOnDrop;
    let context = &request.context;
    if !context.is_dir() {
        return Err(BuildError::NoContext(context.clone()));
    }
    let (dockerfile_path, text, dockerfile_name) = read_dockerfile(&request)?;
    // Check every name first: a bad name must fail before any work, not after it.
    let tags = request.tags.iter().map(|t| reference::normalize(t)).collect::<Result<Vec<_>, _>>();
    let tags = tags.map_err(BuildError::Name)?;
    for output in &request.outputs {
        output.check().map_err(output_err(output))?;
    }
    let epoch = epoch::source_date_epoch(&request.build_args, |name| std::env::var(name).ok())?;
    // So are the limits: one that cannot be applied fails now, not at the first RUN.
    crate::sandbox::cgroup::Cgroup::check(&crate::ops::step_limits(&request.run.limits))?;
    // Named folders are checked before any work too.
    let named_roots = named::resolve(&request.named_contexts)?;
    let opts = frontend_options(&request, dockerfile_name);
    let resolver = resolver::StoreResolver {
        store,
        pull: request.pull,
        registry: &request.registry,
        progress: request.progress.clone(),
    };
    // What the RUN steps ask for, checked before any base is pulled: a
    // lowering over the store alone (a missing base stands in empty; what
    // that lowering cannot tell, the check after the real one still does).
    if let Ok(offline) = kiln_frontend::build_graph(&text, &opts, &resolver::Offline(resolver.clone())) {
        crate::secrets::check_graph(&offline, &opts.dockerfile_name, &request.run)?;
        crate::explain::no_cache_filter(&offline.places, &offline.stage_names, &request.no_cache_filter)?;
    }
    let graph = kiln_frontend::build_graph(&text, &opts, &resolver)?;
    for w in &graph.warnings {
        request.progress.warning(w);
    }
    // Before any step runs: a required secret or agent not given, or an
    // entitlement not allowed, is the Dockerfile line's error now.
    crate::secrets::check_graph(&graph, &opts.dockerfile_name, &request.run)?;
    let filtered = crate::explain::no_cache_filter(&graph.places, &graph.stage_names, &request.no_cache_filter)?;

    let context = context.canonicalize().map_err(|e| BuildError::Context(context.clone(), e))?;
    let ignore = match request.dockerignore {
        true => DockerIgnore::load(&context, dockerfile_path.as_deref())?,
        false => DockerIgnore::none(),
    };
    let explainer = explainer(store, &request, &context, dockerfile_path.as_deref(), &graph, filtered.clone());
    let root = SourceRoot::Context { root: context, ignore: Arc::new(ignore) };
    let mut imports = Vec::new();
    for from in &request.cache_from {
        match crate::cache::import(store, &request.registry, from) {
            Ok(Some(cache)) => imports.push(cache),
            Ok(None) => {}
            Err(e) => request.progress.warning(&format!("cache {} is not used: {}", describe(from), error_chain(&e))),
        }
    }
    let cache = Arc::new(crate::cache::Layered::new(store, imports));
    let mut engine = Engine::new(store, Some(root))?
        .with_cache(cache.clone())
        .with_named_contexts(named_roots)
        .with_run_options(request.run.clone())
        .with_explainer(Arc::new(explainer))
        .with_epoch(epoch);
    if let Some(exe) = &request.sandbox_exe {
        engine = engine.with_sandbox_exe(exe);
    }
    if let Ok(needed) = graph.graph.closure(&graph.target) {
        engine = engine.with_ops_ahead(needed.iter().map(|v| &v.op));
    }
    let jobs = request.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let progress = request.progress.clone();
    let (logs, no_logs) = logs::StepLogs::open(store);
    if let Some(e) = no_logs {
        progress.warning(&format!("the steps' output is not kept on disk: {e}"));
    }
    let logs = Arc::new(logs);
    let recorded = logs.clone();
    let solver = Solver::new(Arc::new(engine), jobs)
        .use_cache(!request.no_cache)
        .skip_cache_for(filtered.into_keys())
        .key_salt(epoch::key_salt(epoch))
        .on_event(move |e| {
            recorded.record(&e);
            progress.event(&e);
        });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BuildError::Runtime)?;
    let fs = runtime.block_on(solver.solve(&graph.graph, &graph.target)).map_err(|source| {
        // Name the failing step by its place in the Dockerfile, like every other error.
        let (place, log) = match &source {
            SolveError::Vertex { vertex, .. } => (
                graph.sources.get(vertex).map(|at| format!("{}:{}: ", opts.dockerfile_name, at.line)),
                logs.path(vertex),
            ),
            _ => (None, None),
        };
        BuildError::Solve { place: place.unwrap_or_default(), log, source: Box::new(source) }
    })?;

    // With an epoch, the image and its new history entries are dated by it,
    // not by when its newest layer was made.
    let created = epoch.map(crate::image::rfc3339).or(fs.created);
    let (manifest, id) = crate::image::write(store, &fs.layers, created.as_deref(), graph.config)?;
    request.progress.image_written(&id);
    let used = cache.used();
    for to in &request.cache_to {
        crate::cache::export(store, &request.registry, &used, &fs.layers, to)?;
    }
    let image = Named { manifest: manifest.clone(), names: tags.clone() };
    for output in &request.outputs {
        output.export(store, &image).map_err(output_err(output))?;
    }
    let in_store = request.outputs.contains(&Output::Image);
    if tags.is_empty() || !in_store {
        store.keep_unnamed(&manifest)?;
    }
    if in_store {
        for tag in &tags {
            store.tag(tag, &manifest)?;
            request.progress.named(tag);
        }
    }
    Ok(BuildResult { id, manifest, tags, warnings: graph.warnings })
}

/// The build's [`crate::explain::Explainer`]: its project is the context
/// folder and the Dockerfile (see the module docs there for why paths).
fn explainer(
    store: &Store,
    request: &BuildRequest,
    context: &Path,
    dockerfile: Option<&Path>,
    graph: &kiln_frontend::BuildGraph,
    filtered: BTreeMap<Digest, String>,
) -> crate::explain::Explainer {
    let dockerfile = match (dockerfile, &request.dockerfile) {
        (Some(path), _) => path.canonicalize().unwrap_or_else(|_| path.to_path_buf()).display().to_string(),
        (None, Dockerfile::Text { name, .. }) => name.clone(),
        (None, _) => String::new(),
    };
    let project = format!("{}\0{dockerfile}", context.display());
    let progress = request.progress.clone();
    let (places, stages) = (graph.places.clone(), graph.stage_names.clone());
    crate::explain::Explainer::new(store, project, places, stages, move |miss| progress.cache_miss(miss))
        .forced(request.no_cache, filtered)
}

/// An output's error, named by where it was going.
fn output_err(output: &Output) -> impl FnOnce(ImageIoError) -> BuildError + '_ {
    move |source| BuildError::Output {
        dest: output.dest().map_or_else(|| "type=image".to_owned(), |d| d.display().to_string()),
        source: Box::new(source),
    }
}

/// Where a cache is, as a message names it.
fn describe(location: &crate::cache::CacheLocation) -> String {
    match location {
        crate::cache::CacheLocation::Local(dir) => dir.display().to_string(),
        crate::cache::CacheLocation::Registry(reference) => reference.to_string(),
    }
}

/// An error and its causes on one line, for a warning.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

/// `--build-arg` values as docker reads them: `NAME=VALUE`, or `NAME` alone
/// for the value of the environment variable `NAME` (and, when there is none,
/// the ARG's default: the name is left out).
pub fn build_args_from_flags(
    flags: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, BuildError> {
    let mut build_args = BTreeMap::new();
    for kv in flags {
        // No ARG has an empty name: it is a typo, not something to ignore.
        if kv.is_empty() || kv.starts_with('=') {
            return Err(BuildError::BuildArg(kv.clone()));
        }
        if let Some((name, value)) = crate::flags::name_value(kv, &env) {
            build_args.insert(name.to_owned(), value);
        }
    }
    Ok(build_args)
}

/// The Dockerfile a request names: its path (none for a text: no
/// `<Dockerfile>.dockerignore` beside it either), its text and its name for
/// messages.
fn read_dockerfile(request: &BuildRequest) -> Result<(Option<PathBuf>, String, String), BuildError> {
    let context = &request.context;
    Ok(match &request.dockerfile {
        Dockerfile::Text { name, text } => (None, text.clone(), name.clone()),
        Dockerfile::InContext | Dockerfile::Path(_) => {
            let path = match &request.dockerfile {
                Dockerfile::Path(p) => p.clone(),
                _ => context.join("Dockerfile"),
            };
            let bytes = std::fs::read(&path).map_err(|e| BuildError::Dockerfile(path.clone(), e))?;
            let text = String::from_utf8(bytes).map_err(|e| not_utf8(&path, &e))?;
            let name = path.display().to_string();
            (Some(path), text, name)
        }
    })
}

/// What the frontend is told about a request.
fn frontend_options(request: &BuildRequest, dockerfile_name: String) -> BuildOptions {
    BuildOptions {
        dockerfile_name,
        build_args: request.build_args.clone(),
        target: request.target.clone(),
        named_contexts: named::frontend(&request.named_contexts),
        platform: Some(format!("linux/{}", crate::image::host_architecture())),
    }
}

/// Where the first byte that is not UTF-8 is, as the frontend names places.
fn not_utf8(path: &Path, e: &std::string::FromUtf8Error) -> BuildError {
    let bytes = e.as_bytes();
    let valid = std::str::from_utf8(&bytes[..e.utf8_error().valid_up_to()]).unwrap_or_default();
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    BuildError::NotUtf8 {
        path: path.to_path_buf(),
        line: valid.matches('\n').count() + 1,
        column: valid[line_start..].chars().count() + 1,
        byte: bytes[valid.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::build_args_from_flags;

    #[test]
    fn build_args_read_like_docker() {
        let env = |name: &str| (name == "FROM_ENV").then(|| "env value".to_owned());
        for (flags, want) in [
            (&["A=1"][..], Some(&[("A", "1")][..])),
            (&["A=1", "A=2"], Some(&[("A", "2")])),
            (&["A="], Some(&[("A", "")])),
            (&["A=b=c"], Some(&[("A", "b=c")])),
            (&["FROM_ENV"], Some(&[("FROM_ENV", "env value")])),
            (&["NOT_SET"], Some(&[])),
            (&["=x"], None),
            (&[""], None),
        ] {
            let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
            let got = build_args_from_flags(&flags, env).ok();
            let want = want.map(|w| w.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
            assert_eq!(got, want, "{flags:?}");
        }
    }
}
