//! The container verbs besides `run`, `ps` and `logs`: `stop`, `kill`, `rm`,
//! `start`, `restart`, `wait`, `pause`, `unpause` (each container in turn,
//! its name or exit code printed as docker prints them, the first failure
//! reported after the others were tried), and `exec`, `top`, `stats`, `cp`,
//! `commit`, `container prune`.

use kiln::container;
use kiln::store::Store;

use crate::cli::containers::{
    AttachArgs, CommitArgs, ContainerArgs, ContainerCommand, ContainersArgs, CpArgs, ExecArgs, KillArgs, MonitorArgs,
    RmArgs, StatsArgs, StopArgs, TopArgs,
};

/// Run `each` on every container named, printing what it returns; an error
/// for any is reported (the others still done), as docker does.
fn each(names: &[String], mut each: impl FnMut(&str) -> anyhow::Result<String>) -> anyhow::Result<i32> {
    let mut failed = None;
    for name in names {
        match each(name) {
            Ok(out) => crate::outln!("{out}")?,
            Err(e) if failed.is_none() => failed = Some(e),
            Err(e) => eprintln!("error: {}", crate::cli::output::escape(&format!("{e:#}"))),
        }
    }
    failed.map_or(Ok(0), Err)
}

pub fn stop(store: &Store, args: StopArgs) -> anyhow::Result<i32> {
    each(&args.containers, |c| {
        container::stop(store, c, args.time)?;
        Ok(c.to_owned())
    })
}

pub fn kill(store: &Store, args: KillArgs) -> anyhow::Result<i32> {
    each(&args.containers, |c| {
        container::kill(store, c, &args.signal)?;
        Ok(c.to_owned())
    })
}

pub fn rm(store: &Store, args: RmArgs) -> anyhow::Result<i32> {
    each(&args.containers, |c| {
        container::remove(store, c, args.force, args.volumes)?;
        Ok(c.to_owned())
    })
}

pub fn start(store: &Store, args: ContainersArgs) -> anyhow::Result<i32> {
    let exe = std::env::current_exe()?;
    let containers = container::Containers::new(store);
    each(&args.containers, |c| {
        let id = containers.find(c)?;
        // Already running: nothing to do, as docker.
        match container::start(store, &id, &exe) {
            Err(container::ContainerError::AlreadyRunning(_)) => {}
            r => r?,
        }
        Ok(c.to_owned())
    })
}

pub fn restart(store: &Store, args: StopArgs) -> anyhow::Result<i32> {
    let exe = std::env::current_exe()?;
    each(&args.containers, |c| {
        let config = container::stop(store, c, args.time)?;
        container::start(store, &config.id, &exe)?;
        Ok(c.to_owned())
    })
}

pub fn wait(store: &Store, args: ContainersArgs) -> anyhow::Result<i32> {
    each(&args.containers, |c| Ok(container::wait(store, c)?.to_string()))
}

pub fn monitor(store: &Store, args: MonitorArgs) -> anyhow::Result<i32> {
    Ok(container::monitor_main(store, &args.id))
}

pub fn exec(store: &Store, args: ExecArgs) -> anyhow::Result<i32> {
    let (container, command) = args.container_and_command.split_first().expect("clap asks for two");
    let request = container::ExecRequest {
        command: command.to_vec(),
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        stdin: args.interactive,
        tty: args.tty,
    };
    Ok(container::exec(store, container, &request, &std::env::current_exe()?)?)
}

pub fn pause(store: &Store, args: ContainersArgs, pause: bool) -> anyhow::Result<i32> {
    each(&args.containers, |c| {
        container::processes::pause(store, c, pause)?;
        Ok(c.to_owned())
    })
}

pub fn top(store: &Store, args: TopArgs) -> anyhow::Result<i32> {
    let (_, processes) = container::processes::list(store, &args.container)?;
    crate::outln!("{:<8} {:<8} {:<8} CMD", "UID", "PID", "PPID")?;
    for p in processes {
        crate::outln!("{:<8} {:<8} {:<8} {}", p.uid, p.pid, p.ppid, crate::cli::output::escape(&p.command))?;
    }
    Ok(0)
}

pub fn container(store: &Store, args: ContainerArgs) -> anyhow::Result<i32> {
    match args.command {
        ContainerCommand::Prune { force: _ } => {
            let removed = container::usage::prune(store)?;
            if !removed.is_empty() {
                crate::outln!("Deleted Containers:")?;
            }
            for id in removed {
                crate::outln!("{id}")?;
            }
            Ok(0)
        }
    }
}

pub fn commit(store: &Store, args: CommitArgs) -> anyhow::Result<i32> {
    let _adding = kiln::gc::StoreLock::shared(store)?;
    let options = container::CommitOptions { message: args.message, changes: args.change };
    let manifest = container::commit(store, &args.container, &args.image, &options)?;
    crate::outln!("{}", manifest.digest())?;
    Ok(0)
}

pub fn cp(store: &Store, args: CpArgs) -> anyhow::Result<i32> {
    use kiln::container::copy::{copy, Direction};
    // Rootless, `cp` starts outside a user namespace of kiln's own (see
    // main.rs), to join a running container's; a stopped container's
    // filesystem is mounted, which needs kiln's own: run again in it.
    let named = in_container(&args.src).or(in_container(&args.dest));
    if let Some((reference, _)) = named.filter(|_| !nix::unistd::geteuid().is_root()) {
        let containers = container::Containers::new(store);
        let id = containers.find(reference)?;
        if containers.state(&id)?.status != container::Status::Running {
            return Ok(kiln::sandbox::userns::run_in_userns()?);
        }
    }
    match (in_container(&args.src), in_container(&args.dest)) {
        (Some((c, src)), None) => copy(store, c, &Direction::Out { src: src.to_owned(), dest: args.dest.into() })?,
        (None, Some((c, dest))) => copy(store, c, &Direction::In { src: args.src.into(), dest: dest.to_owned() })?,
        _ => return Err(container::ContainerError::CopySides.into()),
    }
    Ok(0)
}

/// docker's rule: `CONTAINER:PATH`, unless it starts with / or . (the host's).
fn in_container(arg: &str) -> Option<(&str, &str)> {
    (!arg.starts_with('/') && !arg.starts_with('.')).then(|| arg.split_once(':')).flatten()
}

pub fn stats(store: &Store, args: StatsArgs) -> anyhow::Result<i32> {
    use crate::cli::output::human_size as size;
    let containers = container::Containers::new(store);
    loop {
        let names = if args.containers.is_empty() {
            let running = |id: &String| containers.state(id).is_ok_and(|s| s.status == container::Status::Running);
            containers.ids()?.into_iter().filter(running).collect()
        } else {
            args.containers.clone()
        };
        // Sampled side by side: one interval for all, not one each.
        let samples: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = names
                .iter()
                .map(|c| s.spawn(move || container::stats::sample(store, c, std::time::Duration::from_millis(500))))
                .collect();
            handles.into_iter().map(|h| h.join().expect("a sampling thread")).collect()
        });
        crate::outln!(
            "{:<14} {:<24} {:>8} {:>22} {:>8} {:>20} {:>20} {:>6}",
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        )?;
        for sample in samples {
            let s = sample?;
            let pair = |(a, b): (u64, u64)| format!("{} / {}", size(a), size(b));
            let mem_percent = 100.0 * s.memory as f64 / s.memory_limit.max(1) as f64;
            crate::outln!(
                "{:<14} {:<24} {:>7.2}% {:>22} {:>7.2}% {:>20} {:>20} {:>6}",
                &s.id[..12],
                s.name,
                s.cpu_percent,
                pair((s.memory, s.memory_limit)),
                mem_percent,
                pair(s.net),
                pair(s.block),
                s.pids
            )?;
        }
        if args.no_stream {
            return Ok(0);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

pub fn attach(store: &Store, args: AttachArgs) -> anyhow::Result<i32> {
    Ok(container::attach::attach(store, &args.container, !args.no_stdin, &args.detach_keys, args.sig_proxy)?)
}
