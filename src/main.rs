//! The kiln command: what must happen before any thread starts (the sandbox
//! entry, kiln's own namespaces), then the command line: its flags (`cli/`)
//! and one short function per subcommand (`commands/`). Everything else is the
//! library.

mod cli;
mod commands;

use kiln::sandbox;

use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "__sandbox") && args.len() == 4 {
        sandbox::child_main(&args[2], Path::new(&args[3]));
    }
    if args.get(1).is_some_and(|a| a == "__exec") && args.len() == 3 {
        sandbox::exec_main(&args[2]);
    }
    sandbox::cloexec_inherited();
    one_malloc_arena();
    // Everything below runs before any thread exists: unshare needs that.
    if let Err(e) = enter_namespaces() {
        eprintln!("error: {e:#}");
        std::process::exit(sandbox::exit::SETUP_FAILED);
    }
    let code = commands::main();
    // What the command's steps left to remove, removed before it ends.
    kiln::store::trash::wait_empty();
    std::process::exit(code);
}

/// glibc gives each thread that allocates an arena of its own, and keeps
/// what is freed there for that thread: with rayon's hashing threads, the
/// snapshot tee's and tokio's, that held about 8 MB of a big COPY's peak
/// memory (issue 10 bounds it to 50 MB). One arena; each thread's tcache
/// still serves small allocations without a lock.
fn one_malloc_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: a plain setting of the allocator, made before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Give kiln a mount namespace of its own, so its overlay mounts can never leak
/// (they vanish with the process), and, for an unprivileged user, a user
/// namespace in which it is root (rootless mode; see `sandbox::userns`).
fn enter_namespaces() -> anyhow::Result<()> {
    use anyhow::Context;
    if sandbox::userns::is_child() {
        sandbox::userns::enter_as_child()?;
    } else if !nix::unistd::geteuid().is_root()
        && matches!(cli::subcommand().as_deref(), Some("exec" | "cp" | "top" | "pause" | "unpause" | "stats"))
    {
        // These look into a running container: `exec` and `cp` join its user
        // namespace, the others read its processes in /proc and signal them,
        // which only the namespace that made it (or an ancestor) may, not a
        // new one of kiln's own. They mount nothing (`cp` of a stopped
        // container enters one after all: see `commands::containers::cp`).
        cli::settings::mark_rootless();
        return Ok(());
    } else if !nix::unistd::geteuid().is_root() {
        // Inside the namespace this user looks like root; its defaults must stay its own.
        cli::settings::mark_rootless();
        std::process::exit(sandbox::userns::run_in_userns()?);
    } else {
        unshare(CloneFlags::CLONE_NEWNS).context("creating a mount namespace")?;
    }
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("making kiln's mounts private")
}
