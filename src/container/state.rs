//! A container's record in the store. `<root>/containers/<id>/` holds
//! `config.json` (what it runs: written once, when it is created),
//! `state.json` (how it is: rewritten whole, atomically, by whoever holds
//! its lock), `monitor.lock` (held by its monitor for as long as the monitor
//! lives), its logs and its filesystem (`fs/`). A name is
//! `containers/names/<name>`, a symlink to the id made with symlink(2),
//! which fails when the name is there: two containers never get one name.
//!
//! Liveness is the lock, not a pid: a state that says running while nobody
//! holds the lock is a monitor that died (killed, or the machine rebooted),
//! and the first reader records it as exited, with that reason.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::ContainerError;
use crate::store::Store;

/// The exit code of a container whose monitor died under it (docker's for a
/// container its daemon lost).
pub const MONITOR_LOST: i32 = 255;

/// What a container runs, fixed when it is created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// 64 hex digits.
    pub id: String,
    pub name: String,
    /// The image as it was named.
    pub image: String,
    /// Its manifest's digest: what the container runs even if the name moves.
    pub image_id: String,
    /// Nanoseconds since the epoch.
    pub created: u64,
    /// The command and its arguments (ENTRYPOINT and CMD resolved).
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub hostname: String,
    /// Removed when it exits (`--rm`).
    pub auto_remove: bool,
    /// The signal `stop` sends first: `--stop-signal`, else the image's STOPSIGNAL.
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL, when `-t` does not say.
    pub stop_timeout: Option<u64>,
    /// Log rotation.
    pub log: super::logs::LogOptions,
    #[serde(default)]
    pub network: crate::sandbox::NetworkMode,
    #[serde(default)]
    pub limits: crate::sandbox::Limits,
    /// A pty for its streams (`-t`).
    #[serde(default)]
    pub tty: bool,
    /// `-p`: its ports published on the host.
    #[serde(default)]
    pub ports: Vec<crate::sandbox::PortMap>,
    /// `-v`, `--mount` and the image's VOLUMEs.
    #[serde(default)]
    pub mounts: Vec<super::volumes::Mount>,
    /// `--read-only`.
    #[serde(default)]
    pub readonly_root: bool,
    /// `--restart`.
    #[serde(default)]
    pub restart: Restart,
    /// `--sig-proxy` (attached runs).
    #[serde(default = "yes")]
    pub sig_proxy: bool,
    /// `-i`: stdin kept open; a detached one's is fed by `kiln attach`.
    #[serde(default)]
    pub interactive: bool,
}

fn yes() -> bool {
    true
}

/// `--restart`: when the monitor starts the command again after it exits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    #[default]
    No,
    /// After a non-zero exit, at most `max` times (0: no limit).
    OnFailure {
        max: u32,
    },
    /// Whatever the exit, unless `stop` or `kill` ended it.
    Always,
    UnlessStopped,
}

impl Restart {
    /// docker's `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    pub fn parse(text: &str) -> Result<Restart, String> {
        let bad = || format!("expected no, on-failure[:N], always or unless-stopped, not {text:?}");
        match text.split_once(':') {
            Some(("on-failure", n)) => Ok(Restart::OnFailure { max: n.parse().map_err(|_| bad())? }),
            Some(_) => Err(bad()),
            None => match text {
                "no" => Ok(Restart::No),
                "on-failure" => Ok(Restart::OnFailure { max: 0 }),
                "always" => Ok(Restart::Always),
                "unless-stopped" => Ok(Restart::UnlessStopped),
                _ => Err(bad()),
            },
        }
    }

    /// Whether a command that exited with `code`, restarted `count` times
    /// already, is started again.
    pub fn again(self, code: i32, count: u32) -> bool {
        match self {
            Restart::No => false,
            Restart::OnFailure { max } => code != 0 && (max == 0 || count < max),
            Restart::Always | Restart::UnlessStopped => true,
        }
    }
}

/// Where a container is in its life, as docker names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// How a container is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// The monitor's pid, while it runs.
    pub monitor_pid: u32,
    /// The sandbox process's pid (the container's root on the host), and its
    /// start time in clock ticks after boot: together they name it even
    /// once the pid could be reused.
    pub pid: u32,
    pub pid_start: u64,
    /// Nanoseconds since the epoch; 0 for never.
    pub started_at: u64,
    pub finished_at: u64,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Why it could not start, or why it ended other than by its own exit.
    pub error: String,
    /// How many times `--restart` started it again.
    #[serde(default)]
    pub restart_count: u32,
}

/// The store's containers.
#[derive(Clone)]
pub struct Containers {
    dir: PathBuf,
}

/// The exclusive hold on a container's record: a monitor holds it for its
/// whole life; `rm` and the settling of a lost monitor while they change it.
pub struct Held {
    _file: File,
}

impl Containers {
    pub fn new(store: &Store) -> Self {
        Self { dir: store.root().join("containers") }
    }

    /// The folder of container `id`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn names(&self) -> PathBuf {
        self.dir.join("names")
    }

    /// Record a new container under `config.name`, which must be free.
    pub fn create(&self, config: &Config) -> Result<(), ContainerError> {
        let names = self.names();
        fs::create_dir_all(&names).map_err(io("creating", &names))?;
        // Made aside, then renamed in: a reader never sees half a container.
        let tmp = self.dir.join(format!(".new-{}", config.id));
        fs::create_dir(&tmp).map_err(io("creating", &tmp))?;
        let made = (|| {
            write_json(&tmp.join("config.json"), config)?;
            write_json(&tmp.join("state.json"), &State::default())?;
            File::create(tmp.join("monitor.lock")).map_err(io("creating", &tmp.join("monitor.lock")))?;
            let name = names.join(&config.name);
            match std::os::unix::fs::symlink(&config.id, &name) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_link(&name).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                    Err(ContainerError::NameInUse { name: config.name.clone(), id: holder })
                }
                Err(e) => Err(io("creating", &name)(e)),
            }
        })();
        let renamed = made.and_then(|()| {
            fs::rename(&tmp, self.dir(&config.id)).map_err(io("creating", &self.dir(&config.id))).inspect_err(|_| {
                let _ = fs::remove_file(names.join(&config.name));
            })
        });
        if renamed.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        renamed
    }

    /// The id of the container `reference` names: a name, a whole id, or
    /// the start of exactly one id.
    pub fn find(&self, reference: &str) -> Result<String, ContainerError> {
        let missing = || ContainerError::NoSuchContainer(reference.to_owned());
        if reference.is_empty() || reference.contains('/') || reference.starts_with('.') {
            return Err(missing());
        }
        if let Ok(id) = fs::read_link(self.names().join(reference)) {
            let id = id.to_string_lossy().into_owned();
            if self.dir(&id).join("config.json").exists() {
                return Ok(id);
            }
        }
        if !reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        let mut found = self.ids()?.into_iter().filter(|id| id.starts_with(reference));
        match (found.next(), found.next()) {
            (Some(id), None) => Ok(id),
            (Some(_), Some(_)) => Err(ContainerError::Ambiguous(reference.to_owned())),
            _ => Err(missing()),
        }
    }

    /// Every container's id.
    pub fn ids(&self) -> Result<Vec<String>, ContainerError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io("listing", &self.dir)(e)),
        };
        Ok(entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect())
    }

    pub fn config(&self, id: &str) -> Result<Config, ContainerError> {
        read_json(&self.dir(id).join("config.json"))
    }

    /// Its state, settled: one that says running (or starting) while its
    /// monitor is gone is recorded as exited, with the reason.
    pub fn state(&self, id: &str) -> Result<State, ContainerError> {
        let state: State = read_json(&self.dir(id).join("state.json"))?;
        if state.status != Status::Running || self.monitor_alive(id)? {
            return Ok(state);
        }
        let Some(_held) = self.try_hold(id)? else { return self.state(id) };
        // Read again under the lock: it may have ended properly meanwhile.
        let mut state: State = read_json(&self.dir(id).join("state.json"))?;
        if state.status == Status::Running {
            state.status = Status::Exited;
            state.exit_code = MONITOR_LOST;
            state.finished_at = now_ns();
            state.error = format!(
                "its monitor (pid {}) died, and the container with it (killed, or the machine restarted)",
                state.monitor_pid
            );
            state.monitor_pid = 0;
            state.pid = 0;
            self.write_state(id, &state)?;
        }
        Ok(state)
    }

    /// The id, config and state of the container `reference` names, which
    /// must be running.
    pub fn running(&self, reference: &str) -> Result<(String, Config, State), ContainerError> {
        let id = self.find(reference)?;
        let config = self.config(&id)?;
        let state = self.state(&id)?;
        if state.status != Status::Running {
            return Err(ContainerError::NotRunning(config.name));
        }
        Ok((id, config, state))
    }

    /// Replace its state (the caller holds its lock).
    pub fn write_state(&self, id: &str, state: &State) -> Result<(), ContainerError> {
        write_json(&self.dir(id).join("state.json"), state)
    }

    /// Whether a monitor holds the container.
    pub fn monitor_alive(&self, id: &str) -> Result<bool, ContainerError> {
        let path = self.dir(id).join("monitor.lock");
        let file = File::open(&path).map_err(io("opening", &path))?;
        match fs2::FileExt::try_lock_shared(&file) {
            Ok(()) => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(true),
            Err(e) => Err(io("locking", &path)(e)),
        }
    }

    /// Hold the container, unless someone (its monitor) does.
    pub fn try_hold(&self, id: &str) -> Result<Option<Held>, ContainerError> {
        let path = self.dir(id).join("monitor.lock");
        let file = File::open(&path).map_err(io("opening", &path))?;
        match fs2::FileExt::try_lock_exclusive(&file) {
            Ok(()) => Ok(Some(Held { _file: file })),
            Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(None),
            Err(e) => Err(io("locking", &path)(e)),
        }
    }

    /// Hold the container unless it runs: one whose state says it stopped
    /// is waited for while its monitor lets go (it records the end, then
    /// exits). `None` while it runs, or starts.
    pub fn hold_stopped(&self, id: &str) -> Result<Option<Held>, ContainerError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(held) = self.try_hold(id)? {
                return Ok(Some(held));
            }
            let state = self.state(id)?;
            if matches!(state.status, Status::Running | Status::Created) || std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Mark the container as stopped by a user (`stop`, `kill`): its
    /// monitor does not restart it. Cleared at each start.
    pub fn mark_stopping(&self, id: &str) -> Result<(), ContainerError> {
        let path = self.dir(id).join("stopping");
        fs::write(&path, b"").map_err(io("writing", &path))
    }

    /// Whether [`Containers::mark_stopping`] was called since the last start;
    /// with `clear`, forget it.
    pub fn stopping(&self, id: &str, clear: bool) -> bool {
        let path = self.dir(id).join("stopping");
        let marked = path.exists();
        if clear {
            let _ = fs::remove_file(path);
        }
        marked
    }

    /// Remove the container's record, its name, logs and filesystem. The
    /// caller holds it (see [`Containers::try_hold`]).
    pub fn remove(&self, id: &str, _held: &Held) -> Result<(), ContainerError> {
        let dir = self.dir(id);
        if let Ok(config) = self.config(id) {
            let name = self.names().join(&config.name);
            if fs::read_link(&name).is_ok_and(|target| target.as_os_str() == id) {
                fs::remove_file(&name).map_err(io("removing", &name))?;
            }
        }
        // Renamed first: a half-removed folder is never read as a container.
        let gone = self.dir.join(format!(".rm-{id}"));
        fs::rename(&dir, &gone).map_err(io("removing", &dir))?;
        fs::remove_dir_all(&gone).map_err(io("removing", &gone))
    }

    /// Folders a kiln killed while creating or removing a container left.
    pub fn sweep(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
            if (name.starts_with(".rm-") || name.starts_with(".new-")) && stale.is_some_and(|age| age.as_secs() > 60) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A fresh id: 32 random bytes as hex, as docker's.
pub fn new_id() -> Result<String, ContainerError> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(io("reading", Path::new("/dev/urandom")))?;
    Ok(hex::encode(bytes))
}

/// docker's rule for a container name.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() >= 2
        && name.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A name for a container given none, docker's way (`adjective_surname`),
/// from the id's bytes.
pub fn generated_name(id: &str) -> String {
    const LEFT: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gentle", "happy", "keen", "lucid", "merry", "nimble", "quirky", "serene",
        "sharp", "tender", "vivid", "witty",
    ];
    const RIGHT: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "kepler", "lovelace", "noether", "pascal",
        "ritchie", "shannon", "turing", "volta", "wozniak",
    ];
    let byte = |i: usize| usize::from_str_radix(&id[i..i + 2], 16).unwrap_or(0);
    // The id's next bytes make a collision with an existing name unlikely.
    format!("{}_{}_{}", LEFT[byte(0) % 16], RIGHT[byte(2) % 16], &id[4..8])
}

pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ContainerError> {
    let bytes = fs::read(path).map_err(io("reading", path))?;
    serde_json::from_slice(&bytes).map_err(|e| ContainerError::Damaged(path.to_owned(), e))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), ContainerError> {
    let bytes = serde_json::to_vec_pretty(value).expect("container records serialise");
    crate::store::write_hint(path, &bytes).map_err(ContainerError::Store)
}

pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ContainerError {
    let path = path.to_owned();
    move |source| ContainerError::Io { action, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["web", "a1", "my_app.v2-b", "0x"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "a", "_web", "-x", "a/b", "a b", "..", "näme"] {
            assert!(!valid_name(bad), "{bad}");
        }
        let id = "ab12cd34".repeat(8);
        assert!(valid_name(&generated_name(&id)));
    }
}

#[cfg(test)]
mod restart_tests {
    use super::Restart;

    #[test]
    fn restart_policies_read_and_decide_as_dockers() {
        assert_eq!(Restart::parse("on-failure:3"), Ok(Restart::OnFailure { max: 3 }));
        assert_eq!(Restart::parse("always"), Ok(Restart::Always));
        for bad in ["sometimes", "always:2", "on-failure:x"] {
            assert!(Restart::parse(bad).is_err(), "{bad}");
        }
        let three = Restart::OnFailure { max: 3 };
        assert!(three.again(1, 2) && !three.again(1, 3) && !three.again(0, 0));
        assert!(Restart::Always.again(0, 100) && !Restart::No.again(1, 0));
    }
}
