//! One function per subcommand, each a short call into the library, and the
//! one error path: `error: …` and its causes, escaped, then the exit code.

mod build;
mod build_check;
mod build_context;
mod containers;
mod debug;
mod debug_context;
mod debug_expand;
mod history;
mod images;
mod import;
mod info;
mod inspect;
mod load;
mod login;
mod logs;
mod prune;
mod ps;
mod pull;
mod push;
mod rmi;
mod run;
mod save;
mod search;
mod system;
mod tag;
mod volume;

use clap::Parser;

use crate::cli::output::{escape, StdoutClosed};
use crate::cli::{settings, Cli, Command};
use kiln::store::Store;

/// Parse the command line, run it, print any error with its causes; the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.use_stderr() {
                false => 0,
                // docker's convention for its own errors, bad flags included.
                true if matches!(crate::cli::subcommand().as_deref(), Some("run" | "exec")) => {
                    kiln::sandbox::exit::SETUP_FAILED
                }
                true => 2,
            };
        }
    };
    let is_run = matches!(cli.command, Command::Run(_) | Command::Exec(_));
    let result = (|| -> anyhow::Result<i32> {
        // Nothing in the store is needed, so none is opened (or made).
        let command = match cli.command {
            Command::Debug(args) => return debug::debug(args).map(|()| 0),
            command => command,
        };
        let settings = settings::resolve(cli.root, &settings::Environment::current())?;
        if let Some(kind) = settings.snapshotter {
            kiln::snapshot::probe::force(kind);
        }
        let store = Store::open(&settings.root)?;
        // What adds to the store holds it against collection until it is
        // done (see `kiln::gc`); a build takes the lock itself, so that it
        // can let go of it to enforce the cache cap when it ends.
        let adds = matches!(
            command,
            Command::Pull(_)
                | Command::Load(_)
                | Command::Import(_)
                | Command::Tag(_)
                | Command::Push(_)
                | Command::Save(_)
        );
        let _in_use = adds.then(|| kiln::gc::StoreLock::shared(&store)).transpose()?;
        match command {
            Command::Debug(_) => unreachable!("handled above"),
            Command::Build(args) => build::build(&store, &settings.registry, settings.keep_storage, *args).map(|()| 0),
            Command::Run(args) => run::run(&store, &settings.registry, *args),
            Command::Ps(args) => ps::ps(&store, args).map(|()| 0),
            Command::Logs(args) => logs::logs(&store, args).map(|()| 0),
            Command::Exec(args) => containers::exec(&store, args),
            Command::Attach(args) => containers::attach(&store, args),
            Command::Volume(args) => volume::volume(&store, args).map(|()| 0),
            Command::Pause(args) => containers::pause(&store, args, true),
            Command::Unpause(args) => containers::pause(&store, args, false),
            Command::Top(args) => containers::top(&store, args),
            Command::Commit(args) => containers::commit(&store, args),
            Command::Cp(args) => containers::cp(&store, args),
            Command::Stats(args) => containers::stats(&store, args),
            Command::Container(args) => containers::container(&store, args),
            Command::Stop(args) => containers::stop(&store, args),
            Command::Kill(args) => containers::kill(&store, args),
            Command::Rm(args) => containers::rm(&store, args),
            Command::Start(args) => containers::start(&store, args),
            Command::Restart(args) => containers::restart(&store, args),
            Command::Wait(args) => containers::wait(&store, args),
            Command::Monitor(args) => containers::monitor(&store, args),
            Command::Images => images::images(&store).map(|()| 0),
            Command::Inspect(args) => inspect::inspect(&store, args).map(|()| 0),
            Command::Tag(args) => tag::tag(&store, args).map(|()| 0),
            Command::Rmi(args) => rmi::rmi(&store, args).map(|()| 0),
            Command::Prune(args) => prune::prune(&store, args).map(|()| 0),
            Command::System(args) => system::system(&store, args).map(|()| 0),
            Command::Load(args) => load::load(&store, args).map(|()| 0),
            Command::Save(args) => save::save(&store, args).map(|()| 0),
            Command::History(args) => history::history(&store, args).map(|()| 0),
            Command::Import(args) => import::import(&store, args).map(|()| 0),
            Command::Pull(args) => pull::pull(&store, &settings.registry, args).map(|()| 0),
            Command::Push(args) => push::push(&store, &settings.registry, args).map(|()| 0),
            Command::Login(args) => login::login(&settings.registry, args).map(|()| 0),
            Command::Logout(args) => login::logout(&settings.registry, args).map(|()| 0),
            Command::Search(args) => search::search(&settings.registry, args).map(|()| 0),
            Command::Info(args) => info::info(&store, args).map(|()| 0),
        }
    })();
    match result {
        Ok(code) => code,
        // Whoever read the output has all they wanted (`kiln images | head -1`).
        Err(e) if e.chain().any(|c| c.is::<StdoutClosed>()) => 0,
        Err(e) => {
            eprintln!("error: {}", escape(&e.to_string()));
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {}", escape(&cause.to_string()));
            }
            // docker run's convention: 125 when the failure is the tool's, not
            // the container's; 126 or 127 when its command cannot run or is not there.
            let not_run = e.chain().find_map(|c| match c.downcast_ref::<kiln::container::ContainerError>() {
                Some(kiln::container::ContainerError::NotRun { code, .. }) => Some(*code),
                _ => None,
            });
            match (is_run, not_run) {
                (true, Some(code)) => code,
                (true, None) => kiln::sandbox::exit::SETUP_FAILED,
                (false, _) => 1,
            }
        }
    }
}
