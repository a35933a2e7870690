//! `ADD <git url>#<ref>:<subdir>`: a repository cloned at a commit with the
//! `git` command, as BuildKit's git source does.
//!
//! The ref is pinned to a commit before the step (`git ls-remote`; a full
//! commit id needs no request), for the cache key; the step fetches that
//! commit alone (shallow where the server allows), checks it out, and hands
//! back the folder to copy, submodules included. Files get git's modes (0644, or 0755 when
//! executable; folders 0755) and, as in BuildKit, the checkout's time as
//! mtime — or the commit's when `SOURCE_DATE_EPOCH` is set (BuildKit's
//! `mtime=commit`, which it picks then: a reproducible tree).
//!
//! The repository is not trusted, nor is the URL: git runs with no system or
//! user configuration (`GIT_CONFIG_NOSYSTEM`, `GIT_CONFIG_GLOBAL=/dev/null`,
//! `HOME=/dev/null`), no hooks (`core.hooksPath=/dev/null`), no templates, no
//! fsmonitor, no prompt, and only the network transports (http, https, git,
//! ssh): `file://` and `ext::` (which runs a command) are refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{io_err, set_mtime, FetchError};
use crate::fsutil::resolve_in_root;

/// A git source as the Dockerfile writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The repository URL, without the fragment.
    pub remote: String,
    /// Branch, tag, `refs/…` name or full commit id; empty for the default branch.
    pub reference: String,
    /// The folder of the repository to copy; empty for all of it.
    pub subdir: String,
    /// `?checksum=` (or `?commit=`): the commit the ref must resolve to.
    pub checksum: Option<String>,
    /// `?keep-git-dir=true`.
    pub keep_git_dir: bool,
    /// `?submodules=false` turns them off.
    pub submodules: bool,
}

impl GitSource {
    /// `remote#ref:subdir`, as BuildKit splits it, or BuildKit's (Dockerfile
    /// 1.18) query form: `remote?tag=v1&subdir=docs&commit=…`.
    pub fn parse(source: &str) -> Result<GitSource, FetchError> {
        let (remote, fragment) = source.split_once('#').unwrap_or((source, ""));
        let (reference, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
        let mut src = GitSource {
            remote: remote.to_owned(),
            reference: reference.to_owned(),
            subdir: subdir.to_owned(),
            checksum: None,
            keep_git_dir: false,
            submodules: true,
        };
        // Only a URL has a query; `git@host:path` (scp's syntax) has none.
        let Some((base, query)) = remote.split_once('?').filter(|_| remote.contains("://")) else { return Ok(src) };
        let bad = |why: String| FetchError::BadUrl { url: super::redact(source), why };
        if !fragment.is_empty() {
            return Err(bad("write the ref and subdir either after # or as ?ref=…&subdir=…, not both".into()));
        }
        src.remote = base.to_owned();
        let flag = |key: &str, value: &str| match value {
            "" | "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(bad(format!("{key}={value:?}: write true or false"))),
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
            let reference = match key {
                "ref" => Some(value.clone()),
                "tag" => Some(format!("refs/tags/{value}")),
                "branch" => Some(format!("refs/heads/{value}")),
                "subdir" => {
                    src.subdir = value;
                    None
                }
                "checksum" | "commit" => {
                    src.checksum = Some(value);
                    None
                }
                "keep-git-dir" => {
                    src.keep_git_dir = flag(key, &value)?;
                    None
                }
                "submodules" => {
                    src.submodules = flag(key, &value)?;
                    None
                }
                _ => {
                    let known = "ref, tag, branch, subdir, checksum, commit, keep-git-dir, submodules";
                    return Err(bad(format!("unknown query parameter {key:?} (known: {known})")));
                }
            };
            if let Some(reference) = reference {
                if !src.reference.is_empty() {
                    return Err(bad("give one of ref, tag and branch".into()));
                }
                src.reference = reference;
            }
        }
        // A commit alone is the ref too.
        if src.reference.is_empty() {
            if let Some(commit) = src.checksum.as_ref().filter(|c| is_commit_id(c)) {
                src.reference = commit.clone();
            }
        }
        Ok(src)
    }

    /// The URL as errors show it: without a password or token.
    fn shown(&self) -> String {
        super::redact(&self.remote)
    }
}

/// A ref pinned to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinned {
    /// The commit id (an annotated tag is peeled to its commit).
    pub commit: String,
    /// What to ask the server for: the full ref name, or the commit id.
    pub fetch: String,
    /// Other ids the source may be checked against (an annotated tag's own id).
    pub aliases: Vec<String>,
}

/// A full object id: SHA-1, or SHA-256 in repositories of that format.
fn is_commit_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Pin `src`'s ref to a commit.
pub fn pin(src: &GitSource) -> Result<Pinned, FetchError> {
    if is_commit_id(&src.reference) {
        return Ok(Pinned { commit: src.reference.clone(), fetch: src.reference.clone(), aliases: vec![] });
    }
    let wanted = if src.reference.is_empty() { "HEAD" } else { &src.reference };
    // The second pattern lists an annotated tag's commit (`refs/tags/v1^{}`).
    let out = run(src, None, &["ls-remote", "--", &src.remote, wanted, &format!("{wanted}^{{}}")])?;
    let lines: Vec<(&str, &str)> = out.lines().filter_map(|l| l.split_once('\t')).collect();
    // Several refs can end in the name (a branch and a tag): git lists them
    // sorted, and BuildKit takes the first, so a branch wins over a tag.
    let (id, name) = lines
        .iter()
        .find(|(_, name)| !name.ends_with("^{}"))
        .ok_or_else(|| FetchError::NoRef { url: src.shown(), reference: wanted.to_owned() })?;
    if name.starts_with('-') {
        return Err(FetchError::Git {
            url: src.shown(),
            command: "ls-remote".into(),
            stderr: format!("the server lists a ref named {name:?}, which git would read as an option"),
        });
    }
    let peeled = format!("{name}^{{}}");
    let commit = lines.iter().find(|(_, n)| *n == peeled).map_or(*id, |(c, _)| *c);
    if !is_commit_id(commit) {
        return Err(FetchError::Git {
            url: src.shown(),
            command: "ls-remote".into(),
            stderr: format!("{commit:?} is not a commit id"),
        });
    }
    let aliases = if commit != *id { vec![id.to_string()] } else { vec![] };
    Ok(Pinned { commit: commit.to_owned(), fetch: name.to_string(), aliases })
}

/// Check `--checksum` of a git source: the commit id, or a prefix of it.
pub fn check_checksum(src: &GitSource, pinned: &Pinned, checksum: &str) -> Result<(), FetchError> {
    let want = checksum.to_ascii_lowercase();
    if want.is_empty() || want.len() > 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FetchError::BadCommitChecksum(checksum.to_owned()));
    }
    if std::iter::once(&pinned.commit).chain(&pinned.aliases).any(|id| id.starts_with(&want)) {
        return Ok(());
    }
    Err(FetchError::CommitMismatch { url: src.shown(), expected: want, actual: pinned.commit.clone() })
}

/// The mtime of checked-out files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mtime {
    /// When they were checked out: BuildKit's default.
    Checkout,
    /// The commit's time: BuildKit's choice when `SOURCE_DATE_EPOCH` is set.
    Commit,
}

impl Mtime {
    /// BuildKit's choice for this process's environment.
    pub fn from_env() -> Mtime {
        if std::env::var_os("SOURCE_DATE_EPOCH").is_some_and(|v| !v.is_empty()) {
            Mtime::Commit
        } else {
            Mtime::Checkout
        }
    }
}

/// Check out `pinned` into `dir` (which must not exist) and return the
/// folder to copy: `dir` itself, or the source's subdir in it.
pub fn checkout(
    src: &GitSource,
    pinned: &Pinned,
    keep_git_dir: bool,
    mtime: Mtime,
    dir: &Path,
) -> Result<PathBuf, FetchError> {
    let d = Some(dir);
    let dir_str = dir.to_string_lossy();
    run(src, None, &["init", "-q", "--", &dir_str])?;
    run(src, d, &["remote", "add", "origin", "--", &src.remote])?;
    // The ref is the server's (`ls-remote`): after --end-of-options, a name
    // like `--upload-pack=…` is a ref, not an option.
    let shallow = ["fetch", "-q", "--no-tags", "--depth=1", "--end-of-options", "origin", &pinned.fetch];
    if let Err(e) = run(src, d, &shallow) {
        // Dumb HTTP servers cannot do shallow fetches, and some smart ones
        // refuse a bare commit id: fetch everything, then find the commit.
        let is_commit = pinned.fetch == pinned.commit;
        let full: &[&str] = if is_commit {
            &["fetch", "-q", "origin"]
        } else {
            &["fetch", "-q", "--no-tags", "--end-of-options", "origin", &pinned.fetch]
        };
        run(src, d, full).map_err(|_| e)?;
    }
    let fetched = if pinned.fetch == pinned.commit {
        run(src, d, &["rev-parse", "--verify", "-q", "--end-of-options", &format!("{}^{{commit}}", pinned.commit)])
            .map_err(|_| FetchError::NoRef { url: src.shown(), reference: pinned.commit.clone() })?
    } else {
        run(src, d, &["rev-parse", "--verify", "-q", "--end-of-options", "FETCH_HEAD^{commit}"])?
    };
    let fetched = fetched.trim();
    if fetched != pinned.commit {
        return Err(FetchError::RefMoved {
            url: src.shown(),
            reference: pinned.fetch.clone(),
            expected: pinned.commit.clone(),
            actual: fetched.to_owned(),
        });
    }
    run(src, d, &["checkout", "-q", "--detach", "--end-of-options", &pinned.commit])?;
    if src.submodules && dir.join(".gitmodules").exists() {
        // As BuildKit does; the transports allowed are the same for them.
        let update = ["submodule", "update", "-q", "--init", "--recursive", "--depth=1"];
        if run(src, d, &update).is_err() {
            run(src, d, &update[..5])?;
        }
    }
    let time = match mtime {
        Mtime::Checkout => None,
        Mtime::Commit => Some(
            run(src, d, &["log", "-1", "--format=%ct", "--end-of-options", &pinned.commit])?
                .trim()
                .parse()
                .unwrap_or(0),
        ),
    };

    let git_dir = dir.join(".git");
    if keep_git_dir {
        // FETCH_HEAD names the URL; the configs too, with its password.
        let _ = std::fs::remove_file(git_dir.join("FETCH_HEAD"));
        forget_credentials(src, &git_dir)?;
    } else {
        std::fs::remove_dir_all(&git_dir).map_err(io_err("removing", &git_dir))?;
        // A submodule's `.git` is a file naming a folder of the `.git` just removed.
        for entry in walkdir::WalkDir::new(dir).min_depth(2).into_iter().filter_map(Result::ok) {
            if entry.file_name() == ".git" && entry.file_type().is_file() {
                std::fs::remove_file(entry.path()).map_err(io_err("removing", entry.path()))?;
            }
        }
    }
    normalise(dir, &git_dir, time)?;

    let subdir = src.subdir.trim_matches('/');
    if subdir.is_empty() || subdir == "." {
        return Ok(dir.to_owned());
    }
    // A symlink in the repository is followed only inside it.
    let no_subdir =
        || FetchError::NoSubdir { url: src.shown(), subdir: src.subdir.clone(), commit: pinned.commit.clone() };
    let root = resolve_in_root(dir, Path::new(subdir)).map_err(|_| no_subdir())?;
    if !root.is_dir() || root.starts_with(&git_dir) {
        return Err(no_subdir());
    }
    Ok(root)
}

/// `url` without the user info of its authority (`https://user:token@host/…`
/// → `https://host/…`). scp's form (`git@host:path`) has a user, no secret.
fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Rewrite every URL in the kept `.git` (its config, and each submodule's
/// under `modules/`) without user info, so a password or token in the
/// source's URL (or a submodule URL resolved against it) is not in the layer.
fn forget_credentials(src: &GitSource, git_dir: &Path) -> Result<(), FetchError> {
    for entry in walkdir::WalkDir::new(git_dir).into_iter().filter_map(Result::ok) {
        if entry.file_name() != "config" || !entry.file_type().is_file() {
            continue;
        }
        let file = entry.path().to_string_lossy().into_owned();
        // Exit status 1: no URL in this config.
        let Ok(urls) = run(src, None, &["config", "--file", &file, "--get-regexp", "url$"]) else { continue };
        for line in urls.lines() {
            let Some((key, value)) = line.split_once(' ') else { continue };
            let clean = without_userinfo(value);
            if clean != value {
                run(src, None, &["config", "--file", &file, "--replace-all", "--", key, &clean])?;
            }
        }
    }
    Ok(())
}

/// Give the work tree git's modes, and everything `time` as mtime when given.
fn normalise(dir: &Path, git_dir: &Path, time: Option<i64>) -> Result<(), FetchError> {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(dir).contents_first(true) {
        let entry = entry.map_err(|e| io_err("reading the checkout", dir)(e.into()))?;
        let path = entry.path();
        let kind = entry.file_type();
        if !path.starts_with(git_dir) && !kind.is_symlink() {
            let meta = entry.metadata().map_err(|e| io_err("reading", path)(e.into()))?;
            let mode = if kind.is_dir() || meta.permissions().mode() & 0o100 != 0 { 0o755 } else { 0o644 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(io_err("setting the mode of", path))?;
        }
        if let Some(time) = time {
            set_mtime(path, time)?;
        }
    }
    Ok(())
}

/// ssh as git runs it: none of the user's keys, agent, config or known
/// hosts. A hostile Dockerfile (or `.gitmodules`) could otherwise name a
/// private repository the user's keys reach (`git@github.com:victim/x.git`)
/// and copy it into the image; BuildKit too authenticates over ssh only when
/// given `--ssh`. `-F /dev/null` skips ~/.ssh/config and /etc/ssh/ssh_config
/// (ssh finds ~ through the password database, not `HOME`); the identity
/// options stop it from loading ~/.ssh/id_*. Host keys are not checked (as in
/// BuildKit without known hosts): with no credentials sent there is nothing
/// to leak, and `--checksum` pins the content; nothing is written to the
/// user's known_hosts.
const SSH_COMMAND: &str = "ssh -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o IdentityFile=none \
     -o IdentityAgent=none -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/dev/null \
     -o GlobalKnownHostsFile=/dev/null -o ControlMaster=no -o ControlPath=none";

/// How long one git command may run (`KILN_GIT_TIMEOUT`, seconds; 10
/// minutes by default: a large clone on a slow link fits, a server that
/// stalls forever does not hang the build).
fn git_timeout() -> std::time::Duration {
    #[cfg(test)]
    if let Some(limit) = TEST_GIT_TIMEOUT.with(std::cell::Cell::get) {
        return limit;
    }
    let secs = std::env::var("KILN_GIT_TIMEOUT").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    std::time::Duration::from_secs(secs)
}

#[cfg(test)]
thread_local! {
    /// A short timeout for this thread's git commands, so tests run fast.
    static TEST_GIT_TIMEOUT: std::cell::Cell<Option<std::time::Duration>> = const { std::cell::Cell::new(None) };
}

/// The git command `run` starts: none of the host's configuration and only
/// network transports.
fn command(dir: Option<&Path>, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.env_clear();
    // Not SSH_AUTH_SOCK: the user's agent must not answer for a hostile URL.
    for keep in ["PATH", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    cmd.env("HOME", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_SSH_COMMAND", SSH_COMMAND)
        .env("LC_ALL", "C");
    for config in [
        "protocol.allow=never",
        "protocol.https.allow=always",
        "protocol.http.allow=always",
        "protocol.git.allow=always",
        "protocol.ssh.allow=always",
        "core.hooksPath=/dev/null",
        "core.fsmonitor=false",
        "core.sshCommand=",
        "credential.helper=",
        "init.templateDir=",
        "init.defaultBranch=master",
        "advice.detachedHead=false",
    ] {
        cmd.args(["-c", config]);
    }
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Its own process group, so a timeout kills git's helpers (ssh,
    // git-remote-http) too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd
}

/// Run git (see [`command`]), killed after [`git_timeout`].
fn run(src: &GitSource, dir: Option<&Path>, args: &[&str]) -> Result<String, FetchError> {
    use std::io::Read;
    let mut child = command(dir, args).spawn().map_err(|source| FetchError::NoGit { url: src.shown(), source })?;
    // Read both pipes while waiting, so a chatty git never blocks on a full one.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let limit = git_timeout();
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < limit => std::thread::sleep(std::time::Duration::from_millis(20)),
            Ok(None) | Err(_) => {
                let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
                let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                return Err(FetchError::GitTimeout {
                    url: src.shown(),
                    command: args[0].to_owned(),
                    secs: limit.as_secs(),
                });
            }
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if !status.success() {
        let stderr = String::from_utf8_lossy(&err);
        let stderr = stderr.trim().lines().last().unwrap_or("").to_owned();
        return Err(FetchError::Git { url: src.shown(), command: args[0].to_owned(), stderr: super::redact(&stderr) });
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_split_into_remote_ref_and_subdir() {
        let p = |s: &str| {
            let g = GitSource::parse(s).unwrap();
            (g.remote, g.reference, g.subdir)
        };
        let own = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(p("https://h/r.git"), own("https://h/r.git", "", ""));
        assert_eq!(p("https://h/r.git#v1"), own("https://h/r.git", "v1", ""));
        assert_eq!(p("https://h/r.git#main:docs/x"), own("https://h/r.git", "main", "docs/x"));
        assert_eq!(p("git@github.com:o/r.git#:sub"), own("git@github.com:o/r.git", "", "sub"));
        assert_eq!(p("https://h/r.git?tag=v1&subdir=a%2Fb"), own("https://h/r.git", "refs/tags/v1", "a/b"));
        assert_eq!(p("https://h/r.git?branch=dev"), own("https://h/r.git", "refs/heads/dev", ""));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(p(&format!("https://h/r.git?commit={commit}")), own("https://h/r.git", commit, ""));
        let g = GitSource::parse("https://h/r.git?ref=main&keep-git-dir=true&submodules=false&checksum=abc").unwrap();
        assert_eq!((g.keep_git_dir, g.submodules, g.checksum.as_deref()), (true, false, Some("abc")));
        for (bad, why) in [
            ("https://h/r.git?tag=v1#main", "not both"),
            ("https://h/r.git?tag=v1&branch=main", "one of ref, tag and branch"),
            ("https://h/r.git?depth=1", "unknown query parameter \"depth\""),
            ("https://h/r.git?keep-git-dir=maybe", "write true or false"),
        ] {
            let err = GitSource::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn git_gets_neither_the_users_ssh_agent_keys_nor_config() {
        std::env::set_var("SSH_AUTH_SOCK", "/tmp/agent.sock");
        let cmd = command(None, &["ls-remote", "--", "git@github.com:victim/private.git"]);
        let env: std::collections::HashMap<_, _> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
            .collect();
        assert!(!env.contains_key("SSH_AUTH_SOCK"), "{env:?}");
        let ssh = env["GIT_SSH_COMMAND"].clone().unwrap();
        for option in [
            "-F /dev/null",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            "IdentityFile=none",
            "IdentityAgent=none",
            "UserKnownHostsFile=/dev/null",
        ] {
            assert!(ssh.contains(option), "{ssh} lacks {option}");
        }
        // One line for the shell git hands it to.
        assert!(!ssh.contains('\n'), "{ssh:?}");
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert!(args.contains(&"core.sshCommand=".to_owned()), "{args:?}");
    }

    #[test]
    fn urls_lose_their_user_info() {
        assert_eq!(without_userinfo("https://u:tok@h:1/r.git?x#y"), "https://h:1/r.git?x#y");
        assert_eq!(without_userinfo("https://tok@h/r"), "https://h/r");
        assert_eq!(without_userinfo("https://h/a@b"), "https://h/a@b");
        assert_eq!(without_userinfo("git@github.com:o/r.git"), "git@github.com:o/r.git");
    }

    #[test]
    fn a_stalled_server_stops_git_with_a_clear_error() {
        TEST_GIT_TIMEOUT.with(|t| t.set(Some(std::time::Duration::from_secs(1))));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let held: Vec<_> = listener.incoming().take(4).flatten().collect();
            std::thread::sleep(std::time::Duration::from_secs(30));
            drop(held);
        });
        let src = GitSource::parse(&format!("http://{addr}/r.git#main")).unwrap();
        let start = std::time::Instant::now();
        let err = pin(&src).unwrap_err();
        assert!(matches!(err, FetchError::GitTimeout { secs: 1, .. }), "{err}");
        assert!(err.to_string().contains("KILN_GIT_TIMEOUT"), "{err}");
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn a_ref_named_like_an_option_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_server, url, ..) = crate::fetch::test_server::served_repo(dir.path());
        // A hostile server lists it (git itself will not make such a ref);
        // `git fetch origin <ref>` would read it as an option.
        let info_refs = dir.path().join("repo.git/info/refs");
        let info = std::fs::read_to_string(&info_refs).unwrap();
        let id = info.lines().next().unwrap().split('\t').next().unwrap().to_owned();
        std::fs::write(&info_refs, format!("{id}\t--upload-pack=x\n{info}")).unwrap();
        let src = GitSource::parse(&format!("{url}#--upload-pack=x")).unwrap();
        let err = pin(&src).unwrap_err().to_string();
        assert!(err.contains("read as an option"), "{err}");
    }

    #[test]
    fn checksums_match_the_commit_or_a_prefix() {
        let src = GitSource::parse("https://h/r.git#v1").unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567".to_owned();
        let pinned = Pinned { commit: commit.clone(), fetch: "refs/tags/v1".into(), aliases: vec!["f".repeat(40)] };
        for ok in [commit.as_str(), "0123456", "0123456789ABCDEF", &"f".repeat(40)] {
            check_checksum(&src, &pinned, ok).unwrap();
        }
        assert!(matches!(check_checksum(&src, &pinned, "1234567"), Err(FetchError::CommitMismatch { .. })));
        for bad in ["", "sha256:0123", "xyz", &"0".repeat(65)] {
            assert!(matches!(check_checksum(&src, &pinned, bad), Err(FetchError::BadCommitChecksum(_))), "{bad}");
        }
    }
}
