//! `kiln build`'s flags.

use std::path::PathBuf;

/// `kiln build [OPTIONS] CONTEXT`.
#[derive(clap::Args)]
pub struct Args {
    /// Name the image NAME[:TAG] (repeatable).
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// The Dockerfile [default: CONTEXT/Dockerfile]; `-` reads it from
    /// stdin. With CONTEXT `-`, a path inside the archive.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Another context FROM and `COPY --from` can name (repeatable):
    /// NAME=DIR (a folder, with its own .dockerignore) or
    /// NAME=docker-image://REF (an image). Looked up before stages and images.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// Set a build-time variable, KEY=VALUE, or KEY to pass kiln's own (repeatable).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Build this stage instead of the last one.
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step, even those with a cached result.
    #[arg(long)]
    pub no_cache: bool,
    /// Run the steps of these stages (by name), and what follows them, even
    /// those with a cached result (repeatable, or a comma list).
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    pub no_cache_filter: Vec<String>,
    /// Say in full why the first step that missed the cache missed: the
    /// files, build args, base image or instruction that changed.
    #[arg(long)]
    pub explain: bool,
    /// Keep the build cache under SIZE (10g, 512m: docker's binary units)
    /// once the build is done, least recently used entries first [env:
    /// KILN_KEEP_STORAGE; then `keep_storage` in the config file; default: a
    /// tenth of the store's filesystem].
    #[arg(long, value_name = "SIZE", value_parser = super::prune::size)]
    pub keep_storage: Option<u64>,
    /// How many steps may run at once [default: the number of CPUs].
    #[arg(long, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// How to show the build on stderr: auto (tty on a terminal, else
    /// plain), tty (a live view), plain (lines, `#5 [build 2/4] RUN make`),
    /// rawjson (a JSON object per line), quiet [env: KILN_PROGRESS; default: auto].
    #[arg(long, value_name = "MODE", value_parser = progress_mode)]
    pub progress: Option<kiln::progress::Mode>,
    /// Print only the image ID (on stdout), nothing else unless the build
    /// fails: --progress quiet.
    #[arg(short = 'q', long, conflicts_with = "progress")]
    pub quiet: bool,
    /// Where the image goes (repeatable): type=image (the default: named in
    /// the store), type=oci|docker|tar,dest=FILE, type=local,dest=DIR.
    #[arg(short = 'o', long = "output")]
    pub outputs: Vec<String>,
    /// Write the image ID to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Write what the build made (digests, descriptor, names) to this file as JSON.
    #[arg(long)]
    pub metadata_file: Option<PathBuf>,
    /// When to pull base images: missing (when the store lacks them), always, never.
    /// (`--pull` alone is `always`, as in docker.)
    #[arg(long, value_enum, default_value = "missing", num_args = 0..=1, default_missing_value = "always", require_equals = true)]
    pub pull: Pull,
    /// Also look for cached steps here (repeatable): type=local,src=DIR or
    /// type=registry,ref=REPOSITORY:TAG. A cache that is missing is skipped.
    #[arg(long = "cache-from")]
    pub cache_from: Vec<String>,
    /// Export the cache of this build (repeatable): type=local,dest=DIR or
    /// type=registry,ref=REPOSITORY:TAG, with mode=min (the final stage's
    /// steps, the default) or mode=max (every stage's).
    #[arg(long = "cache-to")]
    pub cache_to: Vec<String>,
    /// Push the image to its registry under each -t name once built.
    #[arg(long)]
    pub push: bool,
    /// With --push: how layers are compressed on the way.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: super::registry::Compression,
    /// Only run the build checks (BuildKit's linter rules) and print what they
    /// find; build nothing. Fails when the Dockerfile would not build, or
    /// when it breaks a rule and says `# check=error=true`.
    #[arg(long)]
    pub check: bool,
    /// Memory limit of each RUN step: bytes, or a number with k, m or g
    /// (64m, 1.5g; at least 6m). Beyond it the step fails as out of memory.
    #[arg(long, value_name = "SIZE", value_parser = super::limits::memory)]
    pub memory: Option<u64>,
    /// Processes and threads each RUN step may have [default: 4096];
    /// 0 or -1 for no limit.
    #[arg(long = "pids-limit", value_name = "N", value_parser = super::limits::pids, allow_hyphen_values = true)]
    pub pids_limit: Option<u64>,
    /// CPU time of each RUN step, in CPUs (1.5: one and a half).
    #[arg(long, value_name = "X", value_parser = super::limits::cpus)]
    pub cpus: Option<u64>,
    /// Kill a RUN step, and fail the build, when it runs longer than this
    /// (30s, 5m, 1h30m).
    #[arg(long = "step-timeout", value_name = "DURATION", value_parser = super::limits::duration)]
    pub step_timeout: Option<u64>,
    /// A secret RUN --mount=type=secret can use (repeatable):
    /// id=ID[,src=FILE|,env=VARIABLE][,type=file|env]. With only id=ID: the
    /// variable ID if set, else the file ID. Never in the image or its cache.
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    pub secrets: Vec<String>,
    /// An ssh agent RUN --mount=type=ssh can use (repeatable): `default` (or
    /// ID) for $SSH_AUTH_SOCK, or ID=SOCKET. Agent sockets only.
    #[arg(long = "ssh", value_name = "default|ID[=SOCKET]")]
    pub ssh: Vec<String>,
    /// Allow what RUN may ask for only with the caller's consent (repeatable,
    /// or a comma list): network.host (RUN --network=host),
    /// security.insecure (RUN --security=insecure).
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// When a RUN step fails, open a shell (/bin/sh of the image) in its
    /// filesystem, with its environment, working directory, user and mounts;
    /// the build fails when the shell exits.
    #[arg(long)]
    pub debug_shell: bool,
    /// The build context folder; `-` reads it from stdin as a tar archive
    /// (plain, gzip or zstd), or a Dockerfile with no context.
    pub context: PathBuf,
}

/// `--progress`'s value (and `KILN_PROGRESS`'s).
pub fn progress_mode(value: &str) -> Result<kiln::progress::Mode, kiln::progress::ModeError> {
    value.parse()
}

/// `--pull`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Pull {
    /// When the store lacks the image.
    Missing,
    /// Every build.
    Always,
    /// Never: the store must have it.
    Never,
}

/// `--jobs N`: at least one step must be able to run.
fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of steps, 1 or more (the default is the number of CPUs)".to_owned()),
    }
}
