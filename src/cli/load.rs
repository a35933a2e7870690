//! The flags of `kiln load`, `kiln save` and `kiln import`.

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

/// `kiln save [-o FILE] [--format docker|oci] IMAGE…`.
#[derive(clap::Args)]
pub struct SaveArgs {
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The archive's format: a `docker save` archive, or an OCI image layout.
    #[arg(long, value_enum, default_value_t = SaveFormat::Docker)]
    pub format: SaveFormat,
    /// With --format oci: how layers are compressed (the store keeps them
    /// plain). A docker archive's layers are plain tars, as `docker save` writes.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: super::registry::Compression,
    /// The images: names, or IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `kiln save --format`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SaveFormat {
    /// A `docker save` archive (`docker load` reads it).
    Docker,
    /// An OCI image layout tar.
    Oci,
}
