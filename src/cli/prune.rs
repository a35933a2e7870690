//! `kiln prune`'s flags.

/// `kiln prune --cache-mounts`.
#[derive(clap::Args)]
pub struct Args {
    /// Remove the folders of RUN --mount=type=cache that no build is using.
    #[arg(long)]
    pub cache_mounts: bool,
}
