//! A real registry for the tests: Debian's `docker-registry` (the CNCF
//! distribution registry) on a free loopback port, with its storage and
//! config in a temporary folder, and its access log kept so tests can count
//! the requests kiln made. [`Registry::tls_htpasswd`] gives one behind TLS
//! (a throwaway CA made with openssl) with htpasswd auth, as the registry
//! only takes credentials over TLS. [`Registry::token_auth`] gives one on
//! plain http that wants bearer tokens from a token server run by the test.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry, stopped (and its storage removed) on drop.
pub struct Registry {
    /// `127.0.0.1:<port>`: the registry host in image references.
    pub host: String,
    /// Where its config, storage, log (and TLS files) live.
    pub dir: tempfile::TempDir,
    child: Child,
}

/// The credentials of [`Registry::tls_htpasswd`].
pub const USER: &str = "kiln-user";
pub const PASSWORD: &str = "s3cret-Passw0rd";

impl Registry {
    /// A plain-http registry without auth.
    pub fn start() -> Self {
        Self::spawn(|_| String::new())
    }

    /// A registry behind TLS, its certificate signed by a CA made for the test
    /// ([`Registry::ca`]), that wants [`USER`] / [`PASSWORD`] (htpasswd, bcrypt).
    pub fn tls_htpasswd() -> Self {
        Self::spawn(|dir| {
            let run = |cmd: &mut Command| {
                let out = cmd.current_dir(dir).output().unwrap();
                assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
                out.stdout
            };
            run(Command::new("openssl").args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=kiln test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ]));
            std::fs::write(dir.join("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
            run(Command::new("openssl").args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ]));
            run(Command::new("openssl").args([
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "san.cnf",
                "-out",
                "server.crt",
            ]));
            let htpasswd = run(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
            std::fs::write(dir.join("htpasswd"), htpasswd).unwrap();
            format!(
                "  tls:\n    certificate: {0}/server.crt\n    key: {0}/server.key\n\
                 auth:\n  htpasswd:\n    realm: kiln-test\n    path: {0}/htpasswd\n",
                dir.display()
            )
        })
    }

    /// A plain-http registry that wants bearer tokens (distribution's `token`
    /// auth), issued by a token server on a thread of the test that gives
    /// [`USER`] / [`PASSWORD`] the access they ask for and anyone else 401.
    /// Its tokens are RS256 JWTs signed with a self-signed certificate,
    /// which is also the registry's root bundle.
    pub fn token_auth() -> Self {
        Self::spawn(|dir| {
            let out = Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"])
                .args(["-subj", "/CN=kiln test token issuer", "-keyout", "token.key", "-out", "token.crt"])
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
            let realm = super::registry_token::serve(dir);
            format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}/token.crt\n",
                super::registry_token::SERVICE,
                super::registry_token::ISSUER,
                dir.display()
            )
        })
    }

    fn spawn(extra: impl FnOnce(&Path) -> String) -> Self {
        let dir = tempfile::Builder::new().prefix("kiln-registry-").tempdir().unwrap();
        let tail = extra(dir.path());
        let tls = tail.contains("tls:");
        // A port the kernel just handed out and we let go of: free unless
        // something grabs it in between, which start-up would then report.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: {host}\n{tail}",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("docker-registry is needed (apt-get install docker-registry): {e}"));
        let registry = Registry { host, dir, child };
        registry.wait_ready(tls);
        registry
    }

    /// Wait until the registry answers on its port (at most 20 s).
    fn wait_ready(&self, tls: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(&self.host) {
                if tls {
                    return; // listening is enough: speaking TLS here would need a client
                }
                let _ = s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.host).as_bytes());
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                // 401: up, and wanting a token first.
                if answer.starts_with("HTTP/1.") && matches!(answer.get(9..12), Some("200" | "401")) {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "the registry did not start:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The CA that signed a TLS registry's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Everything the registry logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The requests it answered, from its access log: `(method, path, status)`.
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.log()
            .lines()
            .filter_map(|l| {
                let quoted = l.split('"').nth(1)?;
                let mut words = quoted.split_whitespace();
                let (method, path) = (words.next()?, words.next()?);
                let status = l.split('"').nth(2)?.split_whitespace().next()?.parse().ok()?;
                Some((method.to_owned(), path.to_owned(), status))
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_test_registry_starts_answers_and_logs_requests() {
    let r = Registry::start();
    let mut s = TcpStream::connect(&r.host).unwrap();
    s.write_all(format!("HEAD /v2/x/blobs/sha256:{} HTTP/1.0\r\n\r\n", "0".repeat(64)).as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.contains(" 404 "), "{answer}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        r.requests().iter().any(|(m, p, s)| m == "HEAD" && p.starts_with("/v2/x/blobs/") && *s == 404),
        "{:?}\n{}",
        r.requests(),
        r.log()
    );
    let tls = Registry::tls_htpasswd();
    assert!(tls.ca().is_file());
}

/// A kiln command against registries: its own docker config folder (so the
/// host's ~/.docker never leaks in or gets written) and, when given, a kiln
/// config file.
pub struct Session {
    /// Holds `docker/config.json` and `config.toml`.
    pub dir: tempfile::TempDir,
}

impl Session {
    /// No credentials, no kiln config.
    pub fn new() -> Self {
        Session { dir: tempfile::Builder::new().prefix("kiln-reg-session-").tempdir().unwrap() }
    }

    /// With this kiln config file.
    pub fn with_config(toml: &str) -> Self {
        let s = Self::new();
        std::fs::write(s.dir.path().join("config.toml"), toml).unwrap();
        s
    }

    /// docker's config.json of this session.
    pub fn docker_config(&self) -> PathBuf {
        self.dir.path().join("docker/config.json")
    }

    /// Run kiln on `k`'s store with `args` (and `stdin`).
    pub fn run(&self, k: &super::harness::Kiln, args: &[&str], stdin: Option<&str>) -> super::harness::Run {
        let mut cmd = k.command();
        cmd.args(args).env("DOCKER_CONFIG", self.dir.path().join("docker"));
        let config = self.dir.path().join("config.toml");
        if config.exists() {
            cmd.env("KILN_CONFIG", config);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
        drop(input);
        let out = child.wait_with_output().unwrap();
        super::harness::Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// How many requests of `method` to paths holding `part` the registry answered with `status`.
pub fn count(r: &Registry, method: &str, part: &str, status: u16) -> usize {
    r.requests().iter().filter(|(m, p, s)| m == method && p.contains(part) && *s == status).count()
}

/// The manifest a plain-HTTP test registry holds for `name` (what a push
/// sent: its layers compressed, unlike the store's).
pub fn remote_manifest(name: &str) -> serde_json::Value {
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{name}")])
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    serde_json::from_slice(&raw.stdout).unwrap()
}
