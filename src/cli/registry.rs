//! The flags of the registry subcommands: `pull`, `push`, `login`, `logout`, `search`.

/// `kiln pull [--platform P] REF`.
#[derive(clap::Args)]
pub struct PullArgs {
    /// The platform of a multi-platform image, os/arch[/variant] [default: the host's].
    #[arg(long)]
    pub platform: Option<String>,
    /// The image: NAME[:TAG][@DIGEST] (`busybox` is docker.io/library/busybox:latest).
    pub reference: String,
}

/// `kiln push NAME[:TAG] [DEST]`.
#[derive(clap::Args)]
pub struct PushArgs {
    /// The image in the store.
    pub name: String,
    /// Where to push it [default: its own name].
    pub dest: Option<String>,
    /// How layers are compressed on the way, whatever form the store keeps.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: Compression,
}

/// `--compression` of `push` and `build --push`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Compression {
    /// What every registry and runtime reads.
    Gzip,
    /// Smaller, faster to unpack; containerd 1.5+, podman, kiln.
    Zstd,
}

impl From<Compression> for kiln::registry::Compression {
    fn from(c: Compression) -> Self {
        match c {
            Compression::Gzip => Self::Gzip,
            Compression::Zstd => Self::Zstd,
        }
    }
}

/// `kiln login [-u USER] [--password-stdin] HOST`.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// The user name [default: asked on the terminal].
    #[arg(short = 'u', long = "username")]
    pub username: Option<String>,
    /// Read the password from standard input [default: asked on the terminal,
    /// not echoed]. Never as an argument.
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry host (`registry.example:5000`; docker.io when left out).
    pub host: Option<String>,
}

/// `kiln logout HOST`.
#[derive(clap::Args)]
pub struct LogoutArgs {
    /// The registry host (docker.io when left out).
    pub host: Option<String>,
}

/// `kiln search TERM [--registry HOST] [--tags]`.
#[derive(clap::Args)]
pub struct SearchArgs {
    /// Repositories whose name holds this.
    pub term: String,
    /// The registry whose catalog (`/v2/_catalog`) is searched.
    #[arg(long, default_value = "docker.io")]
    pub registry: String,
    /// List each repository's tags too.
    #[arg(long)]
    pub tags: bool,
}
