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
}

/// `kiln login [-u USER] [--password-stdin] HOST`.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// The user name.
    #[arg(short = 'u', long = "username")]
    pub username: String,
    /// Read the password from standard input (the only way: never as an argument).
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
