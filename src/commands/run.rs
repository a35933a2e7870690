//! `kiln run`: [`kiln::container::run`]; the container's exit code is kiln's.

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
        // days, and its image, once named, holds its snapshots.
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
        stdin: args.interactive || !std::io::stdin().is_terminal(),
        sandbox_exe: None,
    };
    Ok(kiln::container::run(store, &request)?)
}
