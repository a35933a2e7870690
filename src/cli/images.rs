//! The flags of `kiln inspect`, `tag` and `rmi` (`kiln images` has none).
//! Wherever an image is named, its ID will do too: whole, or a unique prefix.

/// `kiln inspect IMAGE`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// A container (a name or an ID), or else an image (a name or an ID).
    pub image: String,
}

/// `kiln tag SOURCE TARGET`.
#[derive(clap::Args)]
pub struct TagArgs {
    /// The image: a name or an ID.
    pub source: String,
    /// The new name.
    pub target: String,
}

/// `kiln rmi IMAGE…`.
#[derive(clap::Args)]
pub struct RmiArgs {
    /// Remove a name even when a container uses the image it names (its
    /// layers stay while the container does); never the image of a running
    /// one by its ID.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// The images: names, or IDs.
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `kiln history [--no-trunc] [--format json] IMAGE`.
#[derive(clap::Args)]
pub struct HistoryArgs {
    /// Show whole IDs and commands instead of shortening them.
    #[arg(long)]
    pub no_trunc: bool,
    /// `table` (the default), or `json`: one JSON object per line.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// The image: a name or an ID.
    pub image: String,
}
