//! A small HTTP/1.1 server on 127.0.0.1 for tests of remote sources: files
//! with the headers a test gives them (ETag answered with 304 when asked
//! with If-None-Match), a folder served as static files (a git repository
//! after `git update-server-info`: git's dumb HTTP protocol), and a count of
//! the requests of each path. Used by the library's tests and, through
//! `#[path]`, by the integration tests; and a git repository to serve.

// Shared with the integration tests, which use all of it, publicly.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[derive(Default)]
struct State {
    replies: HashMap<String, Reply>,
    dirs: Vec<(String, PathBuf)>,
    hits: HashMap<String, usize>,
    not_modified: HashMap<String, usize>,
    down: bool,
}

pub struct Server {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Server {
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &state);
                });
            }
        });
        Server { addr, state }
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answer `path` with `status`, `headers` and `body` from now on.
    pub fn reply(&self, path: &str, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.state.lock().unwrap().replies.insert(path.to_owned(), Reply { status, headers, body: body.to_vec() });
    }

    /// Serve the files below `dir` under `prefix` (`/repo.git`).
    pub fn serve_dir(&self, prefix: &str, dir: &Path) {
        self.state.lock().unwrap().dirs.push((prefix.trim_end_matches('/').to_owned(), dir.to_owned()));
    }

    /// Answer every request 503 (`true`), as a server that is down, or serve again.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// How many requests of `path` were answered 304 Not Modified.
    pub fn not_modified(&self, path: &str) -> usize {
        self.state.lock().unwrap().not_modified.get(path).copied().unwrap_or(0)
    }

    /// How many requests `path` got.
    pub fn hits(&self, path: &str) -> usize {
        self.state.lock().unwrap().hits.get(path).copied().unwrap_or(0)
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/");
    let path = target.split('?').next().unwrap_or("/").to_owned();
    let mut if_none_match = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("if-none-match") {
                if_none_match = Some(v.trim().to_owned());
            }
        }
    }
    let (status, headers, body) = {
        let mut st = state.lock().unwrap();
        *st.hits.entry(path.clone()).or_default() += 1;
        if st.down {
            (503, vec![], b"down".to_vec())
        } else if let Some(r) = st.replies.get(&path) {
            let etag = r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("etag")).map(|(_, v)| v.clone());
            if etag.is_some() && etag == if_none_match {
                let headers = r.headers.clone();
                *st.not_modified.entry(path.clone()).or_default() += 1;
                (304, headers, Vec::new())
            } else {
                (r.status, r.headers.clone(), r.body.clone())
            }
        } else {
            let file = st.dirs.iter().find_map(|(prefix, dir)| {
                let rel = path.strip_prefix(prefix.as_str())?.trim_start_matches('/');
                let safe = Path::new(rel).components().all(|c| matches!(c, Component::Normal(_)));
                safe.then(|| dir.join(rel))
            });
            match file.and_then(|f| std::fs::read(f).ok()) {
                Some(body) => (200, vec![], body),
                None => (404, vec![], b"not found".to_vec()),
            }
        }
    };
    let mut out = stream;
    write!(out, "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len())?;
    for (k, v) in headers {
        write!(out, "{k}: {v}\r\n")?;
    }
    out.write_all(b"\r\n")?;
    if method != "HEAD" {
        out.write_all(&body)?;
    }
    out.flush()
}

/// git with no host configuration, for making test repositories.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"])
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", "@1600000000 +0000")
        .env("GIT_COMMITTER_DATE", "@1600000000 +0000")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository served over dumb HTTP: `main` with two commits, the first
/// tagged `v1` (annotated). Returns the server, the URL and both commits.
pub fn served_repo(dir: &Path) -> (Server, String, String, String) {
    use std::os::unix::fs::PermissionsExt;
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("sub")).unwrap();
    git(&work, &["init", "-q"]);
    std::fs::write(work.join("a.txt"), "v1\n").unwrap();
    std::fs::write(work.join("sub/run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(work.join("sub/run.sh"), std::fs::Permissions::from_mode(0o775)).unwrap();
    std::os::unix::fs::symlink("a.txt", work.join("link")).unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "-a", "v1", "-m", "v1"]);
    let first = git(&work, &["rev-parse", "HEAD"]);
    std::fs::write(work.join("a.txt"), "v2\n").unwrap();
    git(&work, &["commit", "-q", "-am", "two"]);
    let second = git(&work, &["rev-parse", "HEAD"]);
    let bare = dir.join("repo.git");
    git(dir, &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);
    git(&bare, &["update-server-info"]);
    let server = Server::start();
    server.serve_dir("/repo.git", &bare);
    let url = server.url("/repo.git");
    (server, url, first, second)
}
