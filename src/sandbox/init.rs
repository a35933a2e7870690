//! The sandbox's side: runs as `kiln __sandbox NETWORK SCRATCH`,
//! single-threaded, and enters the new namespaces itself (see the module doc
//! of `sandbox`).
//!
//! Three processes, three jobs: `kiln __sandbox` unshares, waits for its
//! maps, then for the path of its spec (which may come much later: see
//! `warm`); its first child is the pid namespace's PID 1, which sets the root
//! filesystem up, forks the command and reaps; the command's process drops
//! to the user and execs. Every kernel call goes through [`Syscall`], so the
//! order below is unit-tested at the bottom of this file.

use std::ffi::CString;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigHandler, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{execvpe, fork, ForkResult, Gid, Pid, Uid};

use super::channel::{self, ChannelError, Message};
use super::pipes::{exec_failed, exec_succeeded, open_gate, wait_for_gate};
use super::rootfs::{self, RootfsError};
use super::seccomp::{self, SeccompError};
use super::signals;
use super::spec::SpecError;
use super::syscall::{Linux, Syscall};
use super::workdir::WorkdirError;
use super::{exit, NetworkMode, Spec};
use crate::users::{Accounts, ExecUser, UserError};

/// Why the sandbox could not be set up (not: why the command failed).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("kiln __sandbox takes the network mode (host, none or outbound), not {0:?}")]
    NetworkArg(String),
    #[error("the spec asks for the {spec:?} network, and this sandbox was made for {made:?}")]
    NetworkMismatch { made: NetworkMode, spec: NetworkMode },
    #[error("the spec {0} is not in the scratch folder {1}")]
    SpecElsewhere(PathBuf, PathBuf),
    #[error("reading {0}")]
    ReadSpec(PathBuf, #[source] std::io::Error),
    #[error("parsing {0}")]
    ParseSpec(PathBuf, #[source] serde_json::Error),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("closing inherited descriptors")]
    CloseDescriptors(#[source] Errno),
    #[error("creating namespaces (user, pid, uts, ipc, and network unless the host's)")]
    Unshare(#[source] Errno),
    #[error("creating the mount namespace")]
    UnshareMounts(#[source] Errno),
    #[error("bringing up the loopback interface of the step's network namespace")]
    Loopback(#[source] Errno),
    #[error(
        "blocking the cloud metadata service (169.254.0.0/16, fd00:ec2::/64) in the step's network namespace; \
         RUN --network=none avoids the need"
    )]
    BlockMetadata(#[source] Errno),
    #[error("kiln could not map ids into the sandbox's user namespace")]
    Handshake(#[source] ChannelError),
    #[error("kiln's network helper never connected the step's network (see kiln's own error)")]
    NetworkNotReady,
    #[error("the pipe the command waits on for its network")]
    NetworkGate(#[source] Errno),
    #[error("fork")]
    Fork(#[source] Errno),
    #[error("making the pipe the command's start is reported on")]
    ExecPipe(#[source] Errno),
    #[error("forwarding signals to the command")]
    Signals(#[source] Errno),
    #[error("setting the parent-death signal")]
    DeathSignal(#[source] Errno),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("making the container's terminal its controlling terminal")]
    Terminal(#[source] Errno),
    #[error("sethostname")]
    Hostname(#[source] Errno),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Workdir(#[from] WorkdirError),
    #[error("setgroups")]
    Setgroups(#[source] Errno),
    #[error("dropping capability {0}")]
    DropCapability(u32, #[source] Errno),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("installing the seccomp filter")]
    InstallSeccomp(#[source] Errno),
    #[error("setgid {0}")]
    Setgid(u32, #[source] Errno),
    #[error("setuid {0}")]
    Setuid(u32, #[source] Errno),
    #[error("chdir {0}")]
    Chdir(String, #[source] Errno),
    #[error("setting RLIMIT_NPROC to the pids limit {0}")]
    ProcessLimit(u64, #[source] Errno),
    #[error("waiting for the {0}")]
    Wait(&'static str, #[source] Errno),
    #[error("reading the value of the environment variable {name} from {}", .path.display())]
    EnvFile {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Never the value itself: it is a secret.
    #[error("the value of the environment variable {0} {1}")]
    EnvValue(String, &'static str),
}

pub(super) type Result<T> = std::result::Result<T, InitError>;

/// Why the command's own process did not become the command.
#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error(transparent)]
    Setup(#[from] InitError),
    #[error("exec {0:?}: executable file not found in $PATH")]
    NotFound(String),
    #[error("exec {0:?}: permission denied or not an executable ({1})")]
    NotExecutable(String, Errno),
    #[error("exec {0:?}")]
    Failed(String, #[source] Errno),
}

impl ExecError {
    /// docker's exit code for each failure.
    fn exit_code(&self) -> i32 {
        match self {
            ExecError::Setup(_) => exit::SETUP_FAILED,
            ExecError::NotFound(_) => exit::NOT_FOUND,
            ExecError::NotExecutable(..) | ExecError::Failed(..) => exit::CANNOT_EXECUTE,
        }
    }
}

/// Print `error` and its causes on one line, after `prefix`.
pub(super) fn report(prefix: &str, error: &dyn std::error::Error) {
    let mut line = format!("{prefix}: {error}");
    let mut cause = error.source();
    while let Some(e) = cause {
        line.push_str(&format!(": {e}"));
        cause = e.source();
    }
    eprintln!("{line}");
}

/// Entry point of `kiln __sandbox NETWORK SCRATCH`: a sandbox with that
/// network, whose spec the launcher writes in SCRATCH and names on the
/// channel. Never returns.
pub fn child_main(network: &std::ffi::OsStr, scratch: &Path) -> ! {
    let code = sandbox(network, scratch).unwrap_or_else(|e| {
        // A warm sandbox that no step took is let go without a word.
        if !matches!(e, InitError::Handshake(ChannelError::Closed(Message::Spec))) {
            report("kiln: sandbox", &e);
        }
        exit::SETUP_FAILED
    });
    std::process::exit(code)
}

fn sandbox(network: &std::ffi::OsStr, scratch: &Path) -> Result<i32> {
    let made = network.to_str().and_then(NetworkMode::from_arg);
    let made = made.ok_or_else(|| InitError::NetworkArg(network.to_string_lossy().into_owned()))?;
    let sys = Linux;
    // SAFETY: the launcher handed this process the channel on its fd 3, and
    // nothing else here has touched it.
    let (spec_path, mut launcher) = enter_namespaces(&sys, unsafe { channel::Child::inherited() }, made)?;
    if spec_path.parent() != Some(scratch) {
        return Err(InitError::SpecElsewhere(spec_path, scratch.to_owned()));
    }
    let bytes = fs::read(&spec_path).map_err(|e| InitError::ReadSpec(spec_path.clone(), e))?;
    let spec: Spec = serde_json::from_slice(&bytes).map_err(|e| InitError::ParseSpec(spec_path, e))?;
    if spec.network != made {
        return Err(InitError::NetworkMismatch { made, spec: spec.network });
    }
    let spec = with_env_files(spec.validated()?)?;
    // Blocked until PID 1 is known (see `signals::block`); PID 1 inherits
    // the handlers, which it needs (see `signals`), and the mask.
    signals::block(true).map_err(InitError::Signals)?;
    let _forwarding = signals::install(false).map_err(InitError::Signals)?;
    // Closed on exec: only the command's process holds the write end by
    // then, so its end without a byte says the exec succeeded; PID 1 and
    // the command's process write a byte when they fail.
    let (exec_read, exec_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(InitError::ExecPipe)?;
    // PID 1 prepares the root while the network helper starts, and forks
    // the command only once this process says the network is in place.
    let gate = match made {
        NetworkMode::Outbound => {
            Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(InitError::NetworkGate)?)
        }
        NetworkMode::Host | NetworkMode::None => None,
    };
    let (gate_read, gate_write) = gate.unzip();
    // The first child forked after unshare(CLONE_NEWPID) is the namespace's PID 1.
    // SAFETY: this process is single-threaded (a fresh exec that started no threads).
    match unsafe { fork() }.map_err(InitError::Fork)? {
        ForkResult::Child => {
            // The launcher's channel is this process's alone: no process of
            // the step ever holds it.
            drop(launcher);
            drop(exec_read);
            drop(gate_write);
            let code = pid1(&sys, &spec, exec_write, gate_read).unwrap_or_else(|e| {
                report("kiln: sandbox", &e);
                exit::SETUP_FAILED
            });
            std::process::exit(code)
        }
        ForkResult::Parent { child } => {
            drop(exec_write);
            drop(gate_read);
            signals::forward_to(child);
            signals::block(false).map_err(InitError::Signals)?;
            if let Some(gate) = gate_write {
                // Dropped unopened on an error: PID 1 reads the pipe's end,
                // and exits without running the command.
                open_gate(&sys, &mut launcher, gate)?;
            }
            if exec_succeeded(exec_read) {
                let _ = launcher.report_running();
            }
            let code = wait_exit_code(child)?;
            // PID 1 reaped, the step is over. Our copies of its streams go
            // first, so the launcher reads them to their end; then it is
            // told, and goes on while this process's exit tears its
            // namespaces down. Nothing is opened here: the mount namespace
            // is the step's, whose /dev the step could have changed.
            for fd in 0..=2 {
                let _ = nix::unistd::close(fd);
            }
            let _ = launcher.report_exit(code);
            Ok(code)
        }
    }
}

/// Unshare the namespaces, ask the launcher to write our uid/gid maps and
/// wait until it has: only then are we root in the new user namespace. It
/// must happen after exec: exec'ing while unmapped would drop the
/// capabilities the new namespace gives. The launcher closed every
/// descriptor but stdio and the channel; make sure. The channel stays, to
/// report the step's end on (see `channel`), and PID 1 drops its copy first
/// thing: in the step, no descriptor but stdio exists, so none can be
/// reached through /proc/self/fd.
///
/// A network namespace of its own, unless `network` is the host's: created
/// with the user namespace, so that namespace owns it (the launcher's
/// helper joins both; see `network`). The launcher answers only once the
/// helper has configured it; `lo` is brought up here, as nothing else does
/// for `--network=none`.
///
/// Then wait for the spec's path: the launcher may have started this
/// sandbox before its step was known (see `warm`). Only then is the mount
/// namespace made, a copy of the launcher's as it is now: with the step's
/// root and the sources of its mounts, which the launcher mounted while
/// this process waited (a copy made earlier would not have them).
fn enter_namespaces(
    sys: &dyn Syscall,
    mut channel: channel::Child,
    network: NetworkMode,
) -> Result<(PathBuf, channel::Child)> {
    sys.close_range(channel::CHILD_FD as u32 + 1).map_err(InitError::CloseDescriptors)?;
    let mut flags =
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
    if network != NetworkMode::Host {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    sys.unshare(flags).map_err(InitError::Unshare)?;
    channel.request_mapping().map_err(InitError::Handshake)?;
    channel.wait_for_mapping().map_err(InitError::Handshake)?;
    if network != NetworkMode::Host {
        sys.loopback_up().map_err(InitError::Loopback)?;
    }
    let spec = channel.wait_for_spec().map_err(InitError::Handshake)?;
    sys.unshare(CloneFlags::CLONE_NEWNS).map_err(InitError::UnshareMounts)?;
    sys.close_range(channel::CHILD_FD as u32 + 1).map_err(InitError::CloseDescriptors)?;
    Ok((spec, channel))
}

pub(super) fn wait_exit_code(pid: Pid) -> Result<i32> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(InitError::Wait("container", e)),
        }
    }
}

/// PID 1 of the sandbox: set the filesystem up, run the command, reap, exit
/// with its status. `exec_report` is the write end of the exec pipe; with
/// `gate`, the command waits for its network (see [`open_gate`]).
fn pid1(sys: &dyn Syscall, spec: &Spec, exec_report: OwnedFd, gate: Option<OwnedFd>) -> Result<i32> {
    let ready = prepare_root(sys, spec).and_then(|()| Prepared::of(sys, spec));
    let command = match ready.and_then(|command| gate.map_or(Ok(()), wait_for_gate).map(|()| command)) {
        Ok(command) => command,
        Err(e) => {
            exec_failed(&exec_report);
            return Err(e);
        }
    };
    // SAFETY: PID 1 is single-threaded.
    let forked = unsafe { fork() }.map_err(InitError::Fork);
    if forked.is_err() {
        exec_failed(&exec_report);
    }
    match forked? {
        ForkResult::Child => command.exec(sys, spec, Some(&exec_report)),
        ForkResult::Parent { child } => {
            // The command's process holds the only copy left.
            drop(exec_report);
            signals::forward_to(child);
            signals::block(false).map_err(InitError::Signals)?;
            reap_until(child)
        }
    }
}

/// What the command's process needs, made in its parent, where an error
/// can still be reported as the setup's: in the root the command sees.
pub(super) struct Prepared {
    user: ExecUser,
    cwd: OwnedFd,
    args: Vec<CString>,
    env: Vec<CString>,
    confinement: Confinement,
}

impl Prepared {
    pub(super) fn of(sys: &dyn Syscall, spec: &Spec) -> Result<Self> {
        let user = Accounts::read(Path::new("/"))?.exec_user(&spec.user)?;
        let cwd = sys.open_workdir(&spec.cwd, Uid::from_raw(user.uid), Gid::from_raw(user.gid))?;
        let cstrings = |what, texts: &[String]| {
            texts
                .iter()
                .map(|t| CString::new(t.as_str()).map_err(|_| SpecError::Nul { what, value: t.clone() }))
                .collect::<std::result::Result<Vec<_>, _>>()
        };
        let args = cstrings("argument", &spec.args)?;
        let env = cstrings("environment entry", &with_home(&spec.env, &user.home))?;
        let confinement = Confinement::of(spec)?;
        Ok(Self { user, cwd, args, env, confinement })
    }

    /// In the command's own process: become the command. Never returns.
    /// Where it fails, a byte on `exec_report` says so (see `sandbox`).
    pub(super) fn exec(&self, sys: &dyn Syscall, spec: &Spec, exec_report: Option<&OwnedFd>) -> ! {
        let keep = exec_report.map(std::os::fd::AsRawFd::as_raw_fd);
        let err = exec_command(sys, spec, self, keep);
        report("kiln", &err);
        if let Some(fd) = exec_report {
            exec_failed(fd);
        }
        std::process::exit(err.exit_code())
    }
}

/// `spec` with the variables of [`Spec::env_files`] read now, just before
/// the command starts: their values (secrets) are never in the spec file.
/// Each replaces any entry of the same name.
fn with_env_files(mut spec: Spec) -> Result<Spec> {
    for file in std::mem::take(&mut spec.env_files) {
        let name = file.name;
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(InitError::EnvValue(name, "cannot be set: the name is empty or holds '=' or NUL"));
        }
        let bytes = fs::read(&file.source).map_err(|source| InitError::EnvFile {
            name: name.clone(),
            path: file.source.clone(),
            source,
        })?;
        if bytes.contains(&0) {
            return Err(InitError::EnvValue(name, "holds a NUL byte, which an environment cannot carry"));
        }
        let Ok(value) = String::from_utf8(bytes) else {
            return Err(InitError::EnvValue(name, "is not UTF-8"));
        };
        let prefix = format!("{name}=");
        spec.env.retain(|e| !e.starts_with(&prefix));
        spec.env.push(format!("{prefix}{value}"));
    }
    Ok(spec)
}

/// `env` with HOME set to the user's home when it is unset or empty, as runc
/// does for docker's RUN steps and containers (never in the image config).
fn with_home(env: &[String], home: &str) -> Vec<String> {
    let mut env = env.to_vec();
    match env.iter_mut().find(|e| e.starts_with("HOME=")) {
        Some(e) if e == "HOME=" => *e = format!("HOME={home}"),
        Some(_) => {}
        None => env.push(format!("HOME={home}")),
    }
    env
}

/// The root filesystem, then the hostname, of the container.
fn prepare_root(sys: &dyn Syscall, spec: &Spec) -> Result<()> {
    sys.kill_with_parent().map_err(InitError::DeathSignal)?;
    let (files, resolv_conf) = (&spec.files, spec.resolv_conf.as_deref());
    rootfs::enter(sys, &spec.rootfs, files, resolv_conf, &spec.mounts, !spec.insecure, spec.readonly_root)?;
    sys.sethostname(&spec.hostname).map_err(InitError::Hostname)
}

/// Reap every process until `main` exits; return its exit code. Orphans in the
/// pid namespace are re-parented to us, so we reap them too.
fn reap_until(main: Pid) -> Result<i32> {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return Ok(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(InitError::Wait("command", e)),
        }
    }
}

/// In the command's process: become the user in the working directory, then
/// exec. Returns only on failure.
fn exec_command(sys: &dyn Syscall, spec: &Spec, command: &Prepared, keep: Option<std::os::fd::RawFd>) -> ExecError {
    let Prepared { user, cwd, args, env, confinement } = command;
    // A user namespace with setgroups denied (rootless without subordinate
    // ids) cannot change groups; the process keeps the one group it has.
    let groups_denied = fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if let Some(n) = spec.limits.pids {
        if let Err(e) = limit_processes(n) {
            return e.into();
        }
    }
    if let Err(e) = become_user(sys, user, confinement, cwd, spec, groups_denied, keep) {
        return e.into();
    }
    // Signals PID 1 blocked, or Rust's runtime ignores, start at their
    // defaults (handled ones are reset by exec itself).
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGPIPE] {
        // SAFETY: restoring the default disposition has no handler to race with.
        let _ = unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) };
    }
    if let Err(e) = signals::block(false) {
        return InitError::Signals(e).into();
    }
    // execvpe searches the PATH of the calling process, so set ours to the
    // command's (a validated spec has one).
    std::env::set_var("PATH", spec.path().unwrap_or_default());
    let errno = match execvpe(&args[0], args, env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let cmd = spec.args[0].clone();
    match errno {
        Errno::ENOENT => ExecError::NotFound(cmd),
        Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR => ExecError::NotExecutable(cmd, errno),
        e => ExecError::Failed(cmd, e),
    }
}

/// Bound the command's processes with RLIMIT_NPROC too, the one bound where
/// kiln gets no cgroup (rootless without a delegated tree). Since Linux 5.14
/// the kernel counts it per user namespace and uid, and the sandbox has a
/// user namespace of its own: only the step's processes of one uid count,
/// not all that the same host user runs elsewhere. Real root (host uid 0)
/// is exempt, but then kiln has its cgroup. Never above the hard limit kiln
/// was given, which an unprivileged process cannot raise.
fn limit_processes(n: u64) -> Result<()> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write this struct.
    unsafe {
        Errno::result(libc::getrlimit(libc::RLIMIT_NPROC, &mut limit)).map_err(|e| InitError::ProcessLimit(n, e))?;
        let n = (n as libc::rlim_t).min(limit.rlim_max);
        let limit = libc::rlimit { rlim_cur: n, rlim_max: n };
        Errno::result(libc::setrlimit(libc::RLIMIT_NPROC, &limit)).map_err(|e| InitError::ProcessLimit(n, e))?;
    }
    Ok(())
}

/// How far the command is confined beyond its namespaces.
struct Confinement {
    /// Keep only docker's default capabilities.
    drop_capabilities: bool,
    /// The seccomp programs to install, in order; none for
    /// `--security=insecure`, or where the kernel has no seccomp (as docker).
    seccomp: Vec<seccomp::Program>,
}

impl Confinement {
    fn of(spec: &Spec) -> Result<Self> {
        if spec.insecure {
            // docker --privileged: every capability, no filter.
            return Ok(Self { drop_capabilities: false, seccomp: Vec::new() });
        }
        let seccomp =
            if seccomp::kernel_supports() { seccomp::default_filters()?.unwrap_or_default() } else { Vec::new() };
        Ok(Self { drop_capabilities: true, seccomp })
    }
}

/// Drop to `user` and enter the working directory `cwd`, in the one order
/// that holds: capabilities dropped while still root (afterwards the
/// bounding set cannot change), the seccomp filter installed while
/// CAP_SYS_ADMIN is still effective (installing it without no_new_privs, so
/// that setuid programs work as in docker, needs it; setuid to a user clears
/// it), groups and gid before the uid (after setuid they cannot change
/// either), the directory entered as the user (so a folder it may not enter
/// fails, as in docker), and last every descriptor above stdio closed, the
/// directory's included. Every call after the filter is one it allows.
fn become_user(
    sys: &dyn Syscall,
    user: &ExecUser,
    confinement: &Confinement,
    cwd: &OwnedFd,
    spec: &Spec,
    groups_denied: bool,
    keep: Option<std::os::fd::RawFd>,
) -> Result<()> {
    let (cwd_text, terminal) = (spec.cwd.as_str(), spec.terminal);
    // A session of its own, as the command's process group leader.
    let _ = sys.setsid();
    // SAFETY: an ioctl on stdin, which is the pty the launcher made.
    if terminal && unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(InitError::Terminal(Errno::last()));
    }
    if !groups_denied {
        let groups: Vec<Gid> = user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        sys.setgroups(&groups).map_err(InitError::Setgroups)?;
    }
    if confinement.drop_capabilities {
        drop_capabilities(sys)?;
    }
    for program in &confinement.seccomp {
        sys.install_seccomp(program).map_err(InitError::InstallSeccomp)?;
    }
    sys.setresgid(Gid::from_raw(user.gid)).map_err(|e| InitError::Setgid(user.gid, e))?;
    sys.setresuid(Uid::from_raw(user.uid)).map_err(|e| InitError::Setuid(user.uid, e))?;
    sys.fchdir(cwd).map_err(|e| InitError::Chdir(cwd_text.to_owned(), e))?;
    sys.check_cwd_inside_root(cwd_text)?;
    // Nothing kiln (or whoever started it) has open may reach the command;
    // the exec report (`keep`) closes on exec.
    match keep {
        Some(fd) => sys.close_range_keeping(3, fd),
        None => sys.close_range(3),
    }
    .map_err(InitError::CloseDescriptors)
}

/// Capabilities a RUN step or container keeps: docker's default set (numbers
/// from linux/capability.h: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID,
/// SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE,
/// SETFCAP).
const KEPT_CAPABILITIES: [u32; 14] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/// Drop every other capability from the bounding set, so the command (even as
/// uid 0, which as real root is the host's uid 0) can never mount, remount, load
/// modules or reach the host kernel's knobs.
fn drop_capabilities(sys: &dyn Syscall) -> Result<()> {
    for cap in (0..64).filter(|c| !KEPT_CAPABILITIES.contains(c)) {
        match sys.drop_bounding_capability(cap) {
            Ok(()) => {}
            Err(Errno::EINVAL) => break, // past the kernel's last capability
            Err(e) => return Err(InitError::DropCapability(cap, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::syscall::{Call, Recording};

    fn at(calls: &[Call], want: &Call) -> usize {
        calls.iter().position(|c| c == want).unwrap_or_else(|| panic!("{want:?} not called: {calls:#?}"))
    }

    /// The whole setup against the recording kernel: namespaces, root,
    /// working directory, user.
    fn record_setup(groups_denied: bool) -> Vec<Call> {
        record_setup_with(groups_denied, NetworkMode::Host)
    }

    fn record_setup_with(groups_denied: bool, network: NetworkMode) -> Vec<Call> {
        let confinement =
            Confinement { drop_capabilities: true, seccomp: seccomp::default_filters().unwrap().unwrap() };
        record_confined(groups_denied, &confinement, network)
    }

    fn record_confined(groups_denied: bool, confinement: &Confinement, network: NetworkMode) -> Vec<Call> {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec {
            rootfs: dir.path().to_owned(),
            args: vec!["sh".into()],
            env: vec![],
            cwd: "/srv".into(),
            user: "1000:1000".into(),
            hostname: "box".into(),
            ..Spec::default()
        };
        let sys = Recording::default();
        let (mut launcher, child) = channel::pair().unwrap();
        let mapper = std::thread::spawn(move || {
            launcher.wait_for_mapping_request().unwrap();
            launcher.mapping_written().unwrap();
            launcher.send_spec(Path::new("/spec.json")).unwrap();
        });
        enter_namespaces(&sys, child, network).unwrap();
        mapper.join().unwrap();
        prepare_root(&sys, &spec).unwrap();
        let user = ExecUser { uid: 1000, gid: 1000, groups: vec![1000, 27], home: "/".into() };
        let cwd = sys.open_workdir(&spec.cwd, Uid::from_raw(user.uid), Gid::from_raw(user.gid)).unwrap();
        become_user(&sys, &user, confinement, &cwd, &spec, groups_denied, None).unwrap();
        sys.calls()
    }

    #[test]
    fn env_files_are_read_into_the_environment_and_replace_the_same_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, value: &[u8]| {
            let source = dir.path().join(name);
            fs::write(&source, value).unwrap();
            crate::sandbox::SpecEnvFile { name: name.into(), source }
        };
        let spec = |env: &[&str], files| Spec {
            env: env.iter().map(|s| s.to_string()).collect(),
            env_files: files,
            ..Spec::default()
        };
        let got = with_env_files(spec(&["A=1", "TOKEN=old"], vec![file("TOKEN", b"s3cr3t")])).unwrap();
        assert_eq!(got.env, ["A=1", "TOKEN=s3cr3t"]);
        assert!(got.env_files.is_empty());
        for (files, want) in [
            (vec![file("NUL", b"a\0b")], "the value of the environment variable NUL holds a NUL byte"),
            (vec![file("BIN", b"\xff")], "the value of the environment variable BIN is not UTF-8"),
        ] {
            let err = with_env_files(spec(&[], files)).unwrap_err().to_string();
            assert!(err.starts_with(want) && !err.contains('\u{0}'), "{err}");
        }
        let missing = crate::sandbox::SpecEnvFile { name: "GONE".into(), source: dir.path().join("gone") };
        let err = with_env_files(spec(&[], vec![missing])).unwrap_err().to_string();
        assert!(err.contains("environment variable GONE from"), "{err}");
    }

    #[test]
    fn home_is_set_only_when_unset_or_empty() {
        let env = |e: &[&str]| e.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(with_home(&env(&["PATH=/bin"]), "/root"), env(&["PATH=/bin", "HOME=/root"]));
        assert_eq!(with_home(&env(&["HOME=", "A=1"]), "/app"), env(&["HOME=/app", "A=1"]));
        assert_eq!(with_home(&env(&["HOME=/mine"]), "/app"), env(&["HOME=/mine"]));
    }

    #[test]
    fn descriptors_are_closed_before_the_workdir_is_opened_and_after_it_is_entered() {
        let calls = record_setup(false);
        let closes: Vec<usize> =
            calls.iter().enumerate().filter(|(_, c)| matches!(c, Call::CloseRange(_))).map(|(i, _)| i).collect();
        let unshare = calls.iter().position(|c| matches!(c, Call::Unshare(_))).unwrap();
        // Before unsharing, all but the channel; after the handshake too: it
        // stays to report the step's end on, and PID 1 drops it at once.
        assert_eq!(calls[closes[0]], Call::CloseRange(4));
        assert!(closes[0] < unshare && unshare < closes[1]);
        assert_eq!(calls[closes[1]], Call::CloseRange(4));
        assert!(closes[1] < at(&calls, &Call::OpenWorkdir("/srv".into())));
        // And once more, last, for the working directory's own descriptor.
        assert_eq!(calls.last(), Some(&Call::CloseRange(3)));
        assert!(at(&calls, &Call::Fchdir) < calls.len() - 1);
    }

    #[test]
    fn the_namespaces_are_new_and_the_root_is_entered_before_the_user_is_resolved() {
        let calls = record_setup(false);
        let first =
            CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC;
        assert_eq!(calls[1], Call::Unshare(first));
        // The mount namespace last, once the spec (and so the root, mounted
        // meanwhile) is there: before any mount, and before PID 1 closes what it holds.
        let mounts = at(&calls, &Call::Unshare(CloneFlags::CLONE_NEWNS));
        assert!(mounts > 1 && mounts < at(&calls, &Call::CloseRange(3)));
        assert!(calls[..mounts].iter().all(|c| !matches!(c, Call::Mount { .. } | Call::PivotRoot(..))));
        let pivot = calls.iter().position(|c| matches!(c, Call::PivotRoot(..))).unwrap();
        assert!(at(&calls, &Call::KillWithParent) < pivot);
        assert!(pivot < at(&calls, &Call::Sethostname("box".into())));
        assert!(pivot < at(&calls, &Call::OpenWorkdir("/srv".into())));
    }

    #[test]
    fn a_private_network_is_unshared_with_the_user_namespace_and_its_lo_brought_up() {
        for network in [NetworkMode::None, NetworkMode::Outbound] {
            let want = [Call::LoopbackUp, Call::Unshare(CloneFlags::CLONE_NEWNS), Call::CloseRange(4)];
            let calls = record_setup_with(false, network);
            let Call::Unshare(flags) = calls[1] else { panic!("{calls:#?}") };
            assert!(flags.contains(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUSER), "{network:?}");
            // After the handshake (root in the namespace that owns it) and
            // before the descriptors are closed. The metadata routes go in
            // later, once the helper is done (see `open_gate`).
            assert_eq!(calls[2..2 + want.len()], want[..], "{network:?}");
            assert!(!calls.contains(&Call::BlockMetadata), "{network:?}");
        }
        let host = record_setup_with(false, NetworkMode::Host);
        assert!(!matches!(host[1], Call::Unshare(f) if f.contains(CloneFlags::CLONE_NEWNET)));
        assert!(!host.contains(&Call::LoopbackUp));
        assert!(!host.contains(&Call::BlockMetadata));
    }

    #[test]
    fn capabilities_go_before_the_ids_change_and_the_uid_changes_last() {
        let calls = record_setup(false);
        let dropped: Vec<u32> = calls
            .iter()
            .filter_map(|c| if let Call::DropBoundingCapability(n) = c { Some(*n) } else { None })
            .collect();
        let want: Vec<u32> = (0..=40).filter(|c| !KEPT_CAPABILITIES.contains(c)).collect();
        assert_eq!(dropped, want, "every capability but docker's set, up to the kernel's last");
        let last_drop = calls.iter().rposition(|c| matches!(c, Call::DropBoundingCapability(_))).unwrap();
        let (setgroups, setgid, setuid) = (
            at(&calls, &Call::Setgroups(vec![1000, 27])),
            at(&calls, &Call::Setresgid(1000)),
            at(&calls, &Call::Setresuid(1000)),
        );
        assert!(at(&calls, &Call::Setsid) < setgroups);
        assert!(setgroups < last_drop && last_drop < setgid && setgid < setuid);
        // The working directory is entered as the user, and checked after.
        assert!(setuid < at(&calls, &Call::Fchdir));
        assert!(at(&calls, &Call::Fchdir) < at(&calls, &Call::CheckCwdInsideRoot));
    }

    #[test]
    fn the_seccomp_filter_goes_on_after_the_capabilities_and_before_the_ids_change() {
        let calls = record_setup(false);
        let installed: Vec<usize> =
            calls.iter().enumerate().filter(|(_, c)| matches!(c, Call::InstallSeccomp(_))).map(|(i, _)| i).collect();
        assert_eq!(installed.len(), 1, "one program, clone3's ENOSYS in it: {calls:#?}");
        let last_drop = calls.iter().rposition(|c| matches!(c, Call::DropBoundingCapability(_))).unwrap();
        assert!(last_drop < installed[0] && installed[0] < at(&calls, &Call::Setresgid(1000)));
        // Nothing the filter forbids comes after it.
        assert!(!calls[installed[0]..]
            .iter()
            .any(|c| matches!(c, Call::Mount { .. } | Call::Unshare(_) | Call::PivotRoot(..) | Call::Sethostname(_))));
    }

    #[test]
    fn insecure_keeps_every_capability_and_installs_no_filter() {
        let spec = Spec { insecure: true, ..Spec::default() };
        let calls = record_confined(false, &Confinement::of(&spec).unwrap(), NetworkMode::Host);
        assert!(!calls.iter().any(|c| matches!(c, Call::DropBoundingCapability(_) | Call::InstallSeccomp(_))));
        assert!(calls.contains(&Call::Setresuid(1000)));
    }

    #[test]
    fn groups_are_left_alone_where_the_namespace_denies_setgroups() {
        let calls = record_setup(true);
        assert!(!calls.iter().any(|c| matches!(c, Call::Setgroups(_))));
        assert!(calls.contains(&Call::Setresgid(1000)));
    }
}
