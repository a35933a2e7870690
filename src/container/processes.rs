//! A running container's processes as the host sees them: those in the pid
//! namespace of its PID 1 (the sandbox process's child), for `kiln top`;
//! and `pause` and `unpause`, which freeze the container's cgroup (each
//! container has one where kiln may make it) and mark the container paused
//! (`containers/<id>/paused`).

use std::fs;

use nix::sys::signal::Signal;

use super::state::Containers;
use super::{Config, ContainerError};
use crate::sandbox::cgroup::Freezer;
use crate::sandbox::SandboxError;
use crate::store::Store;

/// One process of a container.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub command: String,
}

/// The processes of running container `reference`, PID 1 first.
pub fn list(store: &Store, reference: &str) -> Result<(Config, Vec<Process>), ContainerError> {
    let (config, pids) = pids(store, reference)?;
    let processes = pids.into_iter().filter_map(read).collect();
    Ok((config, processes))
}

/// Stop (`pause`) or resume every process of running container `reference`:
/// with the freezer of its cgroup, or where it has none, with SIGSTOP and
/// SIGCONT.
pub fn pause(store: &Store, reference: &str, pause: bool) -> Result<Config, ContainerError> {
    let containers = Containers::new(store);
    let id = containers.find(reference)?;
    let marker = containers.dir(&id).join("paused");
    if pause == marker.exists() {
        let name = containers.config(&id)?.name;
        return Err(if pause { ContainerError::Paused(name) } else { ContainerError::NotPaused(name) });
    }
    let (_, config, state) = containers.running(&id)?;
    let freezer = read(state.pid).and_then(|sandbox| Freezer::of(state.pid, sandbox.ppid));
    match freezer {
        Some(freezer) => freezer.set(pause).map_err(SandboxError::from)?,
        None => signal_each(store, &id, if pause { Signal::SIGSTOP } else { Signal::SIGCONT })?,
    }
    let result = if pause { fs::write(&marker, b"") } else { fs::remove_file(&marker) };
    result.map_err(super::state::io("marking", &marker))?;
    Ok(config)
}

/// Send `signal` to every process of the container, listing again until no
/// new one appears (a process forked meanwhile is caught on the next pass).
fn signal_each(store: &Store, id: &str, signal: Signal) -> Result<(), ContainerError> {
    let mut done = std::collections::HashSet::new();
    loop {
        let (_, pids) = pids(store, id)?;
        let fresh: Vec<u32> = pids.into_iter().filter(|p| !done.contains(p)).collect();
        if fresh.is_empty() {
            return Ok(());
        }
        for pid in fresh {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
            done.insert(pid);
        }
    }
}

/// Whether container `id` is paused.
pub fn paused(containers: &Containers, id: &str) -> bool {
    containers.dir(id).join("paused").exists()
}

/// The host pid of the PID 1 of the sandbox whose process is `sandbox`:
/// its one child.
pub(crate) fn init_of(sandbox: u32) -> Option<u32> {
    let children = fs::read_to_string(format!("/proc/{sandbox}/task/{sandbox}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn pids(store: &Store, reference: &str) -> Result<(Config, Vec<u32>), ContainerError> {
    let (_, config, state) = Containers::new(store).running(reference)?;
    let Some(init) = init_of(state.pid) else {
        return Err(ContainerError::NotRunning(config.name));
    };
    let ns = |pid: u32| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let theirs = ns(init);
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .map_err(super::state::io("listing", std::path::Path::new("/proc")))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| theirs.is_some() && ns(*pid) == theirs)
        .collect();
    pids.sort_by_key(|p| (*p != init, *p));
    Ok((config, pids))
}

fn read(pid: u32) -> Option<Process> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let command = String::from_utf8_lossy(&cmdline).split('\0').filter(|a| !a.is_empty()).collect::<Vec<_>>().join(" ");
    Some(Process { pid, ppid: field("PPid:")?, uid: field("Uid:")?, command })
}
