//! The flags of the container commands besides `run`: docker's names.

/// `kiln ps`.
#[derive(clap::Args)]
pub struct PsArgs {
    /// Show every container (the default shows running ones).
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only the IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not shorten IDs and commands.
    #[arg(long)]
    pub no_trunc: bool,
}

/// `kiln logs`.
#[derive(clap::Args)]
pub struct LogsArgs {
    /// Go on showing new output until the container stops.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines ("all" for every line).
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show each line's time.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    pub container: String,
}

/// `kiln stop` and `kiln restart`.
#[derive(clap::Args)]
pub struct StopArgs {
    /// Seconds to wait for the stop signal to work before SIGKILL.
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kiln kill`.
#[derive(clap::Args)]
pub struct KillArgs {
    /// The signal to send.
    #[arg(short = 's', long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kiln rm`.
#[derive(clap::Args)]
pub struct RmArgs {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove its anonymous volumes too.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kiln start` and `kiln wait`: containers by name or ID.
#[derive(clap::Args)]
pub struct ContainersArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kiln __monitor ID`: a detached container's monitor (see `kiln::container::monitor`).
#[derive(clap::Args)]
pub struct MonitorArgs {
    pub id: String,
}

/// `kiln exec [OPTIONS] CONTAINER COMMAND [ARG…]`: options end at the container.
#[derive(clap::Args)]
pub struct ExecArgs {
    /// Pass stdin on (through a pipe).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a terminal of its own (a new pty, driven from kiln's).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set an environment variable, KEY=VALUE, or KEY for kiln's own (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container (else the container's).
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// user[:group] to run as (else the container's).
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// The container, then the command and its arguments.
    #[arg(value_name = "CONTAINER COMMAND [ARG...]", required = true, num_args = 2.., trailing_var_arg = true)]
    pub container_and_command: Vec<String>,
}

/// `kiln volume`.
#[derive(clap::Args)]
pub struct VolumeArgs {
    #[command(subcommand)]
    pub command: VolumeCommand,
}

/// `kiln volume`'s subcommands.
#[derive(clap::Subcommand)]
pub enum VolumeCommand {
    /// Make a volume (named, or else anonymous); prints its name.
    Create {
        name: Option<String>,
        /// The driver: kiln has local volumes only.
        #[arg(short = 'd', long, default_value = "local")]
        driver: String,
    },
    /// List volumes.
    Ls {
        /// Only the names.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Show volumes as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes no container uses.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove the anonymous volumes no container uses (with -a, every unused one).
    Prune {
        #[arg(short = 'a', long)]
        all: bool,
        /// Do not ask (kiln never asks).
        #[arg(short = 'f', long)]
        force: bool,
    },
}

/// `kiln top CONTAINER`.
#[derive(clap::Args)]
pub struct TopArgs {
    pub container: String,
}

/// `kiln container …`: docker's management commands.
#[derive(clap::Args)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: ContainerCommand,
}

/// `kiln container`'s subcommands.
#[derive(clap::Subcommand)]
pub enum ContainerCommand {
    /// Remove every stopped container.
    Prune {
        /// Do not ask (kiln never asks).
        #[arg(short = 'f', long)]
        force: bool,
    },
}

/// `kiln commit [-m MESSAGE] CONTAINER IMAGE`.
#[derive(clap::Args)]
pub struct CommitArgs {
    /// The history entry's comment.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// A Dockerfile instruction to apply to the new image's config (CMD,
    /// ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR); repeatable.
    #[arg(short = 'c', long)]
    pub change: Vec<String>,
    pub container: String,
    /// The new image's name.
    pub image: String,
}

/// `kiln cp CONTAINER:SRC DEST` or `kiln cp SRC CONTAINER:DEST`.
#[derive(clap::Args)]
pub struct CpArgs {
    pub src: String,
    pub dest: String,
}

/// `kiln stats [--no-stream] [CONTAINER…]`.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// One sample, then exit (else a new one every second until interrupted).
    #[arg(long)]
    pub no_stream: bool,
    /// The containers (default: every running one).
    pub containers: Vec<String>,
}

/// `kiln attach [--no-stdin] CONTAINER`.
#[derive(clap::Args)]
pub struct AttachArgs {
    /// Do not pass stdin on.
    #[arg(long)]
    pub no_stdin: bool,
    /// The keys that detach, leaving the container running (docker's format;
    /// empty for none).
    #[arg(long, default_value = "ctrl-p,ctrl-q")]
    pub detach_keys: String,
    /// Pass signals kiln gets on to the container's command (without -t).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sig_proxy: bool,
    pub container: String,
}
