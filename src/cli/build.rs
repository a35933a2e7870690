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
    /// How many steps may run at once [default: the number of CPUs].
    #[arg(long)]
    pub jobs: Option<usize>,
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
    /// Let the Dockerfile use what it may only with the caller's leave
    /// (repeatable, or a comma list): security.insecure (RUN
    /// --security=insecure), network.host (RUN --network=host).
    #[arg(long = "allow", value_name = "ENTITLEMENT", value_delimiter = ',')]
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
