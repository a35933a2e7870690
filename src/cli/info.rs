//! `kiln info [--format text|json]`.

/// `kiln info`: what kiln finds on this machine.
#[derive(clap::Args)]
pub struct Args {
    /// `text` (the default), or `json`: one JSON object.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}
