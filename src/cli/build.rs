//! `kiln build`: Dockerfile → graph (frontend) → solve (solver + engine) → image → names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use kiln_frontend::{BuildOptions, ImageResolver, ResolvedImage};
use kiln_solver::Solver;

use crate::context::dockerignore::DockerIgnore;
use crate::copy::SourceRoot;
use crate::ops::Engine;
use crate::progress::Plain;
use crate::store::{reference, Store};

#[derive(clap::Args)]
pub struct Args {
    /// Name the image NAME[:TAG] (repeatable).
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// The Dockerfile [default: CONTEXT/Dockerfile].
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Set a build-time variable, KEY=VALUE (repeatable).
    #[arg(long = "build-arg")]
    build_args: Vec<String>,
    /// Build this stage instead of the last one.
    #[arg(long)]
    target: Option<String>,
    /// Run every step, even those with a cached result.
    #[arg(long)]
    no_cache: bool,
    /// How many steps may run at once [default: the number of CPUs].
    #[arg(long)]
    jobs: Option<usize>,
    /// The build context folder.
    context: PathBuf,
}

/// Looks base images up in the store.
struct StoreResolver<'a>(&'a Store);

impl ImageResolver for StoreResolver<'_> {
    fn resolve(&self, reference: &str) -> Result<Option<ResolvedImage>, String> {
        let found = self.0.find(reference).map_err(|e| e.to_string())?;
        let Some(image) = found else { return Ok(None) };
        let (_, config) = self.0.image_parts(&image).map_err(|e| e.to_string())?;
        let meta = crate::image::inherited(&config);
        Ok(Some(ResolvedImage { name: image.name.clone(), digest: image.digest().to_string(), config: meta }))
    }
}

pub fn run(store: &Store, args: Args) -> anyhow::Result<()> {
    let context = &args.context;
    if !context.is_dir() {
        bail!("build context {} is not a directory", context.display());
    }
    let dockerfile = args.file.clone().unwrap_or_else(|| context.join("Dockerfile"));
    let text = std::fs::read_to_string(&dockerfile).with_context(|| {
        format!(
            "cannot read the Dockerfile {}: name one with -f, or add a Dockerfile to the context",
            dockerfile.display()
        )
    })?;
    // Check every name first: a bad -t must fail before any work, not after it.
    let tags = args.tags.iter().map(|t| reference::normalize(t)).collect::<Result<Vec<_>, _>>()?;
    let mut build_args = BTreeMap::new();
    for kv in &args.build_args {
        let (name, value) = kv.split_once('=').map_or((kv.as_str(), None), |(k, v)| (k, Some(v)));
        // No ARG has an empty name: it is a typo, not something to ignore.
        if name.is_empty() {
            bail!("invalid --build-arg {kv:?}: the name is empty; write --build-arg NAME=VALUE");
        }
        let value = match value {
            Some(v) => v.to_owned(),
            // docker: `--build-arg NAME` takes the value from the environment,
            // and leaves the ARG's default alone when there is none.
            None => match std::env::var(name) {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        build_args.insert(name.to_owned(), value);
    }
    let opts = BuildOptions {
        dockerfile_name: display_name(&dockerfile),
        build_args,
        target: args.target.clone(),
        platform: Some(format!("linux/{}", crate::image::host_architecture())),
    };
    let graph = kiln_frontend::build_graph(&text, &opts, &StoreResolver(store))?;
    for w in &graph.warnings {
        eprintln!("warning: {}", super::output::escape(w));
    }

    let context = context.canonicalize().with_context(|| format!("reading the build context {}", context.display()))?;
    let dockerfile = dockerfile.canonicalize().unwrap_or(dockerfile);
    let ignore = DockerIgnore::load(&context, &dockerfile)?;
    let root = SourceRoot::Context { root: context, ignore: Arc::new(ignore) };
    let engine = Arc::new(Engine::new(store, Some(root))?);
    let progress = Arc::new(Plain::default());
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let p = progress.clone();
    let solver = Solver::new(engine, jobs).use_cache(!args.no_cache).on_event(move |e| p.event(&e));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let fs = runtime.block_on(solver.solve(&graph.graph, &graph.target)).map_err(|e| {
        // Name the failing step by its place in the Dockerfile, like every other error.
        let place = match &e {
            kiln_solver::SolveError::Vertex { vertex, .. } => {
                graph.sources.get(vertex).map(|at| format!("{}:{}: ", opts.dockerfile_name, at.line))
            }
            _ => None,
        };
        anyhow::Error::new(e).context(format!("{}build failed", place.unwrap_or_default()))
    })?;

    let (manifest, id) = crate::image::write(store, &fs.layers, fs.created.as_deref(), graph.config)?;
    eprintln!("writing image {id}");
    for tag in &tags {
        store.tag(tag, &manifest)?;
        eprintln!("naming to {tag}");
    }
    println!("{id}");
    Ok(())
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}
