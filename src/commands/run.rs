//! `kiln run`: [`kiln::container::run`]; the container's exit code is kiln's.

use std::io::IsTerminal;

use kiln::container::RunRequest;
use kiln::store::Store;

use crate::cli::run::Args;

pub fn run(store: &Store, args: Args) -> anyhow::Result<i32> {
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
