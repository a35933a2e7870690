//! The command line as clap parses it: one file per subcommand holding its
//! flags, nothing else. What the flags mean is resolved in [`settings`] (flag >
//! environment > config file > default) and carried out by `commands/`.

pub mod build;
pub mod containers;
pub mod debug;
pub mod debug_context;
pub mod debug_expand;
pub mod images;
pub mod info;
pub mod limits;
pub mod load;
pub mod output;
pub mod prune;
pub mod registry;
pub mod run;
pub mod settings;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// kiln — build OCI images from Dockerfiles, no daemon, no root.
#[derive(Parser)]
#[command(name = "kiln", version, about)]
pub struct Cli {
    /// Where images, layers and the build cache are kept [env: KILN_ROOT; then
    /// `root` in the config file; default: /var/lib/kiln for root, else
    /// $XDG_DATA_HOME/kiln or ~/.local/share/kiln].
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// kiln's subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile.
    Build(Box<build::Args>),
    /// Run a command in a new container from an image.
    Run(Box<run::Args>),
    /// List containers.
    Ps(containers::PsArgs),
    /// Attach to a detached container's streams (its stdin too, when it was run with -i).
    Attach(containers::AttachArgs),
    /// Run a command in a running container.
    Exec(containers::ExecArgs),
    /// Show a container's output.
    Logs(containers::LogsArgs),
    /// Stop running containers: their stop signal, then SIGKILL.
    Stop(containers::StopArgs),
    /// Send a signal to running containers.
    Kill(containers::KillArgs),
    /// Remove containers.
    Rm(containers::RmArgs),
    /// Start stopped containers, in the background.
    Start(containers::ContainersArgs),
    /// Stop, then start containers.
    Restart(containers::StopArgs),
    /// Stop every process of running containers (SIGSTOP), until unpause.
    Pause(containers::ContainersArgs),
    /// Resume paused containers.
    Unpause(containers::ContainersArgs),
    /// Show a running container's processes.
    Top(containers::TopArgs),
    /// Show running containers' CPU, memory and process count.
    Stats(containers::StatsArgs),
    /// Copy files between a container and the host.
    Cp(containers::CpArgs),
    /// Make an image of a container's changes.
    Commit(containers::CommitArgs),
    /// Manage containers: prune.
    Container(containers::ContainerArgs),
    /// Manage volumes: create, ls, inspect, rm, prune.
    Volume(containers::VolumeArgs),
    /// Wait for containers to stop, then print their exit codes.
    Wait(containers::ContainersArgs),
    #[command(name = "__monitor", hide = true)]
    Monitor(containers::MonitorArgs),
    /// List images.
    Images,
    /// Show an image's digests, manifest and config as JSON.
    Inspect(images::InspectArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Remove images (by name or ID), and the space only they held.
    Rmi(images::RmiArgs),
    /// Load images from a `docker save` or OCI layout tar archive.
    Load(load::LoadArgs),
    /// Save images to a `docker save` (default) or OCI layout tar archive.
    Save(load::SaveArgs),
    /// Show the history of an image: one row per step that made it.
    History(images::HistoryArgs),
    /// Make a one-layer image from a root filesystem tarball.
    Import(load::ImportArgs),
    /// Pull an image from a registry.
    Pull(registry::PullArgs),
    /// Push an image to a registry.
    Push(registry::PushArgs),
    /// Keep a registry's credentials (in docker's config.json).
    Login(registry::LoginArgs),
    /// Forget a registry's credentials.
    Logout(registry::LogoutArgs),
    /// Search a registry's catalog.
    Search(registry::SearchArgs),
    /// Show the store, snapshotter, cgroups, id mapping and sandbox helpers kiln uses here.
    Info(info::Args),
    /// Remove build cache (dangling, or all with -a), and what nothing holds.
    Prune(prune::Args),
    /// The store as a whole: `kiln system df`.
    System(prune::SystemArgs),
    /// Show what kiln makes of its inputs (parse trees, …) as JSON.
    #[command(long_about = debug::HELP)]
    Debug(debug::Args),
}

/// The subcommand named on the command line (after the global `--root DIR`).
pub fn subcommand() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => {
                args.next();
            }
            a if a.starts_with("--root=") => {}
            _ => return Some(arg),
        }
    }
    None
}
