//! Registry credentials, where docker and podman keep them:
//!
//! 1. docker's config (`$DOCKER_CONFIG/config.json`, else
//!    `~/.docker/config.json`): `credHelpers.<host>` (run
//!    `docker-credential-<helper> get`), then `auths.<host>.auth` (base64
//!    `user:password`), then `credsStore` (a helper for every host);
//! 2. `$REGISTRY_AUTH_FILE`, then `${XDG_RUNTIME_DIR}/containers/auth.json`
//!    (podman's, the same `auths` format).
//!
//! `kiln login` writes docker's `auths` (mode 0600); `kiln logout` removes
//! the host from it. A secret never reaches output, logs, errors or the store:
//! [`Credential`]'s Debug shows the user only, errors name files and hosts.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::RegistryError;

/// The key docker's files use for docker's own registry.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A user name and its secret (password or token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name.
    pub username: String,
    /// The password or token; never printed.
    pub secret: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("username", &self.username).field("secret", &"<redacted>").finish()
    }
}

/// The files credentials are read from and written to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthFiles {
    /// docker's config.json: read, and written by login/logout.
    pub docker_config: Option<PathBuf>,
    /// podman-style auth files, read after docker's.
    pub extra: Vec<PathBuf>,
}

/// The name docker's files give `host`'s entry, for matching and writing.
fn key_host(key: &str) -> &str {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => super::client::DOCKER_HUB,
        other => other,
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, RegistryError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| RegistryError::AuthFile { path: path.to_owned(), source: Box::new(source) }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RegistryError::AuthFile { path: path.to_owned(), source: Box::new(e) }),
    }
}

/// `auths.<host>.auth` of a parsed auth file.
fn from_auths(file: &Value, host: &str, path: &Path) -> Result<Option<Credential>, RegistryError> {
    let Some(auths) = file.get("auths").and_then(Value::as_object) else { return Ok(None) };
    let Some(entry) = auths.iter().find(|(k, _)| key_host(k) == host).map(|(_, v)| v) else { return Ok(None) };
    let Some(encoded) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let bad = || RegistryError::BadAuthEntry { path: path.to_owned(), host: host.to_owned() };
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (username, secret) = decoded.split_once(':').ok_or_else(bad)?;
    Ok(Some(Credential { username: username.to_owned(), secret: secret.to_owned() }))
}

/// Ask `docker-credential-<helper>` for `host`'s credential; the helper is
/// looked for in `path` when given (tests), else in `$PATH`.
fn from_helper(helper: &str, host: &str, path: Option<&Path>) -> Result<Option<Credential>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let server = if host == super::client::DOCKER_HUB { DOCKER_HUB_KEY } else { host };
    let failed = |why: String| RegistryError::Helper { helper: program.clone(), host: host.to_owned(), why };
    let mut command = Command::new(&program);
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let mut child = command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    child.stdin.take().expect("piped").write_all(server.as_bytes()).map_err(|e| failed(e.to_string()))?;
    let out = child.wait_with_output().map_err(|e| failed(e.to_string()))?;
    if !out.status.success() {
        // The helpers' protocol: "credentials not found in native keychain" on stdout.
        if String::from_utf8_lossy(&out.stdout).contains("not found") {
            return Ok(None);
        }
        return Err(failed(format!("it exited with {}", out.status)));
    }
    // Its output holds the secret: never quoted in an error.
    let parsed: Value = serde_json::from_slice(&out.stdout).map_err(|_| failed("its answer is not JSON".into()))?;
    let field = |name: &str| parsed.get(name).and_then(Value::as_str).map(str::to_owned);
    match (field("Username"), field("Secret")) {
        (Some(username), Some(secret)) if !secret.is_empty() => Ok(Some(Credential { username, secret })),
        _ => Ok(None),
    }
}

impl AuthFiles {
    /// The credential for `host` (`docker.io`, `127.0.0.1:5000`), if any file has one.
    pub fn credential(&self, host: &str) -> Result<Option<Credential>, RegistryError> {
        if let Some(path) = &self.docker_config {
            if let Some(config) = read_json(path)? {
                let helper = config.get("credHelpers").and_then(Value::as_object).and_then(|h| {
                    h.iter().find(|(k, _)| key_host(k) == host).and_then(|(_, v)| v.as_str().map(str::to_owned))
                });
                if let Some(helper) = helper {
                    return from_helper(&helper, host, None);
                }
                if let Some(found) = from_auths(&config, host, path)? {
                    return Ok(Some(found));
                }
                if let Some(store) = config.get("credsStore").and_then(Value::as_str).filter(|s| !s.is_empty()) {
                    if let Some(found) = from_helper(store, host, None)? {
                        return Ok(Some(found));
                    }
                }
            }
        }
        for path in &self.extra {
            if let Some(found) = read_json(path)?.map(|f| from_auths(&f, host, path)).transpose()?.flatten() {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn docker_config(&self) -> Result<&Path, RegistryError> {
        self.docker_config.as_deref().ok_or(RegistryError::NoAuthFile)
    }

    /// Store `credential` for `host` in docker's `auths` (what `kiln login` does).
    pub fn store(&self, host: &str, credential: &Credential) -> Result<PathBuf, RegistryError> {
        let path = self.docker_config()?;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", credential.username, credential.secret));
        let key = if host == super::client::DOCKER_HUB { DOCKER_HUB_KEY } else { host };
        self.edit(path, |auths| {
            auths.retain(|k, _| key_host(k) != host);
            auths.insert(key.to_owned(), serde_json::json!({ "auth": encoded }));
        })?;
        Ok(path.to_owned())
    }

    /// Forget `host`'s credential in docker's `auths`; whether there was one.
    pub fn remove(&self, host: &str) -> Result<bool, RegistryError> {
        let path = self.docker_config()?;
        let mut removed = false;
        self.edit(path, |auths| {
            let before = auths.len();
            auths.retain(|k, _| key_host(k) != host);
            removed = auths.len() != before;
        })?;
        Ok(removed)
    }

    /// Change `auths` of the docker config at `path`, keeping its other keys;
    /// written whole, mode 0600, its folder 0700.
    fn edit(&self, path: &Path, change: impl FnOnce(&mut Map<String, Value>)) -> Result<(), RegistryError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let err = |e: std::io::Error| RegistryError::AuthFile { path: path.to_owned(), source: Box::new(e) };
        let mut config = read_json(path)?.unwrap_or_else(|| Value::Object(Map::new()));
        let object = config.as_object_mut().ok_or_else(|| RegistryError::AuthFile {
            path: path.to_owned(),
            source: "it is not a JSON object".into(),
        })?;
        let auths = object.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        change(auths.as_object_mut().expect("made an object above"));
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err)?;
        let tmp = dir.join(format!(".{}", crate::store::temp_prefix("config.json")));
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(err)?;
        let written = serde_json::to_writer_pretty(&mut file, &config)
            .map_err(std::io::Error::from)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path, docker: &str, extra: &str) -> AuthFiles {
        std::fs::write(dir.join("config.json"), docker).unwrap();
        std::fs::write(dir.join("auth.json"), extra).unwrap();
        AuthFiles { docker_config: Some(dir.join("config.json")), extra: vec![dir.join("auth.json")] }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn credentials_are_found_by_host_in_docker_then_podman_files() {
        let dir = tempfile::tempdir().unwrap();
        let docker = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"r.example:5000":{{"auth":"{}"}}}}}}"#,
            b64("hub:pw1"),
            b64("me:pa:ss")
        );
        let podman = format!(
            r#"{{"auths":{{"quay.io":{{"auth":"{}"}},"r.example:5000":{{"auth":"{}"}}}}}}"#,
            b64("q:pw3"),
            b64("no:no")
        );
        let f = files(dir.path(), &docker, &podman);
        for (host, want) in [
            ("docker.io", Some(("hub", "pw1"))),
            ("r.example:5000", Some(("me", "pa:ss"))),
            ("quay.io", Some(("q", "pw3"))),
            ("r.example", None),
            ("other.example", None),
        ] {
            let got = f.credential(host).unwrap();
            let got = got.as_ref().map(|c| (c.username.as_str(), c.secret.as_str()));
            assert_eq!(got, want, "{host}");
        }
    }

    #[test]
    fn a_credential_helper_is_asked_and_its_secret_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\necho \"{\\\"Username\\\":\\\"u-$host\\\",\\\"Secret\\\":\\\"hidden\\\"}\"\n",
        )
        .unwrap();
        std::process::Command::new("chmod").arg("+x").arg(&helper).status().unwrap();
        let c = from_helper("fake", "h.example", Some(dir.path())).unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.secret.as_str()), ("u-h.example", "hidden"));
        assert!(!format!("{c:?}").contains("hidden"));
    }

    #[test]
    fn login_writes_auths_privately_and_logout_removes_them() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        let f = AuthFiles { docker_config: Some(path.clone()), extra: vec![] };
        let c = Credential { username: "u".into(), secret: "p".into() };
        f.store("127.0.0.1:5000", &c).unwrap();
        f.store("docker.io", &c).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(f.credential("127.0.0.1:5000").unwrap(), Some(c.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(DOCKER_HUB_KEY), "{text}");
        assert!(f.remove("127.0.0.1:5000").unwrap());
        assert!(!f.remove("127.0.0.1:5000").unwrap());
        assert_eq!(f.credential("127.0.0.1:5000").unwrap(), None);
        assert_eq!(f.credential("docker.io").unwrap(), Some(c));
    }
}
