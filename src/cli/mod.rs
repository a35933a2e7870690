//! The command line: clap structs here, one file per subcommand, and the one
//! error path that prints an error with its causes and picks the exit code.

mod build;
mod images;
mod load;
mod output;
mod run;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// kiln — build OCI images from Dockerfiles, no daemon, no root.
#[derive(Parser)]
#[command(name = "kiln", version, about)]
struct Cli {
    /// Where images, layers and the build cache are kept.
    /// [default: /var/lib/kiln for root, else $XDG_DATA_HOME/kiln or ~/.local/share/kiln]
    #[arg(long, env = "KILN_ROOT", global = true)]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile.
    Build(build::Args),
    /// Run a command in a new container from an image.
    Run(run::Args),
    /// List images.
    Images,
    /// Show an image's digests, manifest and config as JSON.
    Inspect {
        /// The image.
        image: String,
    },
    /// Give an image another name.
    Tag {
        /// The image.
        source: String,
        /// The new name.
        target: String,
    },
    /// Remove image names.
    Rmi {
        /// The images.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Load images from a `docker save` or OCI layout tar archive.
    Load {
        /// Read from this file instead of standard input.
        #[arg(short, long)]
        input: Option<PathBuf>,
    },
    /// Make a one-layer image from a root filesystem tarball.
    Import {
        /// The tarball (plain or gzip).
        file: PathBuf,
        /// The image name.
        name: String,
    },
}

/// The store root when none is given.
pub fn default_root(is_root: bool) -> PathBuf {
    if is_root {
        return PathBuf::from("/var/lib/kiln");
    }
    match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d).join("kiln"),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".local/share/kiln"),
    }
}

fn open_store(root: Option<PathBuf>) -> anyhow::Result<crate::store::Store> {
    let root = root.unwrap_or_else(|| default_root(true));
    Ok(crate::store::Store::open(&root)?)
}

/// Parse the command line, run it, print any error with its causes; the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let is_run = matches!(cli.command, Command::Run(_));
    let result = (|| -> anyhow::Result<i32> {
        let store = open_store(cli.root)?;
        match cli.command {
            Command::Build(args) => build::run(&store, args).map(|_| 0),
            Command::Run(args) => run::run(&store, args),
            Command::Images => images::list(&store).map(|_| 0),
            Command::Inspect { image } => images::inspect(&store, &image).map(|_| 0),
            Command::Tag { source, target } => images::tag(&store, &source, &target).map(|_| 0),
            Command::Rmi { images } => images::remove(&store, &images).map(|_| 0),
            Command::Load { input } => load::load(&store, input).map(|_| 0),
            Command::Import { file, name } => load::import(&store, &file, &name).map(|_| 0),
        }
    })();
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", output::escape(&e.to_string()));
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {}", output::escape(&cause.to_string()));
            }
            // docker run's convention: 125 when the failure is the tool's, not the container's.
            if is_run {
                crate::sandbox::exit::SETUP_FAILED
            } else {
                1
            }
        }
    }
}
