//! `kiln build`: [`kiln::build()`], shown on stderr as `--progress` says.

use std::io::IsTerminal;
use std::sync::Arc;

use kiln::build::{build_args_from_flags, BuildRequest, Silent};
use kiln::cache::{CacheExport, CacheLocation};
use kiln::image_io::{AtomicFile, Output};
use kiln::progress::{Mode, Plain, RawJson, Tty, View};
use kiln::registry::{PullPolicy, RegistryConfig};
use kiln::sandbox::Limits;
use kiln::store::Store;

use crate::cli::build::{Args, Pull};
use crate::cli::output::escape;

/// The mode `-q`, `--progress` or `KILN_PROGRESS` (in that order) ask for,
/// as it is on this terminal.
fn progress_mode(args: &Args) -> anyhow::Result<Mode> {
    let asked = match (args.quiet, args.progress) {
        (true, _) => Mode::Quiet,
        (false, Some(mode)) => mode,
        (false, None) => match std::env::var("KILN_PROGRESS") {
            Ok(value) if !value.is_empty() => {
                value.parse().map_err(|e| anyhow::anyhow!("KILN_PROGRESS={value:?}: {e}"))?
            }
            _ => Mode::Auto,
        },
    };
    let terminal = std::io::stderr().is_terminal();
    let mode = asked.resolve(terminal, std::env::var("TERM").ok().as_deref());
    if mode == Mode::Tty && !terminal {
        anyhow::bail!("--progress tty: stderr is not a terminal; use --progress plain (or auto)");
    }
    // The debug shell takes the terminal, a live view would draw over it;
    // --check shows findings, not steps.
    Ok(match mode {
        Mode::Tty if args.debug_shell || args.check => Mode::Plain,
        mode => mode,
    })
}

/// The view for `mode`, on stderr.
/// `explain`: every line of `--explain` about the first cache miss.
fn view(mode: Mode, explain: bool) -> Arc<dyn View> {
    match mode {
        Mode::Tty => Arc::new(Tty::stderr().explain(explain)),
        Mode::RawJson => Arc::new(RawJson::new(std::io::stderr())),
        Mode::Quiet => Arc::new(Silent),
        Mode::Plain | Mode::Auto => Arc::new(Plain::new(std::io::stderr()).explain(explain)),
    }
}

pub fn build(store: &Store, config: &RegistryConfig, keep_storage: Option<u64>, args: Args) -> anyhow::Result<()> {
    if args.push && args.tags.is_empty() {
        anyhow::bail!("--push needs a name to push to: add -t REGISTRY/REPOSITORY[:TAG]");
    }
    let mode = progress_mode(&args)?;
    // Before the context is read: a missing secret file fails first.
    let secrets = kiln::secrets::secrets_from_flags(&args.secrets, |name| std::env::var_os(name).is_some())?;
    let ssh = kiln::secrets::ssh_from_flags(&args.ssh, std::env::var_os("SSH_AUTH_SOCK").map(Into::into))?;
    let allow = kiln::secrets::entitlements_from_flags(&args.allow)?;
    let inputs = super::build_context::inputs(&args)?;
    let mut request = BuildRequest::new(&inputs.context);
    request.dockerfile = inputs.dockerfile.clone();
    request.dockerignore = inputs.dockerignore;
    request.named_contexts = super::build_context::named_contexts(&args.build_contexts)?;
    request.build_args = build_args_from_flags(&args.build_args, |name| std::env::var(name).ok())?;
    // As buildx: the environment's SOURCE_DATE_EPOCH is a build arg the
    // Dockerfile can read, unless --build-arg gives one.
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        request.build_args.entry("SOURCE_DATE_EPOCH".to_owned()).or_insert(epoch);
    }
    request.target = args.target;
    request.tags = args.tags;
    request.no_cache = args.no_cache;
    request.no_cache_filter = args.no_cache_filter;
    request.jobs = args.jobs;
    (request.run.secrets, request.run.ssh, request.run.allow) = (secrets, ssh, allow);
    request.run.debug_shell = args.debug_shell;
    if !args.outputs.is_empty() {
        request.outputs = args.outputs.iter().map(|o| Output::parse(o)).collect::<Result<_, _>>()?;
    }
    request.pull = match args.pull {
        Pull::Missing => PullPolicy::Missing,
        Pull::Always => PullPolicy::Always,
        Pull::Never => PullPolicy::Never,
    };
    request.registry = config.clone();
    request.cache_from = args.cache_from.iter().map(|c| CacheLocation::parse_from(c)).collect::<Result<_, _>>()?;
    request.run.limits = Limits {
        memory: args.memory,
        pids: args.pids_limit,
        millicpus: args.cpus,
        timeout_ms: args.step_timeout,
        ..Limits::default()
    };
    request.cache_to = args.cache_to.iter().map(|c| CacheExport::parse(c)).collect::<Result<_, _>>()?;
    // Made last: a live view starts drawing, and an error in the flags
    // above would leave it on the screen.
    let view = view(mode, args.explain);
    request.progress = view.clone();
    if args.check {
        return super::build_check::check(store, &request);
    }
    let built = kiln::build(store, request);
    view.finish(built.is_ok());
    let built = built?;
    // The context unpacked from stdin is removed now, not after a push.
    drop(inputs);
    if let Some(path) = &args.iidfile {
        write_file(path, built.id.as_str().as_bytes())?;
    }
    crate::outln!("{}", built.id)?;
    let mut pushed = Vec::new();
    if args.push {
        // Each name after the build: the image is complete and named locally
        // before any registry sees it.
        for tag in &built.tags {
            if mode != Mode::Quiet {
                eprintln!("pushing {tag}");
            }
            pushed.push(super::push::push_one(store, config, tag, None, args.compression.into())?);
        }
    }
    // After the push, so it can name what the registry has.
    if let Some(path) = &args.metadata_file {
        write_file(path, &serde_json::to_vec_pretty(&built.pushed_metadata(&pushed))?)?;
    }
    let cap = args.keep_storage.or(keep_storage).unwrap_or_else(|| kiln::gc::default_keep_storage(store));
    enforce_cap(store, cap);
    Ok(())
}

/// Keep the build cache under `cap`, least recently used entries first. The
/// image is built and named: a failure here is a warning, and when another
/// run holds the store the cap waits for the next build.
fn enforce_cap(store: &Store, cap: u64) {
    use crate::cli::output::human_size_4 as size;
    match kiln::gc::enforce_cap(store, cap) {
        Ok(Some(pruned)) if !pruned.entries.is_empty() => eprintln!(
            "build cache over its cap of {}: removed {} least recently used entries ({})",
            size(cap),
            pruned.entries.len(),
            size(pruned.reclaimed)
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "warning: keeping the build cache under {}: {}",
            size(cap),
            escape(&format!("{:#}", anyhow::Error::new(e)))
        ),
    }
}

/// Write a small file whole, atomically.
fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes).map_err(|e| anyhow::Error::new(e).context(format!("writing {}", path.display())))?;
    Ok(file.commit()?)
}
