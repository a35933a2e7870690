//! `kiln run`: [`kiln::container::run`] attached, the container's exit code
//! kiln's; with `-d`, [`kiln::container::start`] and its ID printed.

use std::io::IsTerminal;

use kiln::container::RunRequest;
use kiln::registry::{Platform, PullPolicy, RegistryConfig};
use kiln::store::Store;

use crate::cli::run::Args;

pub fn run(store: &Store, config: &RegistryConfig, args: Args) -> anyhow::Result<i32> {
    // An image the store lacks is pulled first, as docker run does.
    let platform = Platform::host();
    {
        // Held while pulling only (see `kiln::gc`): a container may run for
        // days, and it holds its image's snapshots itself.
        let _pulling = kiln::gc::StoreLock::shared(store)?;
        kiln::registry::ensure(store, args.image(), PullPolicy::Missing, &super::pull::options(config, &platform))?;
    }
    let request = RunRequest {
        image: args.image().to_owned(),
        command: args.command().to_vec(),
        entrypoint: args.entrypoint,
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        // A terminal is passed on only when asked for; piped input always is.
        stdin: !args.detach && (args.interactive || !std::io::stdin().is_terminal()),
        sandbox_exe: None,
        name: args.name,
        auto_remove: args.rm,
        hostname: args.hostname,
        stop_signal: args.stop_signal,
        stop_timeout: args.stop_timeout,
        log_options: args.log_opt,
        env_files: args.env_file,
        network: args.network,
        limits: kiln::sandbox::Limits {
            memory: args.memory,
            pids: args.pids_limit.filter(|n| *n > 0),
            millicpus: args.cpus,
            ..Default::default()
        },
        tty: args.tty,
        ports: args.publish,
        mounts: mounts(&args.volume, &args.mount)?,
        readonly_root: args.read_only,
        restart: args.restart,
        sig_proxy: args.sig_proxy,
        interactive: args.interactive,
    };
    if !args.detach {
        return Ok(kiln::container::run(store, &request)?);
    }
    let container = kiln::container::create(store, &request)?;
    if let Err(e) = kiln::container::start(store, &container.id, &std::env::current_exe()?) {
        // docker leaves it created; `--rm` asked for nothing to be left.
        if request.auto_remove {
            let _ = kiln::container::remove(store, &container.id, true, true);
        }
        return Err(e.into());
    }
    crate::outln!("{}", container.id)?;
    Ok(0)
}

/// `-v` and `--mount`, in that order.
fn mounts(volumes: &[String], mounts: &[String]) -> anyhow::Result<Vec<kiln::container::volumes::Mount>> {
    use kiln::container::volumes::Mount;
    let mut out = Vec::new();
    for v in volumes {
        out.push(Mount::from_volume_flag(v)?);
    }
    for m in mounts {
        out.push(Mount::from_mount_flag(m)?);
    }
    Ok(out)
}
