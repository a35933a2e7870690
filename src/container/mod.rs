//! Containers with docker's lifecycle, and no daemon: `kiln run` (attached
//! or `-d`), `ps`, `logs`, `stop`, `kill`, `rm`, `start`, `wait`.
//!
//! A container is a record in the store ([`state`]) and, while it runs, one
//! monitor process ([`monitor`]): it holds the container's lock, its
//! filesystem's mount (in the monitor's own mount namespace, so nothing is
//! left mounted when it dies), runs the command in the sandbox, writes the
//! output to the container's log ([`logs`]) and records how it ended. A
//! detached container's monitor is `kiln __monitor`, in a session of its
//! own, outliving the command that started it; an attached `kiln run` is
//! its container's monitor itself. The other commands read the record, and
//! signal the sandbox process ([`lifecycle`]).

pub mod attach;
mod commit;
pub mod copy;
mod exec;
mod inspect;
mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod processes;
pub mod state;
pub mod stats;
mod terminal;
pub mod usage;
pub mod volumes;

use std::path::PathBuf;

pub use commit::{commit, CommitOptions};
pub use exec::{exec, ExecRequest};
pub use inspect::inspect_json;
pub use lifecycle::{kill, parse_signal, remove, stop, wait};
pub use monitor::{monitor_main, start};
pub use state::{Config, Containers, State, Status};

use crate::image::ImageError;
use crate::sandbox::{Limits, NetworkMode, SandboxError};
use crate::snapshot::SnapshotError;
use crate::store::{Store, StoreError};

/// Why a container could not be made, run or changed (not: why its command failed).
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no command specified: the image {0} has no CMD or ENTRYPOINT; give one after the image name")]
    NoCommand(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("preparing the container's filesystem")]
    Mount(#[source] SnapshotError),
    #[error("finding kiln's own binary")]
    Exe(#[source] std::io::Error),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("looking into the running container")]
    Join(#[source] crate::sandbox::join::JoinError),
    #[error("no such container: {0}")]
    NoSuchContainer(String),
    #[error("{0} is the start of more than one container ID: give more of it, or the name")]
    Ambiguous(String),
    #[error("the container name \"{name}\" is already in use by container {id}: remove that container (kiln rm), or choose another name")]
    NameInUse { name: String, id: String },
    #[error("invalid container name \"{0}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed, 2 to 128 characters")]
    BadName(String),
    #[error("invalid --log-opt {0}: {1}")]
    LogOption(String, String),
    #[error("invalid signal {0}: give a name (SIGTERM, TERM) or a number (15)")]
    BadSignal(String),
    #[error("container {0} is running: stop it first (kiln stop), or remove it with kiln rm -f")]
    Running(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is not running: start it first (kiln start)")]
    ExecNotRunning(String),
    #[error("running a command in container {0}")]
    Exec(String, #[source] std::io::Error),
    #[error("-p publishes ports of the container's own network: it cannot go with --network host or none")]
    PortsNeedNetwork,
    #[error("invalid {0}: {1}")]
    BadMount(String, String),
    #[error("invalid {0} {1}")]
    Invalid(&'static str, String),
    #[error("unknown volume driver {0:?}: kiln has local volumes only (leave the driver out)")]
    UnknownDriver(String),
    #[error("no such volume: {0}")]
    NoSuchVolume(String),
    #[error("volume {0} is in use by container {1}: remove the container first (kiln rm)")]
    VolumeInUse(String, String),
    #[error("--restart and --rm cannot go together: a container removed when it exits cannot be started again")]
    RestartWithRm,
    #[error("container {0} is paused: kiln unpause it first")]
    Paused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error(
        "kiln commit reads a container's changes from its overlay folder; container {0} runs on another snapshotter"
    )]
    CommitNeedsOverlay(String),
    #[error("writing the changes of container {0} as a layer")]
    Commit(String, #[source] crate::layer::LayerError),
    #[error(
        "commit --change {0:?}: only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME and WORKDIR \
         can change a committed image, as in docker"
    )]
    BadChange(String),
    #[error("commit --change")]
    Change(#[source] kiln_frontend::Error),
    #[error("{0}")]
    Copy(String, #[source] std::io::Error),
    #[error("kiln cp copies between a container and the host: give CONTAINER:PATH on exactly one side")]
    CopySides,
    #[error("container {0} takes no attach: it runs attached to the kiln run that started it (kiln logs -f shows its output)")]
    NotAttachable(String),
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("container {name} did not start: {reason}")]
    Start { name: String, reason: String },
    #[error("container {name} did not start: its command failed ({code}): {reason}")]
    NotRun { name: String, code: i32, reason: String },
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container record {0} is damaged")]
    Damaged(PathBuf, #[source] serde_json::Error),
    #[error("writing the output")]
    Output(#[source] std::io::Error),
    #[error("signalling the container's process {0}")]
    Signal(u32, #[source] std::io::Error),
    #[error("{path}, line {line}: {what}")]
    EnvFile { path: PathBuf, line: usize, what: String },
    #[error("container {name} did not stop within {secs} s after SIGKILL")]
    Unkillable { name: String, secs: u64 },
}

/// What to run, and how: `kiln run`'s options.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// The image: a name or an ID.
    pub image: String,
    /// The command and its arguments; empty for the image's CMD.
    pub command: Vec<String>,
    /// Replaces the image's ENTRYPOINT (and drops its CMD); `""` for none.
    pub entrypoint: Option<String>,
    /// `KEY=VALUE`, or `KEY` for this process's own value (left out when unset).
    pub env: Vec<String>,
    /// The working directory, instead of the image's.
    pub workdir: Option<String>,
    /// `user[:group]`, instead of the image's.
    pub user: Option<String>,
    /// Pass this process's stdin on (through a pipe); else /dev/null.
    pub stdin: bool,
    /// The kiln binary the sandbox (and a monitor) re-executes; `None` for
    /// this process's own.
    pub sandbox_exe: Option<PathBuf>,
    /// `--name`; `None` for a generated one.
    pub name: Option<String>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--hostname`; `None` for the id's first 12 digits.
    pub hostname: Option<String>,
    /// `--stop-signal`, instead of the image's STOPSIGNAL.
    pub stop_signal: Option<String>,
    /// `--stop-timeout`, seconds.
    pub stop_timeout: Option<u64>,
    /// `--log-opt KEY=VALUE`.
    pub log_options: Vec<String>,
    /// `--env-file`s, read before `env` (which wins).
    pub env_files: Vec<PathBuf>,
    /// `--network`.
    pub network: NetworkMode,
    /// `-m`, `--cpus`, `--pids-limit`.
    pub limits: Limits,
    /// `-t`: a pty for the command's streams.
    pub tty: bool,
    /// `-p`.
    pub ports: Vec<crate::sandbox::PortMap>,
    /// `-v` and `--mount`.
    pub mounts: Vec<volumes::Mount>,
    /// `--read-only`.
    pub readonly_root: bool,
    /// `--restart`.
    pub restart: state::Restart,
    /// `--sig-proxy`.
    pub sig_proxy: bool,
    /// `-i`: its stdin stays open (a detached one's, for `kiln attach`).
    pub interactive: bool,
}

impl RunRequest {
    pub(crate) fn exe(&self) -> Result<PathBuf, ContainerError> {
        match &self.sandbox_exe {
            Some(exe) => Ok(exe.clone()),
            None => std::env::current_exe().map_err(ContainerError::Exe),
        }
    }
}

/// Make a container of `request`, not started: docker's rules for what its
/// command, environment, working directory and user are.
pub fn create(store: &Store, request: &RunRequest) -> Result<Config, ContainerError> {
    let image = store.get(&request.image)?;
    let (_, image_config) = store.image_parts(&image)?;
    let c = image_config.config().clone().unwrap_or_default();
    // docker's rules: --entrypoint drops the image's CMD too; arguments replace CMD.
    let (entrypoint, cmd) = match &request.entrypoint {
        Some(ep) if ep.is_empty() => (vec![], request.command.clone()),
        Some(ep) => (vec![ep.clone()], request.command.clone()),
        None => {
            let cmd =
                if request.command.is_empty() { c.cmd().clone().unwrap_or_default() } else { request.command.clone() };
            (c.entrypoint().clone().unwrap_or_default(), cmd)
        }
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        return Err(ContainerError::NoCommand(request.image.clone()));
    }
    let mut env = c.env().clone().unwrap_or_default();
    let mut flags = Vec::new();
    for file in &request.env_files {
        flags.extend(read_env_file(file)?);
    }
    flags.extend(request.env.iter().cloned());
    for e in &flags {
        let Some((key, value)) = crate::flags::name_value(e, crate::flags::process_env) else { continue };
        env.retain(|x| x.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(format!("{key}={value}"));
    }
    let cwd =
        request.workdir.clone().or(c.working_dir().clone()).filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into());
    let user = request.user.clone().or(c.user().clone()).unwrap_or_default();
    let stop_signal = request.stop_signal.clone().or(c.stop_signal().clone()).filter(|s| !s.is_empty());
    if let Some(signal) = &stop_signal {
        parse_signal(signal)?;
    }
    let log = logs::LogOptions::parse(&request.log_options)?;
    let id = state::new_id()?;
    let name = match &request.name {
        Some(name) if !state::valid_name(name) => return Err(ContainerError::BadName(name.clone())),
        Some(name) => name.clone(),
        None => state::generated_name(&id),
    };
    let config = Config {
        hostname: request.hostname.clone().unwrap_or_else(|| id[..12].to_owned()),
        id,
        name,
        image: request.image.clone(),
        image_id: image.digest().to_string(),
        created: state::now_ns(),
        argv,
        env,
        cwd,
        user,
        auto_remove: request.auto_remove,
        stop_signal,
        stop_timeout: request.stop_timeout,
        log,
        network: request.network,
        limits: request.limits,
        tty: request.tty,
        ports: request.ports.clone(),
        mounts: with_image_volumes(&request.mounts, c.volumes().as_deref().unwrap_or_default())?,
        readonly_root: request.readonly_root,
        restart: request.restart,
        sig_proxy: request.sig_proxy,
        interactive: request.interactive,
    };
    if config.auto_remove && config.restart != state::Restart::No {
        return Err(ContainerError::RestartWithRm);
    }
    if !config.ports.is_empty() && config.network != NetworkMode::Outbound {
        return Err(ContainerError::PortsNeedNetwork);
    }
    // A limit the machine cannot apply fails here, not in the monitor.
    crate::sandbox::cgroup::Cgroup::check(&config.limits).map_err(SandboxError::from)?;
    let containers = Containers::new(store);
    containers.sweep();
    containers.create(&config)?;
    Ok(config)
}

/// Run a new container attached: kiln's own standard streams copied to and
/// from it (and its output logged), this process its monitor. Its exit code
/// (128+N for signal N).
pub fn run(store: &Store, request: &RunRequest) -> Result<i32, ContainerError> {
    let exe = request.exe()?;
    let early = monitor::Launch {
        network: request.network,
        limits: request.limits,
        ports: &request.ports,
        tty: request.tty,
        stdin: request.stdin,
        sig_proxy: request.sig_proxy,
    }
    .begin(store, &exe);
    let config = create(store, request)?;
    let attach = monitor::Attach::Terminal { stdin: request.stdin };
    monitor::supervise(store, &config.id, &exe, attach, &mut |_| {}, Some(early))
}

/// docker's `--env-file`: `KEY=VALUE` per line, `KEY` alone for this
/// process's value, blank lines and `#` comments skipped; the value is taken
/// as it is (no quotes removed, no expansion).
fn read_env_file(path: &std::path::Path) -> Result<Vec<String>, ContainerError> {
    let text = std::fs::read(path).map_err(state::io("reading the --env-file", path))?;
    let text = String::from_utf8(text).map_err(|_| ContainerError::EnvFile {
        path: path.to_owned(),
        line: 0,
        what: "not UTF-8 text".to_owned(),
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split_once('=').map_or(line, |(k, _)| k);
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(ContainerError::EnvFile {
                path: path.to_owned(),
                line: n + 1,
                what: format!("{key:?} is not a variable name: write KEY=VALUE, or KEY"),
            });
        }
        out.push(line.to_owned());
    }
    Ok(out)
}

/// `mounts`, then an anonymous volume for each of the image's VOLUME paths
/// that none of them covers, as docker gives.
fn with_image_volumes(mounts: &[volumes::Mount], image: &[String]) -> Result<Vec<volumes::Mount>, ContainerError> {
    let mut out = mounts.to_vec();
    for path in image {
        let covered = |m: &volumes::Mount| m.target.trim_end_matches('/') == path.trim_end_matches('/');
        if !out.iter().any(covered) {
            out.push(volumes::Mount::from_volume_flag(path)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_env_file_reads_as_dockers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        std::fs::write(&path, "# comment\n\nA=1\n  B=two words \nHOME\nQ=\"q\"\n").unwrap();
        let got = super::read_env_file(&path).unwrap();
        assert_eq!(got, ["A=1", "B=two words ", "HOME", "Q=\"q\""]);
        std::fs::write(&path, "A=1\nBAD KEY=2\n").unwrap();
        let e = super::read_env_file(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("env"), "{e}");
    }
}
