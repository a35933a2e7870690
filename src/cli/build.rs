//! `kiln build`'s flags.

use std::path::PathBuf;

/// `kiln build [OPTIONS] CONTEXT`.
#[derive(clap::Args)]
pub struct Args {
    /// Name the image NAME[:TAG] (repeatable).
    #[arg(short = 't', long = "tag")]
    pub tags: Vec<String>,
    /// The Dockerfile [default: CONTEXT/Dockerfile].
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
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
    /// The build context folder.
    pub context: PathBuf,
}
