//! kiln's settings, each from the first place that has it: a flag, then the
//! environment, then the config file, then a default.
//!
//! | setting | flag     | environment | config file | default |
//! |---------|----------|-------------|-------------|---------|
//! | store   | `--root` | `KILN_ROOT` | `root`      | `/var/lib/kiln` (root); `$XDG_DATA_HOME/kiln` or `~/.local/share/kiln` |
//! | registries |       |             | `[registries."host:port"]`: `insecure`, `ca`, `mirrors` | https, the system's CAs and `/etc/kiln/certs.d/<host>/ca.crt`, no mirror |
//! | credentials |      | `DOCKER_CONFIG`, `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR` | | `~/.docker/config.json`, then podman's auth files |
//! | snapshotter |      | `KILN_SNAPSHOTTER` | `snapshotter` | probed: `overlay`, else `fuse-overlayfs`, else `copy` |
//! | build cache cap | `--keep-storage` (build, prune) | `KILN_KEEP_STORAGE` | `keep_storage` | a tenth of the store's filesystem |
//!
//! The config file is TOML: `$KILN_CONFIG` (which must then exist), else
//! `/etc/kiln/config.toml` for root and `$XDG_CONFIG_HOME/kiln/config.toml`
//! or `~/.config/kiln/config.toml` for other users (either may be missing).
//! It is where later settings go too — registries, mirrors, credentials,
//! cache size: a key in [`ConfigFile`], a field in [`Settings`], a row above.
//!
//! Rootless, kiln re-executes itself in a user namespace where it is root; the
//! user's defaults (not root's) must still apply there, so the parent leaves
//! [`ROOTLESS_MARK`] in the environment ([`mark_rootless`]).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use kiln::registry::{auth::AuthFiles, HostConfig, RegistryConfig};

use serde::Deserialize;

/// Set by a rootless kiln for the copy of itself it starts in a user namespace.
pub const ROOTLESS_MARK: &str = "_KILN_ROOTLESS";

/// Errors reading the settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("reading the config file {0}")]
    Read(PathBuf, #[source] std::io::Error),
    #[error("the config file {0} is not valid")]
    Parse(PathBuf, #[source] toml::de::Error),
    #[error("{place}: expected a size such as \"20GB\", \"512m\" or a number of bytes, not {value:?}")]
    KeepStorage { place: String, value: String },
}

/// The config file's keys. Unknown keys are refused: a typo must not pass for
/// a setting.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The store root; a relative path is taken from the config file's folder.
    pub root: Option<PathBuf>,
    /// Per registry host (`docker.io`, `127.0.0.1:5000`).
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryEntry>,
    /// `overlay`, `fuse-overlayfs` or `copy` instead of the probed one
    /// (`KILN_SNAPSHOTTER` wins; the library reads it).
    pub snapshotter: Option<kiln::snapshot::Kind>,
    /// The build cache's size cap, enforced after every build (`"20GB"`,
    /// docker's binary units, or a number of bytes).
    pub keep_storage: Option<SizeValue>,
}

/// A size in the config file: a string in docker's syntax, or bytes.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum SizeValue {
    /// Bytes.
    Bytes(u64),
    /// `20GB`, `512m`.
    Text(String),
}

/// `[registries."host:port"]`.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// Plain http allowed (loopback hosts always are).
    #[serde(default)]
    pub insecure: bool,
    /// Extra CA certificates (PEM); relative to the config file's folder.
    pub ca: Option<PathBuf>,
    /// Registries to pull from first (`http://127.0.0.1:5000`).
    #[serde(default)]
    pub mirrors: Vec<String>,
}

/// What kiln runs with, resolved.
#[derive(Debug, PartialEq)]
pub struct Settings {
    /// The store root.
    pub root: PathBuf,
    /// Registries: hosts' settings, credentials' files.
    pub registry: RegistryConfig,
    /// The config file's snapshotter, if any.
    pub snapshotter: Option<kiln::snapshot::Kind>,
    /// The build cache cap from the environment or the config file; `None`
    /// for the default, [`kiln::gc::default_keep_storage`].
    pub keep_storage: Option<u64>,
}

/// What the defaults depend on: who kiln runs as, and its environment.
#[derive(Debug, Clone)]
pub struct Environment {
    /// Real root (not a rootless kiln in its user namespace).
    pub is_root: bool,
    vars: Vec<(String, OsString)>,
}

impl Environment {
    /// This process's.
    pub fn current() -> Self {
        let vars: Vec<(String, OsString)> =
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))).collect();
        let rootless = vars.iter().any(|(k, _)| k == ROOTLESS_MARK);
        Self { is_root: nix::unistd::geteuid().is_root() && !rootless, vars }
    }

    /// A variable's value; empty counts as unset.
    fn var(&self, name: &str) -> Option<PathBuf> {
        self.vars.iter().rev().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| PathBuf::from(v))
    }

    fn home(&self) -> PathBuf {
        self.var("HOME").unwrap_or_else(|| "/tmp".into())
    }

    /// The store root when nothing names one.
    pub fn default_root(&self) -> PathBuf {
        if self.is_root {
            return PathBuf::from("/var/lib/kiln");
        }
        self.var("XDG_DATA_HOME").unwrap_or_else(|| self.home().join(".local/share")).join("kiln")
    }

    /// Where credentials are: docker's config (`$DOCKER_CONFIG/config.json`
    /// or `~/.docker/config.json`), then `$REGISTRY_AUTH_FILE` and
    /// `$XDG_RUNTIME_DIR/containers/auth.json`.
    pub fn auth_files(&self) -> AuthFiles {
        let docker = self.var("DOCKER_CONFIG").unwrap_or_else(|| self.home().join(".docker")).join("config.json");
        let mut extra: Vec<PathBuf> = self.var("REGISTRY_AUTH_FILE").into_iter().collect();
        extra.extend(self.var("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")));
        AuthFiles { docker_config: Some(docker), extra }
    }

    /// The config file, and whether it must exist (it must when named).
    pub fn config_path(&self) -> (PathBuf, bool) {
        if let Some(path) = self.var("KILN_CONFIG") {
            return (path, true);
        }
        if self.is_root {
            return (PathBuf::from("/etc/kiln/config.toml"), false);
        }
        (self.var("XDG_CONFIG_HOME").unwrap_or_else(|| self.home().join(".config")).join("kiln/config.toml"), false)
    }
}

/// Before a rootless kiln re-executes itself: let the copy apply this user's defaults.
pub fn mark_rootless() {
    std::env::set_var(ROOTLESS_MARK, "1");
}

/// Read the config file at `path`; a missing one that need not exist is empty.
pub fn read_config(path: &Path, required: bool) -> Result<ConfigFile, SettingsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| SettingsError::Parse(path.to_owned(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(ConfigFile::default()),
        Err(e) => Err(SettingsError::Read(path.to_owned(), e)),
    }
}

/// The settings from the flags, the environment and the config file.
pub fn resolve(flag_root: Option<PathBuf>, env: &Environment) -> Result<Settings, SettingsError> {
    let (path, required) = env.config_path();
    let config = read_config(&path, required)?;
    merge(flag_root, env, config, &path)
}

/// The precedence table above, without I/O.
fn merge(
    flag_root: Option<PathBuf>,
    env: &Environment,
    config: ConfigFile,
    config_path: &Path,
) -> Result<Settings, SettingsError> {
    let keep_storage = match (env.var("KILN_KEEP_STORAGE"), &config.keep_storage) {
        (Some(text), _) => Some(parse_size(&text.to_string_lossy(), "KILN_KEEP_STORAGE")?),
        (None, Some(SizeValue::Bytes(n))) => Some(*n),
        (None, Some(SizeValue::Text(text))) => {
            Some(parse_size(text, &format!("{}: keep_storage", config_path.display()))?)
        }
        (None, None) => None,
    };
    let from_config = config.root.map(|r| config_path.parent().unwrap_or(Path::new("/")).join(r));
    let root = flag_root.or_else(|| env.var("KILN_ROOT")).or(from_config).unwrap_or_else(|| env.default_root());
    let base = config_path.parent().unwrap_or(Path::new("/"));
    let hosts = config
        .registries
        .into_iter()
        .map(|(host, e)| {
            (host, HostConfig { insecure: e.insecure, ca: e.ca.map(|c| base.join(c)), mirrors: e.mirrors })
        })
        .collect();
    let registry = RegistryConfig { hosts, auth: env.auth_files(), ..RegistryConfig::default() };
    Ok(Settings { root, registry, snapshotter: config.snapshotter, keep_storage })
}

fn parse_size(text: &str, place: &str) -> Result<u64, SettingsError> {
    kiln_frontend::ram_in_bytes(text.trim())
        .ok_or_else(|| SettingsError::KeepStorage { place: place.to_owned(), value: text.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(is_root: bool, vars: &[(&str, &str)]) -> Environment {
        Environment { is_root, vars: vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect() }
    }

    #[test]
    fn the_store_root_comes_from_flag_then_env_then_config_then_default() {
        let user = [("HOME", "/home/u")];
        for (flag, is_root, vars, config, want) in [
            (Some("/flag"), true, &[("KILN_ROOT", "/env")][..], Some("/config"), "/flag"),
            (None, true, &[("KILN_ROOT", "/env")], Some("/config"), "/env"),
            (None, true, &[("KILN_ROOT", "")], Some("/config"), "/config"),
            (None, true, &[], Some("/config"), "/config"),
            (None, true, &[], Some("rel"), "/etc/kiln/rel"),
            (None, true, &[], None, "/var/lib/kiln"),
            (None, true, &user, None, "/var/lib/kiln"),
            (None, false, &user, None, "/home/u/.local/share/kiln"),
            (None, false, &[("HOME", "/home/u"), ("XDG_DATA_HOME", "/data")], None, "/data/kiln"),
            (None, false, &[("HOME", "/home/u"), ("XDG_DATA_HOME", "")], None, "/home/u/.local/share/kiln"),
            (None, false, &user, Some("/config"), "/config"),
            (Some("/flag"), false, &user, None, "/flag"),
        ] {
            let env = env(is_root, vars);
            let config = ConfigFile { root: config.map(PathBuf::from), ..ConfigFile::default() };
            let got = merge(flag.map(PathBuf::from), &env, config, Path::new("/etc/kiln/config.toml")).unwrap();
            assert_eq!(got.root, Path::new(want), "{flag:?} {is_root} {vars:?}");
        }
    }

    #[test]
    fn the_config_file_is_found_by_env_then_by_user() {
        for (is_root, vars, want, required) in [
            (true, &[("KILN_CONFIG", "/my.toml")][..], "/my.toml", true),
            (false, &[("KILN_CONFIG", "/my.toml"), ("HOME", "/home/u")], "/my.toml", true),
            (true, &[("HOME", "/root")], "/etc/kiln/config.toml", false),
            (false, &[("HOME", "/home/u")], "/home/u/.config/kiln/config.toml", false),
            (false, &[("HOME", "/home/u"), ("XDG_CONFIG_HOME", "/cfg")], "/cfg/kiln/config.toml", false),
            (false, &[("HOME", "/home/u"), ("KILN_CONFIG", "")], "/home/u/.config/kiln/config.toml", false),
        ] {
            assert_eq!(env(is_root, vars).config_path(), (PathBuf::from(want), required), "{vars:?}");
        }
    }

    #[test]
    fn config_files_parse_and_missing_ones_are_empty_unless_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        for (text, want) in [
            ("root = \"/srv/kiln\"\n", Some(Some("/srv/kiln"))),
            ("# nothing yet\n", Some(None)),
            ("", Some(None)),
            ("root = 3\n", None),
            ("rot = \"/typo\"\n", None),
            ("root = \"/a\"\nroot = \"/b\"\n", None),
            ("snapshotter = \"vfs\"\n", None),
        ] {
            std::fs::write(&file, text).unwrap();
            let got = read_config(&file, true).ok().map(|c| c.root);
            assert_eq!(got, want.map(|w| w.map(PathBuf::from)), "{text:?}");
        }
        std::fs::write(
            &file,
            "[registries.\"127.0.0.1:5000\"]\ninsecure = true\nca = \"ca.crt\"\n\
             [registries.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:5000\"]\n",
        )
        .unwrap();
        let config = read_config(&file, true).unwrap();
        let settings = merge(None, &env(true, &[("HOME", "/root")]), config, &file).unwrap();
        let local = settings.registry.host("127.0.0.1:5000");
        assert!(local.insecure);
        assert_eq!(local.ca, Some(dir.path().join("ca.crt")));
        assert_eq!(settings.registry.host("docker.io").mirrors, ["http://127.0.0.1:5000"]);
        assert_eq!(settings.registry.auth.docker_config, Some(PathBuf::from("/root/.docker/config.json")));
        std::fs::write(&file, "snapshotter = \"fuse-overlayfs\"\n").unwrap();
        let config = read_config(&file, true).unwrap();
        assert_eq!(config.snapshotter, Some(kiln::snapshot::Kind::FuseOverlayfs));
        std::fs::write(&file, "[registries.\"x\"]\ninsecur = true\n").unwrap();
        assert!(read_config(&file, true).is_err(), "a typo in a registry's keys");
        for (text, vars, want) in [
            ("keep_storage = \"20GB\"\n", &[][..], Some(20 << 30)),
            ("keep_storage = 1000\n", &[], Some(1000)),
            ("keep_storage = \"20GB\"\n", &[("KILN_KEEP_STORAGE", "1g")], Some(1 << 30)),
            ("", &[], None),
        ] {
            std::fs::write(&file, text).unwrap();
            let config = read_config(&file, true).unwrap();
            let settings = merge(None, &env(true, vars), config, &file).unwrap();
            assert_eq!(settings.keep_storage, want, "{text} {vars:?}");
        }
        std::fs::write(&file, "keep_storage = \"lots\"\n").unwrap();
        let err = merge(None, &env(true, &[]), read_config(&file, true).unwrap(), &file).unwrap_err();
        assert!(err.to_string().contains("keep_storage") && err.to_string().contains("lots"), "{err}");
        let err = merge(None, &env(true, &[("KILN_KEEP_STORAGE", "x")]), ConfigFile::default(), &file).unwrap_err();
        assert!(err.to_string().starts_with("KILN_KEEP_STORAGE:"), "{err}");
        let missing = dir.path().join("missing.toml");
        assert_eq!(read_config(&missing, false).unwrap(), ConfigFile::default());
        assert!(matches!(read_config(&missing, true), Err(SettingsError::Read(..))));
    }
}
