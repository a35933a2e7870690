//! The engine's side of the sandbox: check the spec, take a sandbox
//! started ahead for a step like it (see `warm`) or start one (see
//! `started`), and run the spec in it.

use std::path::{Path, PathBuf};

use super::cgroup::CgroupError;
use super::channel::ChannelError;
use super::network::{NetworkError, PortMap};
use super::started::Started;
pub use super::started::Wiring;
use super::warm::Warm;
use super::{Limits, NetworkMode, Spec, SpecError};

/// Why a sandboxed process could not be run (not: why it failed).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid sandbox spec")]
    Invalid(#[from] SpecError),
    #[error("writing the sandbox spec to {0}")]
    Spec(PathBuf, #[source] std::io::Error),
    #[error("starting the sandbox process (in its cgroup, to enter new user, mount, pid, uts and ipc namespaces)")]
    Spawn(#[source] std::io::Error),
    #[error("writing the uid/gid maps of the sandbox ({0})")]
    IdMap(PathBuf, #[source] std::io::Error),
    #[error("the sandbox handshake")]
    Handshake(#[source] ChannelError),
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error("forwarding signals to the sandbox")]
    Signals(#[source] nix::errno::Errno),
    #[error("waiting for the sandbox")]
    Wait(#[source] std::io::Error),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
}

/// Where the sandboxed process's standard streams go. Never kiln's own
/// descriptors: a terminal, a directory or a file kiln was handed could be
/// reopened through /proc/self/fd, and a terminal takes TIOCSTI keystrokes.
pub enum Stdio<'a> {
    /// Copied through pipes to and from kiln's own streams (for `kiln run`).
    /// stdin is /dev/null unless `stdin` is set. SIGTERM, SIGINT, SIGHUP,
    /// SIGUSR1 and SIGUSR2 sent to kiln meanwhile are forwarded to the
    /// command, as docker's `--sig-proxy` does.
    Proxy { stdin: bool },
    /// As `Proxy`, but stdout and stderr are handed to `sink` as they come,
    /// each chunk with its stream (a container's monitor logs them), until
    /// it says no more of that stream (its reader has gone: the command then
    /// gets SIGPIPE, as in a shell pipeline); `started` is told the sandbox
    /// process's pid once the command's exec succeeded (never, when it failed).
    Streams { stdin: bool, sink: &'a (dyn Fn(Stream, &[u8]) -> bool + Sync), started: &'a (dyn Fn(u32) + Sync) },
    /// A new pty for stdin, stdout and stderr (`kiln run -t`): what the
    /// command writes is handed to `sink` as stdout; with `input`, kiln's
    /// stdin is copied in (a terminal, in raw mode, by the caller), and
    /// kiln's window size follows it there.
    Terminal { input: bool, sink: &'a (dyn Fn(Stream, &[u8]) -> bool + Sync), started: &'a (dyn Fn(u32) + Sync) },
    /// stdin is /dev/null; stdout and stderr, merged, are handed over line by line.
    Capture(&'a mut (dyn FnMut(&str) + Send)),
}

/// Which of the command's output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a sandbox ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exit {
    /// The command's exit code, 128+N when signal N killed it.
    pub code: i32,
    /// The kernel's OOM killer killed a process of it (its memory limit).
    pub oom_killed: bool,
    /// It ran past its `Limits::timeout_ms` and was killed.
    pub timed_out: bool,
}

/// Runs specs in sandboxes.
pub struct Sandbox {
    exe: PathBuf,
    scratch: PathBuf,
    warm: Warm,
    ports: Vec<PortMap>,
    proxy_signals: bool,
}

impl Sandbox {
    /// A sandbox launcher re-executing `exe`, with spec files under `scratch`.
    pub fn new(exe: &Path, scratch: &Path) -> Self {
        Self {
            exe: exe.to_owned(),
            scratch: scratch.to_owned(),
            warm: Warm::default(),
            ports: Vec::new(),
            proxy_signals: true,
        }
    }

    /// Signals kiln gets are not passed on to a command whose streams are
    /// kiln's (`kiln run --sig-proxy=false`).
    pub fn without_signal_proxy(mut self) -> Self {
        self.proxy_signals = false;
        self
    }

    /// Publish `ports` of each sandbox's network on the host (`kiln run -p`).
    pub fn with_ports(mut self, ports: &[PortMap]) -> Self {
        self.ports = ports.to_vec();
        self
    }

    /// Run `spec` to completion and say how it ended (see [`Exit`]).
    /// The spec is checked whole (and given its default PATH, see
    /// [`Spec::validated`]) before anything is spawned. `cancelled` is polled
    /// while the process runs; when it says yes, the whole sandbox is killed.
    /// So it is when it runs past its timeout. Either way, and whenever it
    /// ends, nothing of it is left running: its cgroup is emptied and removed.
    ///
    /// A step whose output is captured runs in the sandbox [`Sandbox::prewarm`]
    /// started for its network and limits, when there is one.
    pub fn run(&self, spec: &Spec, stdio: Stdio<'_>, cancelled: &dyn Fn() -> bool) -> Result<Exit, SandboxError> {
        let spec = spec.validated()?;
        let wiring = Wiring::of(&stdio);
        // One started ahead publishes this launcher's own ports, if any.
        let started = match self.warm.take((spec.network, spec.limits, wiring)) {
            Some(started) => started,
            None => Started::start(&self.exe, &self.scratch, spec.network, &spec.limits, wiring, &self.ports)?,
        };
        started.run(spec, stdio, &self.scratch, cancelled, self.proxy_signals)
    }

    /// Start, in the background, sandboxes for later steps with this
    /// network and these limits (whose output is captured), until `want`
    /// are ready or starting: such a step then skips the start (the process,
    /// its namespaces, cgroup and network helper; about half of a short
    /// RUN). One never taken is killed when this launcher is dropped.
    pub fn prewarm(&self, network: NetworkMode, limits: &Limits, want: usize) {
        self.warm.prewarm(&self.exe, &self.scratch, (network, *limits, Wiring::Capture), &self.ports, want);
    }

    /// Start, in the background, the sandbox the next [`Sandbox::run`] with
    /// this network, these limits and streams will take: `kiln run` starts
    /// it while it makes the container and mounts its root, which the
    /// sandbox needs only once it has its spec. Dropped untaken with this
    /// launcher, it is killed.
    pub fn prestart(&self, network: NetworkMode, limits: &Limits, wiring: Wiring) {
        self.warm.prewarm(&self.exe, &self.scratch, (network, *limits, wiring), &self.ports, 1);
    }
}
