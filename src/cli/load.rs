//! The flags of `kiln load` and `kiln import`.

use std::path::PathBuf;

/// `kiln load [-i FILE]`.
#[derive(clap::Args)]
pub struct LoadArgs {
    /// Read from this file instead of standard input.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
}

/// `kiln import FILE NAME`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The tarball (plain or gzip).
    pub file: PathBuf,
    /// The image name.
    pub name: String,
}
