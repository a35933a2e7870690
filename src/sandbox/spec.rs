//! What to run in a sandbox, checked whole before anything is spawned.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What to run, handed from the engine to `kiln __sandbox` as a JSON file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Spec {
    /// The root filesystem, already mounted by the engine (an overlay).
    pub rootfs: PathBuf,
    /// The command and its arguments; `args[0]` is looked up in the PATH of `env`.
    pub args: Vec<String>,
    /// `KEY=value`. Without a PATH, the command gets [`crate::DEFAULT_PATH`]
    /// (see [`Spec::validated`]).
    pub env: Vec<String>,
    /// Absolute working directory inside the rootfs, created when missing.
    pub cwd: String,
    /// `user[:group]`, names or numbers; empty for root.
    pub user: String,
    /// The UTS namespace's hostname.
    pub hostname: String,
    /// Scripts the command sees outside its root filesystem (a RUN heredoc
    /// with a shebang), each at `/dev/pipes/NAME`, read-only, mode 0755, as
    /// BuildKit mounts them: never part of a layer.
    #[serde(default)]
    pub files: Vec<SpecFile>,
    /// Mounted over the root filesystem before the pivot, in order (RUN
    /// --mount, and later `kiln run -v`). Each target is resolved inside the
    /// root, never through its symlinks; the mount points the sandbox had to
    /// create are removed from a step's layer (see `rootfs::MountPoints`).
    #[serde(default)]
    pub mounts: Vec<SpecMount>,
    /// Environment variables whose values are read from a file when the
    /// command starts (a secret's `env=`), so a value never passes through
    /// this spec, which is written to disk.
    #[serde(default)]
    pub env_files: Vec<SpecEnvFile>,
    /// Which network the command sees.
    #[serde(default)]
    pub network: NetworkMode,
    /// The host file bound read-only at /etc/resolv.conf instead of the
    /// host's own: a private network's, naming its DNS forwarder. Set by
    /// the launcher (see `network::NetworkSetup`), not by callers.
    #[serde(default)]
    pub resolv_conf: Option<PathBuf>,
    /// cgroup limits and the timeout.
    #[serde(default)]
    pub limits: Limits,
    /// The command's stdin, stdout and stderr are a terminal (a pty the
    /// launcher made, never kiln's own), which becomes its controlling
    /// terminal: `kiln run -t`.
    #[serde(default)]
    pub terminal: bool,
    /// The root filesystem mounted read-only (`kiln run --read-only`); what
    /// is mounted on it stays as it is.
    #[serde(default)]
    pub readonly_root: bool,
    /// `RUN --security=insecure`: every capability and no seccomp filter
    /// (the engine allows it only with `--allow security.insecure`).
    #[serde(default)]
    pub insecure: bool,
}

/// One of [`Spec::mounts`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecMount {
    /// Absolute path in the container.
    pub target: String,
    pub kind: SpecMountKind,
}

/// What a [`SpecMount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecMountKind {
    /// A host folder, file or socket the engine prepared (a cache folder, an
    /// overlay of a stage, a secret's file on kiln's private tmpfs, an ssh
    /// agent socket), bound at the target.
    Bind { source: PathBuf, readonly: bool },
    /// A fresh tmpfs; `size` in bytes.
    Tmpfs { size: Option<u64> },
}

/// One of [`Spec::env_files`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecEnvFile {
    /// The variable's name.
    pub name: String,
    /// The host file holding its value (on kiln's private tmpfs).
    pub source: PathBuf,
}

/// The network a sandbox gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The host's (what `kiln run` has had so far).
    #[default]
    Host,
    /// A network namespace of its own with only `lo`.
    None,
    /// A network namespace of its own with outbound access through pasta or
    /// slirp4netns, and no way to the host's loopback.
    Outbound,
}

impl NetworkMode {
    /// How `kiln __sandbox` is told the mode on its command line: it makes
    /// the namespaces before it reads its spec (see `warm`).
    pub(crate) fn as_arg(self) -> &'static str {
        match self {
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
            NetworkMode::Outbound => "outbound",
        }
    }

    pub(crate) fn from_arg(arg: &str) -> Option<NetworkMode> {
        [NetworkMode::Host, NetworkMode::None, NetworkMode::Outbound].into_iter().find(|m| m.as_arg() == arg)
    }
}

/// What a sandbox may use. `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory in bytes (cgroup memory.max / memory.limit_in_bytes).
    pub memory: Option<u64>,
    /// Processes and threads (pids.max).
    pub pids: Option<u64>,
    /// CPU in thousandths of a CPU (`--cpus 1.5` is 1500).
    pub millicpus: Option<u64>,
    /// Wall-clock time in milliseconds, after which every process is killed.
    pub timeout_ms: Option<u64>,
    /// `pids` is the engine's default, not the user's: where no cgroup can
    /// be made for it, RLIMIT_NPROC alone bounds the step instead of an error
    /// (rootless only: the kernel does not apply it to real root's uid 0).
    #[serde(default)]
    pub pids_default: bool,
    /// A cgroup even with nothing to limit, for the freezer (a container's
    /// `pause`). Where none can be made (rootless, the tree not delegated),
    /// the sandbox runs without one.
    #[serde(default)]
    pub freezable: bool,
}

/// A file of [`Spec::files`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecFile {
    /// `/dev/pipes/NAME`.
    pub path: String,
    pub content: String,
}

/// Where [`Spec::files`] live in the sandbox.
pub(super) const PIPES: &str = "/dev/pipes/";

/// Why a spec cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("no command to run")]
    NoCommand,
    #[error("the working directory {0:?} is not an absolute path")]
    RelativeCwd(String),
    #[error("the root filesystem {0} is not an absolute path")]
    RelativeRoot(PathBuf),
    #[error("the {what} {value:?} holds a NUL byte")]
    Nul { what: &'static str, value: String },
    #[error("the environment entry {0:?} is not KEY=value")]
    BadEnv(String),
    #[error("the script path {0:?} is not /dev/pipes/NAME")]
    BadFile(String),
    #[error("the mount target {0:?} is not an absolute path below /")]
    BadMountTarget(String),
}

impl Spec {
    /// The spec as the sandbox runs it: checked whole (no empty command, an
    /// absolute working directory, no NUL byte anywhere, every environment
    /// entry `KEY=value`), with a PATH (docker's default when none is given).
    /// [`super::Sandbox::run`] calls this before it spawns anything.
    pub fn validated(&self) -> Result<Spec, SpecError> {
        if self.args.is_empty() {
            return Err(SpecError::NoCommand);
        }
        if !self.rootfs.is_absolute() {
            return Err(SpecError::RelativeRoot(self.rootfs.clone()));
        }
        let texts = self.args.iter().map(|a| ("argument", a)).chain(self.env.iter().map(|e| ("environment entry", e)));
        let texts = texts.chain(self.files.iter().map(|f| ("script path", &f.path)));
        let texts = texts.chain(self.mounts.iter().map(|m| ("mount target", &m.target)));
        let fields = [("working directory", &self.cwd), ("user", &self.user), ("hostname", &self.hostname)];
        if let Some((what, value)) = texts.chain(fields).find(|(_, v)| v.contains('\0')) {
            return Err(SpecError::Nul { what, value: value.clone() });
        }
        if !self.cwd.starts_with('/') {
            return Err(SpecError::RelativeCwd(self.cwd.clone()));
        }
        if let Some(bad) = self.env.iter().find(|e| e.split_once('=').is_none_or(|(k, _)| k.is_empty())) {
            return Err(SpecError::BadEnv(bad.clone()));
        }
        // One plain name below /dev/pipes/: the file is written there by path,
        // before the pivot, so nothing may lead it elsewhere.
        let plain = |name: &str| !name.is_empty() && name != "." && name != ".." && !name.contains('/');
        if let Some(bad) = self.files.iter().find(|f| !f.path.strip_prefix(PIPES).is_some_and(plain)) {
            return Err(SpecError::BadFile(bad.path.clone()));
        }
        // The root itself cannot be mounted over: the pivot needs it as it is.
        let below_root =
            |t: &str| t.starts_with('/') && !crate::fsutil::lexical(std::path::Path::new(t)).names.is_empty();
        if let Some(bad) = self.mounts.iter().find(|m| !below_root(&m.target)) {
            return Err(SpecError::BadMountTarget(bad.target.clone()));
        }
        let mut spec = self.clone();
        if spec.path().is_none() {
            spec.env.insert(0, format!("PATH={}", crate::DEFAULT_PATH));
        }
        Ok(spec)
    }

    /// The PATH the command's environment sets, if any.
    pub(crate) fn path(&self) -> Option<&str> {
        self.env.iter().find_map(|e| e.strip_prefix("PATH="))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(args: &[&str], env: &[&str], cwd: &str) -> Spec {
        Spec {
            rootfs: "/work/root".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: env.iter().map(|s| s.to_string()).collect(),
            cwd: cwd.into(),
            user: String::new(),
            hostname: "h".into(),
            ..Spec::default()
        }
    }

    fn with_file(path: &str) -> Spec {
        Spec { files: vec![SpecFile { path: path.into(), content: "#!/bin/sh\n".into() }], ..spec(&["sh"], &[], "/") }
    }

    fn with_mount(target: &str) -> Spec {
        let kind = SpecMountKind::Tmpfs { size: None };
        Spec { mounts: vec![SpecMount { target: target.into(), kind }], ..spec(&["sh"], &[], "/") }
    }

    #[test]
    fn invalid_specs_are_refused() {
        let nul = |what, value: &str| Err(SpecError::Nul { what, value: value.into() });
        for (spec, want) in [
            (spec(&["sh"], &["A=1"], "/"), Ok(())),
            (spec(&["sh"], &["A="], "/srv"), Ok(())),
            (spec(&[], &[], "/"), Err(SpecError::NoCommand)),
            (spec(&["sh"], &[], "srv"), Err(SpecError::RelativeCwd("srv".into()))),
            (spec(&["sh"], &[], ""), Err(SpecError::RelativeCwd("".into()))),
            (spec(&["sh", "a\0b"], &[], "/"), nul("argument", "a\0b")),
            (spec(&["sh"], &["A=\0"], "/"), nul("environment entry", "A=\0")),
            (spec(&["sh"], &[], "/a\0"), nul("working directory", "/a\0")),
            (spec(&["sh"], &["JUSTAKEY"], "/"), Err(SpecError::BadEnv("JUSTAKEY".into()))),
            (spec(&["sh"], &["=value"], "/"), Err(SpecError::BadEnv("=value".into()))),
            (Spec { rootfs: "root".into(), ..spec(&["sh"], &[], "/") }, Err(SpecError::RelativeRoot("root".into()))),
            (Spec { user: "u\0".into(), ..spec(&["sh"], &[], "/") }, nul("user", "u\0")),
            (with_file("/dev/pipes/EOF"), Ok(())),
            (with_file("/dev/pipes/a\0"), nul("script path", "/dev/pipes/a\0")),
            (with_file("/dev/pipes/../../etc/x"), Err(SpecError::BadFile("/dev/pipes/../../etc/x".into()))),
            (with_file("/dev/pipes/.."), Err(SpecError::BadFile("/dev/pipes/..".into()))),
            (with_file("/dev/pipes/"), Err(SpecError::BadFile("/dev/pipes/".into()))),
            (with_file("/etc/EOF"), Err(SpecError::BadFile("/etc/EOF".into()))),
            (with_mount("/cache"), Ok(())),
            (with_mount("/"), Err(SpecError::BadMountTarget("/".into()))),
            (with_mount("/a/.."), Err(SpecError::BadMountTarget("/a/..".into()))),
            (with_mount("cache"), Err(SpecError::BadMountTarget("cache".into()))),
            (with_mount("/c\0"), nul("mount target", "/c\0")),
        ] {
            assert_eq!(spec.validated().map(drop), want, "{spec:?}");
        }
    }

    #[test]
    fn the_default_path_is_added_only_when_none_is_set() {
        let default = format!("PATH={}", crate::DEFAULT_PATH);
        for (env, want) in [
            (&[][..], vec![default.as_str()]),
            (&["A=1"][..], vec![default.as_str(), "A=1"]),
            (&["A=1", "PATH=/bin"][..], vec!["A=1", "PATH=/bin"]),
            (&["PATH="][..], vec!["PATH="]),
        ] {
            assert_eq!(spec(&["sh"], env, "/").validated().unwrap().env, want, "{env:?}");
        }
    }
}
