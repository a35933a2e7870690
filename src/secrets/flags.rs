//! `kiln build --secret`, `--ssh` and `--allow`, read as buildx reads them,
//! and checked (files readable, sockets sockets) before the build starts.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use super::{SecretKind, SecretSource, SecretsError, SshSource, MAX_SECRET_SIZE};
use crate::build::Entitlements;

/// `--secret` flags as buildx reads them (`util/buildflags/secrets.go`, then
/// BuildKit's `secretsprovider.NewStore`): CSV fields `id=`, `src=` or
/// `source=`, `env=`, `type=file|env`. `type=env` turns a `src=` into the
/// variable's name. With neither `src` nor `env`, the id names an
/// environment variable when kiln's environment has one of that name, else
/// a file. Each file is checked now (it exists, is readable, holds at most
/// 500 KiB); its content is read only when a step mounts it.
pub fn secrets_from_flags(flags: &[String], has_env: impl Fn(&str) -> bool) -> Result<Vec<SecretSource>, SecretsError> {
    let mut out: Vec<SecretSource> = Vec::new();
    for flag in flags {
        let secret = parse_secret(flag, &has_env)?;
        if out.iter().any(|s| s.id == secret.id) {
            return Err(SecretsError::DuplicateSecret(secret.id));
        }
        if let SecretKind::File(path) = &secret.kind {
            check_secret_file(&secret.id, path)?;
        }
        out.push(secret);
    }
    Ok(out)
}

fn parse_secret(flag: &str, has_env: &impl Fn(&str) -> bool) -> Result<SecretSource, SecretsError> {
    let bad = |why: String| SecretsError::SecretFlag { flag: flag.to_owned(), why };
    let (mut id, mut src, mut env, mut typ) = (String::new(), String::new(), String::new(), None);
    for field in kiln_frontend::csv_record(flag).map_err(bad)? {
        let Some((key, value)) = field.split_once('=') else {
            return Err(bad(format!("{field:?} is not KEY=VALUE")));
        };
        match key.to_ascii_lowercase().as_str() {
            "type" if value == "file" || value == "env" => typ = Some(value.to_owned()),
            "type" => return Err(bad(format!("unsupported type {value:?}: write type=file or type=env"))),
            "id" => id = value.to_owned(),
            "src" | "source" => src = value.to_owned(),
            "env" => env = value.to_owned(),
            _ => return Err(bad(format!("unknown key {key:?}: kiln takes id, src (or source), env and type"))),
        }
    }
    if typ.as_deref() == Some("env") && env.is_empty() {
        env = std::mem::take(&mut src);
    }
    if id.is_empty() {
        return Err(bad("the id is missing: write id=ID".to_owned()));
    }
    if env.is_empty() && src.is_empty() {
        if has_env(&id) {
            env = id.clone();
        } else {
            src = id.clone();
        }
    }
    // As BuildKit's store: a variable wins over a file when both are given.
    let kind = match env.is_empty() {
        false => SecretKind::Env(env),
        true => SecretKind::File(absolute(Path::new(&src))),
    };
    Ok(SecretSource { id, kind })
}

/// `path` from the current directory, so that a later read does not depend
/// on where kiln stands then.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

fn check_secret_file(id: &str, path: &Path) -> Result<(), SecretsError> {
    let unreadable = |source| SecretsError::SecretFile { id: id.to_owned(), path: path.to_owned(), source };
    // Opened, not just stat'ed: an unreadable file must fail now, not halfway.
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(SecretsError::SecretNotFile { id: id.to_owned(), path: path.to_owned() });
    }
    if meta.len() > MAX_SECRET_SIZE {
        return Err(SecretsError::SecretTooBig { id: id.to_owned(), path: path.to_owned(), size: meta.len() });
    }
    Ok(())
}

/// `--ssh` flags as buildx reads them: `ID[=SOCKET]`, `default` for the id
/// RUN uses when it names none. Without a path, `$SSH_AUTH_SOCK`
/// (`ssh_auth_sock`). Only agent sockets are forwarded: a key file (or a
/// list of them) is refused with what to do instead.
pub fn ssh_from_flags(flags: &[String], ssh_auth_sock: Option<PathBuf>) -> Result<Vec<SshSource>, SecretsError> {
    let mut out: Vec<SshSource> = Vec::new();
    for flag in flags {
        let bad = |why: &str| SecretsError::SshFlag { flag: flag.clone(), why: why.to_owned() };
        let (id, paths) = match flag.split_once('=') {
            Some((id, paths)) => (id, Some(paths)),
            None => (flag.as_str(), None),
        };
        if id.is_empty() {
            return Err(bad("the id is missing: write default or ID=SOCKET"));
        }
        if out.iter().any(|s| s.id == id) {
            return Err(SecretsError::DuplicateSsh(id.to_owned()));
        }
        let socket = match paths {
            Some("") => return Err(bad("the path is empty")),
            Some(p) if p.contains(',') => return Err(SecretsError::SshKeys(id.to_owned())),
            Some(p) => PathBuf::from(p),
            None => ssh_auth_sock.clone().ok_or_else(|| SecretsError::NoAgent(id.to_owned()))?,
        };
        let socket = absolute(&socket);
        let meta = std::fs::metadata(&socket).map_err(|source| SecretsError::SshPath {
            id: id.to_owned(),
            path: socket.clone(),
            source,
        })?;
        if !meta.file_type().is_socket() {
            return Err(match meta.is_file() {
                true => SecretsError::SshKeys(id.to_owned()),
                false => SecretsError::NotASocket { id: id.to_owned(), path: socket },
            });
        }
        out.push(SshSource { id: id.to_owned(), socket });
    }
    Ok(out)
}

/// `--allow` flags (each may be a comma list): `network.host`,
/// `security.insecure`.
pub fn entitlements_from_flags(flags: &[String]) -> Result<Entitlements, SecretsError> {
    let mut allow = Entitlements::default();
    for name in flags.iter().flat_map(|f| f.split(',')).map(str::trim) {
        match name {
            "network.host" => allow.network_host = true,
            "security.insecure" => allow.security_insecure = true,
            _ => return Err(SecretsError::Entitlement(name.to_owned())),
        }
    }
    Ok(allow)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(flag: &str, file: &Path) -> Result<SecretSource, String> {
        let has_env = |name: &str| name == "IN_ENV";
        let flag = flag.replace("FILE", file.to_str().unwrap());
        secrets_from_flags(&[flag], has_env).map(|mut s| s.remove(0)).map_err(|e| e.to_string())
    }

    #[test]
    fn secrets_read_like_buildx() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "x").unwrap();
        let f = |id: &str| Ok(SecretSource { id: id.into(), kind: SecretKind::File(file.clone()) });
        let e = |id: &str, var: &str| Ok(SecretSource { id: id.into(), kind: SecretKind::Env(var.into()) });
        for (flag, want) in [
            ("id=a,src=FILE", f("a")),
            ("id=a,source=FILE", f("a")),
            ("ID=a,SRC=FILE", f("a")),
            ("id=a,src=FILE,type=file", f("a")),
            ("id=a,env=V", e("a", "V")),
            ("id=a,src=V,type=env", e("a", "V")),
            ("id=a,src=FILE,env=V", e("a", "V")),
            ("id=IN_ENV", e("IN_ENV", "IN_ENV")),
            ("\"id=a\",\"src=FILE\"", f("a")),
        ] {
            assert_eq!(secret(flag, &file), want, "{flag}");
        }
        // Only an id that names no variable: the file of that name.
        let by_id = secrets_from_flags(&["id=nothing-here".into()], |_| false).unwrap_err().to_string();
        assert!(by_id.contains("--secret id=nothing-here: cannot read"), "{by_id}");
        for (flag, want) in [
            ("src=FILE", "the id is missing"),
            ("id=a,src", "\"src\" is not KEY=VALUE"),
            ("id=a,type=ssh", "unsupported type \"ssh\""),
            ("id=a,mode=0400", "unknown key \"mode\""),
            ("id=a,src=/no/such/file", "--secret id=a: cannot read /no/such/file"),
            ("id=a,src=/", "--secret id=a: / is not a regular file"),
            ("\"id=a,src=FILE", "not closed"),
        ] {
            let got = secret(flag, &file).unwrap_err();
            assert!(got.contains(want), "{flag}: {got}");
        }
    }

    #[test]
    fn a_secret_id_given_twice_or_a_big_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        std::fs::write(&file, vec![b'x'; MAX_SECRET_SIZE as usize + 1]).unwrap();
        let twice = ["id=a,env=A".to_owned(), "id=a,env=B".to_owned()];
        let err = secrets_from_flags(&twice, |_| false).unwrap_err().to_string();
        assert!(err.contains("--secret id=a is given twice"), "{err}");
        let big = [format!("id=big,src={}", file.display())];
        let err = secrets_from_flags(&big, |_| false).unwrap_err().to_string();
        assert!(err.contains("at most 500 KiB"), "{err}");
    }

    #[test]
    fn ssh_takes_agent_sockets_only() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let key = dir.path().join("id_ed25519");
        std::fs::write(&key, "key").unwrap();
        let got = ssh_from_flags(&["default".into()], Some(sock.clone())).unwrap();
        assert_eq!(got, [SshSource { id: "default".into(), socket: sock.clone() }]);
        let got = ssh_from_flags(&[format!("git={}", sock.display())], None).unwrap();
        assert_eq!(got, [SshSource { id: "git".into(), socket: sock.clone() }]);
        for (flag, auth, want) in [
            ("default".to_owned(), None, "SSH_AUTH_SOCK is not set"),
            (format!("k={}", key.display()), None, "key files are not supported"),
            (format!("k={},{}", key.display(), key.display()), None, "key files are not supported"),
            (format!("d={}", dir.path().display()), None, "is not a socket"),
            ("d=/no/such.sock".to_owned(), None, "--ssh d: cannot use /no/such.sock"),
            ("=x".to_owned(), None, "the id is missing"),
        ] {
            let got = ssh_from_flags(std::slice::from_ref(&flag), auth).unwrap_err().to_string();
            assert!(got.contains(want), "{flag}: {got}");
        }
        let twice = ["default".to_owned(), format!("default={}", sock.display())];
        let err = ssh_from_flags(&twice, Some(sock)).unwrap_err().to_string();
        assert!(err.contains("--ssh default is given twice"), "{err}");
    }

    #[test]
    fn entitlements_are_known_names_in_lists() {
        let all = Entitlements { network_host: true, security_insecure: true };
        let flags = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(entitlements_from_flags(&flags(&["network.host,security.insecure"])).unwrap(), all);
        assert_eq!(entitlements_from_flags(&flags(&["network.host", "security.insecure"])).unwrap(), all);
        assert_eq!(entitlements_from_flags(&flags(&[])).unwrap(), Entitlements::default());
        let err = entitlements_from_flags(&flags(&["network.hots"])).unwrap_err().to_string();
        assert!(err.contains("unknown --allow \"network.hots\""), "{err}");
    }
}
