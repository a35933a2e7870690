//! A container's monitor: the one process that holds a running container.
//! It takes the container's lock (see [`super::state`]) and keeps it until
//! it has recorded the end, mounts the container's filesystem (its changes
//! kept in `fs/`), runs the command in the sandbox, logs its output and
//! records its exit, then removes the container when `--rm` asked. The
//! sandbox process dies with the monitor (its parent-death signal), so a
//! killed monitor leaves nothing running; the next reader of the record
//! sees the lock free and records why it ended.
//!
//! `kiln run -d` and `kiln start` spawn `kiln __monitor ID` in a session of
//! its own, with no parent-death signal, and wait on a pipe (its fd 3) for
//! one word: `ok` once the command runs (its exec succeeded), or why it
//! could not start: a command that is not there fails `run -d` itself, with
//! its exit code (127), as docker's does.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio as StdStdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use kiln_solver::Digest;

use super::logs::LogWriter;
use super::state::{now_ns, Containers, State, Status};
use super::ContainerError;
use crate::sandbox::{Limits, NetworkMode, PortMap, Sandbox, Spec, Stdio, Stream, Wiring};
use crate::snapshot::Snapshotter;
use crate::store::Store;

/// Where the container's streams go besides its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// To and from this process's own (an attached `kiln run`); stdin only when asked.
    Terminal { stdin: bool },
    /// Nowhere: stdin is /dev/null, the output only logged.
    Detached,
}

impl Attach {
    /// Whether the command gets a stdin (an attached one's, or the attach
    /// server's pipe; see `attach::Server::listen`).
    fn stdin(self, config: &super::Config) -> bool {
        match self {
            Attach::Terminal { stdin } => stdin,
            Attach::Detached => config.interactive,
        }
    }
}

/// What a container's sandbox is started with: all of it known before the
/// container is made.
pub(crate) struct Launch<'a> {
    pub network: NetworkMode,
    pub limits: Limits,
    pub ports: &'a [PortMap],
    pub tty: bool,
    pub stdin: bool,
    pub sig_proxy: bool,
}

impl Launch<'_> {
    fn of(config: &super::Config, attach: Attach) -> Launch<'_> {
        Launch {
            network: config.network,
            limits: config.limits,
            ports: &config.ports,
            tty: config.tty,
            stdin: attach.stdin(config),
            sig_proxy: config.sig_proxy,
        }
    }

    /// The launcher, its sandbox's start begun in the background (see
    /// [`Sandbox::prestart`]): the start (kiln's re-exec, the namespaces,
    /// the network helper) overlaps making the container and mounting its
    /// root, about half of a short `kiln run`.
    pub(crate) fn begin(&self, store: &Store, exe: &Path) -> Sandbox {
        let mut sandbox = Sandbox::new(exe, &store.work_dir()).with_ports(self.ports);
        if !self.sig_proxy {
            sandbox = sandbox.without_signal_proxy();
        }
        let wiring =
            if self.tty { Wiring::Terminal { input: self.stdin } } else { Wiring::Proxy { stdin: self.stdin } };
        sandbox.prestart(self.network, &sandbox_limits(&self.limits), wiring);
        sandbox
    }
}

/// A container's sandbox limits: a cgroup of its own even without limits,
/// as `pause` freezes it.
fn sandbox_limits(limits: &Limits) -> Limits {
    Limits { freezable: true, ..*limits }
}

/// Run container `id` to its end as its monitor; its exit code. `ready` is
/// told once its command runs (or why it could not start). `early` is the
/// launcher its caller began the sandbox's start in (see [`Launch::begin`]),
/// for the same container.
pub fn supervise(
    store: &Store,
    id: &str,
    exe: &Path,
    attach: Attach,
    ready: &mut (dyn FnMut(Result<(), String>) + Send),
    early: Option<Sandbox>,
) -> Result<i32, ContainerError> {
    let containers = Containers::new(store);
    let config = containers.config(id)?;
    let sandbox = early.unwrap_or_else(|| Launch::of(&config, attach).begin(store, exe));
    let Some(held) = containers.try_hold(id)? else {
        return Err(ContainerError::AlreadyRunning(config.name));
    };
    let ready = Mutex::new(ready);
    containers.stopping(id, true);
    let _ = std::fs::remove_file(containers.dir(id).join("paused"));
    let mut restarts = 0;
    let ended = loop {
        let ended = run_held(store, &containers, &config, &sandbox, attach, &|r| {
            (ready.lock().unwrap_or_else(|e| e.into_inner()))(r)
        });
        // Whatever the sandbox left to end off its path (its process, its
        // network helper and the port it holds) ends before the state says
        // the container stopped. An attached run's own end waits for it
        // instead (see `main`): meanwhile its record is written, or removed.
        if attach == Attach::Detached {
            crate::store::trash::wait_empty();
        }
        match ended {
            // A command that never ran (its exec failed) is not run again.
            Ok((mut state, true))
                if config.restart.again(state.exit_code, restarts) && !containers.stopping(id, false) =>
            {
                crate::store::trash::wait_empty();
                restarts += 1;
                state.restart_count = restarts;
                containers.write_state(id, &state)?;
                // docker's back-off: 100 ms, doubled each time, at most 6.4 s.
                std::thread::sleep(std::time::Duration::from_millis(100 << restarts.min(7)));
            }
            ended => {
                break ended.map(|(mut state, _)| {
                    state.restart_count = restarts;
                    state
                })
            }
        }
    };
    let _ = std::fs::remove_file(containers.dir(id).join("paused"));
    let result = match ended {
        // Removed below, it needs no record of its end (unless the removal fails).
        Ok(state) if config.auto_remove => {
            if let Err(e) = containers.remove(id, &held) {
                containers.write_state(id, &state)?;
                return Err(e);
            }
            Ok(state.exit_code)
        }
        Ok(state) => {
            let code = state.exit_code;
            containers.write_state(id, &state)?;
            Ok(code)
        }
        Err(e) => {
            // docker's way: a container that could not start stays created,
            // the reason in its state.
            let mut state = containers.state(id).unwrap_or_default();
            state.status = if state.started_at == 0 { Status::Created } else { Status::Exited };
            state.exit_code = crate::sandbox::exit::SETUP_FAILED;
            state.error = chain(&e);
            state.monitor_pid = 0;
            state.pid = 0;
            let _ = containers.write_state(id, &state);
            Err(e)
        }
    };
    if config.auto_remove {
        if result.is_err() {
            containers.remove(id, &held)?;
        }
        super::volumes::drop_anonymous(store, &config)?;
    }
    result
}

fn run_held(
    store: &Store,
    containers: &Containers,
    config: &super::Config,
    sandbox: &Sandbox,
    attach: Attach,
    ready: &(dyn Fn(Result<(), String>) + Sync),
) -> Result<(State, bool), ContainerError> {
    let dir = containers.dir(&config.id);
    let digest: Digest = config
        .image_id
        .parse()
        .map_err(|_| ContainerError::Damaged(dir.join("config.json"), serde::de::Error::custom("image_id")))?;
    let (_, layers) = crate::image::read(store, &digest)?;
    let snapshotter = Snapshotter::new(store);
    let mount = if config.auto_remove {
        snapshotter.mount_kept_once(&layers, &dir.join("fs"))
    } else {
        snapshotter.mount_kept(&layers, &dir.join("fs"))
    };
    let mount = mount.map_err(ContainerError::Mount)?;
    let log = LogWriter::open(&dir, config.log)?;
    let mounts = sandbox_mounts(store, config, &mount.root)?;
    let spec = Spec {
        rootfs: mount.root.clone(),
        args: config.argv.clone(),
        env: config.env.clone(),
        cwd: config.cwd.clone(),
        user: config.user.clone(),
        hostname: config.hostname.clone(),
        network: config.network,
        limits: sandbox_limits(&config.limits),
        terminal: config.tty,
        readonly_root: config.readonly_root,
        mounts,
        ..Spec::default()
    };
    let terminal = matches!(attach, Attach::Terminal { .. });
    // A detached container's streams, for `kiln attach`.
    let server = if terminal { None } else { Some(super::attach::Server::listen(&dir, config.interactive)?) };
    // What the command's process wrote before it ran: why it did not, when it did not.
    let running = AtomicBool::new(false);
    let early = Mutex::new(Vec::new());
    let sink = |stream: Stream, bytes: &[u8]| {
        log.write(stream, bytes);
        if !running.load(Ordering::SeqCst) {
            let mut early = early.lock().unwrap_or_else(|e| e.into_inner());
            let room = MAX_REASON.saturating_sub(early.len());
            early.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        if let Some(server) = &server {
            server.send(stream, bytes);
        }
        if !terminal {
            return true;
        }
        let written = match stream {
            Stream::Stdout => std::io::stdout().lock().write_all(bytes).and_then(|()| std::io::stdout().flush()),
            Stream::Stderr => std::io::stderr().lock().write_all(bytes),
        };
        // Its reader gone (`kiln run img yes | head -1`): the command's next
        // write gets SIGPIPE, as in a shell pipeline.
        !written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    };
    let started_at = now_ns();
    let record_error = Mutex::new(None);
    let started = |pid: u32| {
        running.store(true, Ordering::SeqCst);
        let state = State {
            status: Status::Running,
            monitor_pid: std::process::id(),
            pid,
            pid_start: start_time(pid).unwrap_or(0),
            started_at,
            restart_count: containers.state(&config.id).map(|s| s.restart_count).unwrap_or(0),
            ..State::default()
        };
        match containers.write_state(&config.id, &state) {
            Ok(()) => ready(Ok(())),
            Err(e) => *record_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e),
        }
    };
    let stdin = attach.stdin(config);
    let stdio = if config.tty {
        Stdio::Terminal { input: stdin, sink: &sink, started: &started }
    } else {
        Stdio::Streams { stdin, sink: &sink, started: &started }
    };
    // Keystrokes go to the container's terminal as they are typed, ^C included.
    let _raw = (config.tty && stdin).then(super::terminal::RawMode::enter).flatten();
    let exit = sandbox.run(&spec, stdio, &|| false)?;
    log.finish();
    let ran = running.load(Ordering::SeqCst);
    if !ran {
        let early = early.into_inner().unwrap_or_else(|e| e.into_inner());
        let reason = String::from_utf8_lossy(&early).trim().to_owned();
        ready(Err(format!("{NOT_RUN}{} {reason}", exit.code)));
    }
    if let Some(e) = record_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    drop(mount);
    let state = State {
        status: Status::Exited,
        started_at,
        finished_at: now_ns(),
        exit_code: exit.code,
        oom_killed: exit.oom_killed,
        ..State::default()
    };
    Ok((state, ran))
}

/// The container's mounts as the sandbox takes them: volumes made when
/// missing, and filled from the image (`root`) when empty.
fn sandbox_mounts(
    store: &Store,
    config: &super::Config,
    root: &Path,
) -> Result<Vec<crate::sandbox::SpecMount>, ContainerError> {
    use super::volumes::{seed, Source, Volumes};
    use crate::sandbox::{SpecMount, SpecMountKind};
    let volumes = Volumes::new(store);
    let mut out = Vec::new();
    for m in &config.mounts {
        let kind = match &m.source {
            Source::Bind(path) => SpecMountKind::Bind { source: path.clone(), readonly: m.readonly },
            Source::Tmpfs { size } => SpecMountKind::Tmpfs { size: *size },
            Source::Volume { name, anonymous } => {
                volumes.create(name, *anonymous)?;
                let data = volumes.data(name);
                let empty = std::fs::read_dir(&data).map_err(super::state::io("reading", &data))?.next().is_none();
                if empty {
                    // Inside the image's root, never through its symlinks.
                    if let Ok(inside) = crate::fsutil::resolve_in_root(root, Path::new(&m.target)) {
                        seed(&inside, &data)?;
                    }
                }
                SpecMountKind::Bind { source: data, readonly: m.readonly }
            }
        };
        out.push(SpecMount { target: m.target.clone(), kind });
    }
    Ok(out)
}

/// Start container `id` with a monitor of its own that outlives this
/// process; back once its command runs.
pub fn start(store: &Store, id: &str, exe: &Path) -> Result<(), ContainerError> {
    let containers = Containers::new(store);
    let config = containers.config(id)?;
    // Held only to see that no monitor does: the new one takes it itself.
    if containers.hold_stopped(id)?.is_none() {
        return Err(ContainerError::AlreadyRunning(config.name));
    }
    let failed = |reason: String| ContainerError::Start { name: config.name.clone(), reason };
    let (mut report, write_end) = std::io::pipe().map_err(|e| failed(e.to_string()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(store.root()).arg("__monitor").arg(id);
    cmd.stdin(StdStdio::null()).stdout(StdStdio::null()).stderr(StdStdio::null()).current_dir("/");
    let fd = write_end.as_raw_fd();
    // SAFETY: between fork and exec only setsid, fcntl, dup2 and close_range,
    // which are async-signal-safe and allocate nothing.
    unsafe {
        cmd.pre_exec(move || {
            // A session of its own: no terminal's hangup or ^C reaches it,
            // and, without a parent-death signal, it outlives this process.
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // At REPORT_FD, every other descriptor above stdio closed.
            crate::sandbox::inherit_channel(fd)
        });
    }
    let mut child = cmd.spawn().map_err(|e| failed(format!("starting its monitor ({}): {e}", exe.display())))?;
    drop(cmd);
    drop(write_end);
    let mut said = String::new();
    let _ = report.read_to_string(&mut said);
    if said == "ok" {
        // Not waited for: it is the container's, and init reaps it once this ends.
        return Ok(());
    }
    let _ = child.wait();
    if let Some((code, reason)) = said.strip_prefix(NOT_RUN).and_then(|r| r.split_once(' ')) {
        if let Ok(code) = code.parse() {
            return Err(ContainerError::NotRun { name: config.name, code, reason: reason.to_owned() });
        }
    }
    Err(failed(if said.is_empty() { "its monitor ended without a word".to_owned() } else { said }))
}

/// How a monitor's report starts when the command's exec failed: its exit
/// code and what it printed follow.
const NOT_RUN: &str = "not run: exit ";

/// The most of that output a report carries.
const MAX_REASON: usize = 4096;

/// The descriptor a monitor reports its start on (where `inherit_channel` puts it).
const REPORT_FD: i32 = 3;

/// `kiln __monitor ID`: be container `id`'s detached monitor; the exit code.
pub fn monitor_main(store: &Store, id: &str) -> i32 {
    // SAFETY: `start` put the report pipe's write end at this number, and
    // nothing else in this process has taken it.
    let report = Mutex::new(Some(unsafe { File::from_raw_fd(REPORT_FD) }));
    let mut tell = |said: Result<(), String>| {
        if let Some(mut file) = report.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = file.write_all(said.err().as_deref().unwrap_or("ok").as_bytes());
        }
    };
    let result = std::env::current_exe()
        .map_err(ContainerError::Exe)
        .and_then(|exe| supervise(store, id, &exe, Attach::Detached, &mut tell, None));
    match result {
        Ok(code) => code,
        Err(e) => {
            tell(Err(chain(&e)));
            crate::sandbox::exit::SETUP_FAILED
        }
    }
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// A process's start time, in clock ticks after boot (`/proc/PID/stat`'s 22nd field).
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_process_start_time_is_read_and_stays_the_same() {
        let me = std::process::id();
        let t = super::start_time(me).expect("our own start time");
        assert_eq!(super::start_time(me), Some(t));
        assert_eq!(super::start_time(u32::MAX), None);
    }
}
