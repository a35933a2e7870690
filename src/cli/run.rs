//! `kiln run`'s flags. As in docker, kiln's own options end at the image: what
//! follows it is the container's command, `-e` and `--help` included.

/// `kiln run [OPTIONS] IMAGE [COMMAND [ARG…]]`.
#[derive(clap::Args)]
pub struct Args {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Give the container a terminal of its own (a new pty; kiln's terminal,
    /// with -i, drives it in raw mode, and its window size follows).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Publish a port on the host: [IP:]HOST_PORT:CONTAINER_PORT[/udp] (repeatable).
    #[arg(short = 'p', long = "publish", value_parser = kiln::sandbox::PortMap::parse)]
    pub publish: Vec<kiln::sandbox::PortMap>,
    /// A bind mount or a volume: /host/path:/ctr[:ro], NAME:/ctr[:ro] (made
    /// on first use, filled from the image), or /ctr (anonymous) (repeatable).
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    /// A mount: type=bind|volume|tmpfs,source=…,target=…[,readonly][,tmpfs-size=…] (repeatable).
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount the container's root filesystem read-only (its volumes, tmpfs
    /// mounts, /dev and /dev/shm stay writable).
    #[arg(long)]
    pub read_only: bool,
    /// Run an init as PID 1 that reaps zombies and passes signals on: kiln's
    /// PID 1 always does, so this is accepted for docker's sake.
    #[arg(long)]
    pub init: bool,
    /// When the monitor starts the command again: no, on-failure[:N], always, unless-stopped.
    #[arg(long, default_value = "no", value_parser = kiln::container::state::Restart::parse)]
    pub restart: kiln::container::state::Restart,
    /// Pass signals kiln gets on to the container (attached runs).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub sig_proxy: bool,
    /// Run it in the background and print its ID: it outlives this command.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Name the container (else a name is made up).
    #[arg(long)]
    pub name: Option<String>,
    /// The container's hostname (else its ID's first 12 digits).
    #[arg(long)]
    pub hostname: Option<String>,
    /// The signal `kiln stop` sends first (else the image's STOPSIGNAL, else SIGTERM).
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Seconds `kiln stop` waits before SIGKILL (default 10).
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    /// Log rotation: max-size=SIZE (default 20m), max-file=N (default 5).
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    /// Read environment variables from a file: KEY=VALUE lines, `#` comments,
    /// KEY alone for kiln's own value (repeatable; -e wins).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// The network: default (a namespace of its own, with outbound access
    /// and no way to the host's loopback), none (only lo) or host.
    #[arg(long, default_value = "default", value_parser = network)]
    pub network: kiln::sandbox::NetworkMode,
    /// Memory limit (64m, 1.5g; at least 6m): past it the kernel kills, and
    /// the container shows as OOM-killed.
    #[arg(short = 'm', long, value_name = "SIZE", value_parser = super::limits::memory)]
    pub memory: Option<u64>,
    /// Processes and threads at most (0 or -1: no limit).
    #[arg(long = "pids-limit", value_name = "N", value_parser = super::limits::pids, allow_hyphen_values = true)]
    pub pids_limit: Option<u64>,
    /// CPU time, in CPUs (1.5).
    #[arg(long, value_name = "X", value_parser = super::limits::cpus)]
    pub cpus: Option<u64>,
    /// Keep stdin open even when it is a terminal (it is passed on through a
    /// pipe, never as kiln's own descriptor). Without it, a terminal stdin is
    /// not passed on; piped input always is.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Set an environment variable, KEY=VALUE, or KEY to pass kiln's own (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// user[:group] to run as.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Override the image's ENTRYPOINT.
    #[arg(long)]
    pub entrypoint: Option<String>,
    // One argument, not two: clap's options end where the last positional
    // starts, and that must be the image, not the command after it.
    /// The image (a name or an ID), then the command and its arguments (they
    /// replace the image's CMD).
    #[arg(value_name = "IMAGE [COMMAND [ARG...]]", required = true, num_args = 1.., trailing_var_arg = true)]
    pub image_and_command: Vec<String>,
}

/// `--network`'s value, docker's names.
fn network(text: &str) -> Result<kiln::sandbox::NetworkMode, String> {
    use kiln::sandbox::NetworkMode;
    match text {
        "default" | "bridge" | "private" => Ok(NetworkMode::Outbound),
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        _ => Err(format!("expected default, none or host, not {text:?}")),
    }
}

impl Args {
    /// The image.
    pub fn image(&self) -> &str {
        &self.image_and_command[0]
    }

    /// The command after the image; empty for the image's CMD.
    pub fn command(&self) -> &[String] {
        &self.image_and_command[1..]
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn options_end_at_the_image() {
        for (args, image, command, env) in [
            (&["run", "img"][..], "img", &[][..], &[][..]),
            (&["run", "-e", "A=1", "img", "sh"], "img", &["sh"], &["A=1"]),
            (
                &["run", "img", "sh", "-c", "echo \"$@\"", "_", "-e", "x"],
                "img",
                &["sh", "-c", "echo \"$@\"", "_", "-e", "x"],
                &[],
            ),
            (&["run", "img", "-e", "x"], "img", &["-e", "x"], &[]),
            (&["run", "img", "--help"], "img", &["--help"], &[]),
            (&["run", "-e", "A", "img", "--", "x"], "img", &["--", "x"], &["A"]),
            (&["run", "img", "--entrypoint", "x"], "img", &["--entrypoint", "x"], &[]),
        ] {
            let cli = Cli::try_parse_from(std::iter::once("kiln").chain(args.iter().copied()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let Command::Run(run) = cli.command else { panic!("{args:?}: not run") };
            let got = (run.image(), run.command().join(" "), run.env.join(" "));
            assert_eq!(got, (image, command.join(" "), env.join(" ")), "{args:?}");
        }
        for bad in [&["run", "--bogus", "img"][..], &["run"]] {
            assert!(Cli::try_parse_from(std::iter::once("kiln").chain(bad.iter().copied())).is_err(), "{bad:?}");
        }
    }
}
