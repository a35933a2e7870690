//! `kiln exec`'s side in the container: `kiln __exec PID` joins the
//! namespaces of the running sandbox whose process is PID (its user
//! namespace first, which gives the rest), and its cgroups, then forks the
//! command, which is confined exactly as the container's own command is
//! (see `init::Prepared`), and waits for it, passing signals on.
//!
//! It reads its spec (args, env, cwd, user) as JSON from fd 3, so nothing
//! of it shows in `ps`. It must start single-threaded (setns into a user
//! namespace refuses threaded callers) and, rootless, in the user namespace
//! the container's was made under or an ancestor of it: the caller's own,
//! not a new one of its own (see `main.rs`).

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::unistd::{fork, ForkResult, Pid};

use super::init::{self, report, InitError, Prepared};
use super::syscall::Linux;
use super::{exit, signals, Spec};

/// Why a command could not join a container (not: why it failed).
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("reading the exec spec")]
    Spec(#[source] std::io::Error),
    #[error("parsing the exec spec")]
    ParseSpec(#[source] serde_json::Error),
    #[error("the container's process {0} is gone: it is not running")]
    Gone(u32),
    #[error("opening the container's {what} ({path})")]
    Open {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("joining the container's {0} namespace")]
    Setns(&'static str, #[source] Errno),
    #[error("entering the container's root")]
    Root(#[source] Errno),
    #[error("joining the container's cgroup {0}")]
    Cgroup(String, #[source] std::io::Error),
    #[error(transparent)]
    Init(#[from] InitError),
}

/// The namespaces joined, in order: the user namespace first (it gives the
/// capabilities the others need), the pid namespace last (it applies to
/// the children forked after it).
const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
];

/// Join the user namespace of process `pid` (a container's PID 1), in
/// which this process becomes root: rootless `kiln cp` reads and writes a
/// running container's files as the container's root would, through its
/// `/proc/PID/root`. Only a single-threaded process may.
pub fn enter_user_namespace(pid: u32) -> Result<(), JoinError> {
    let path = format!("/proc/{pid}/ns/user");
    let fd = File::open(&path).map_err(|source| JoinError::Open { what: "namespace", path, source })?;
    nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWUSER).map_err(|e| JoinError::Setns("user", e))
}

/// Entry point of `kiln __exec PID`. Never returns.
pub fn exec_main(pid: &std::ffi::OsStr) -> ! {
    let code = join(pid).unwrap_or_else(|e| {
        report("kiln: exec", &e);
        exit::SETUP_FAILED
    });
    std::process::exit(code)
}

fn join(pid: &std::ffi::OsStr) -> Result<i32, JoinError> {
    // SAFETY: the launcher put the spec pipe's read end at fd 3.
    let mut input = unsafe { File::from_raw_fd(3) };
    let mut json = Vec::new();
    input.read_to_end(&mut json).map_err(JoinError::Spec)?;
    drop(input);
    let spec: Spec = serde_json::from_slice(&json).map_err(JoinError::ParseSpec)?;
    let spec = spec.validated().map_err(InitError::from)?;
    let sandbox: u32 = pid.to_str().and_then(|p| p.parse().ok()).ok_or(JoinError::Gone(0))?;
    // The container's PID 1: the sandbox process's one child.
    let children = format!("/proc/{sandbox}/task/{sandbox}/children");
    let init: u32 = fs::read_to_string(&children)
        .ok()
        .and_then(|c| c.split_whitespace().next()?.parse().ok())
        .ok_or(JoinError::Gone(sandbox))?;
    // Everything is opened before anything is joined: afterwards the
    // host's /proc is out of sight.
    let open = |what: &'static str, path: String| {
        File::open(&path).map(OwnedFd::from).map_err(|source| JoinError::Open { what, path, source })
    };
    let mut joins = Vec::new();
    for (name, flag) in NAMESPACES {
        let theirs = format!("/proc/{init}/ns/{name}");
        // The host's network (`--network host`) is already ours.
        if fs::read_link(&theirs).ok() == fs::read_link(format!("/proc/self/ns/{name}")).ok() {
            continue;
        }
        joins.push((name, flag, open("namespace", theirs)?));
    }
    let root = open("root", format!("/proc/{init}/root"))?;
    join_cgroups(init)?;
    for (name, flag, fd) in &joins {
        nix::sched::setns(fd.as_fd(), *flag).map_err(|e| JoinError::Setns(name, e))?;
    }
    nix::unistd::fchdir(std::os::fd::AsRawFd::as_raw_fd(&root)).map_err(JoinError::Root)?;
    nix::unistd::chroot(".").map_err(JoinError::Root)?;
    drop(root);
    drop(joins);
    signals::block(true).map_err(InitError::Signals)?;
    let _forwarding = signals::install(false).map_err(InitError::Signals)?;
    let sys = Linux;
    let command = Prepared::of(&sys, &spec)?;
    // SAFETY: this process is single-threaded.
    match unsafe { fork() }.map_err(InitError::Fork)? {
        ForkResult::Child => {
            // SAFETY: prctl on this process only.
            if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
                std::process::exit(exit::SETUP_FAILED);
            }
            command.exec(&sys, &spec, None)
        }
        ForkResult::Parent { child } => {
            signals::forward_to(child);
            signals::block(false).map_err(InitError::Signals)?;
            Ok(init::wait_exit_code(Pid::from_raw(child.as_raw()))?)
        }
    }
}

/// Move this process into the cgroups of process `init`, where they are not
/// ours already. Rootless, a tree kiln may not write to (not delegated) is
/// left: the container has no cgroup of its own there either.
fn join_cgroups(init: u32) -> Result<(), JoinError> {
    let theirs = fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap_or_default();
    let ours = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for (dir, own) in super::cgroup::joined_dirs(&mountinfo, &theirs, &ours) {
        if dir == own {
            continue;
        }
        let procs = dir.join("cgroup.procs");
        match fs::write(&procs, std::process::id().to_string()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !nix::unistd::geteuid().is_root() => {}
            Err(e) => return Err(JoinError::Cgroup(procs.display().to_string(), e)),
        }
    }
    Ok(())
}
