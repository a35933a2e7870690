//! Bearer-token auth against the real registry: distribution's `token` auth,
//! with a token server here that checks basic credentials and signs RS256
//! JWTs with `openssl` ([`super::registry::Registry::token_auth`]).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;

use super::harness::Kiln;
use super::registry::{count, Registry, Session, PASSWORD, USER};

/// The registry's `service`: the tokens' audience.
pub const SERVICE: &str = "kiln-test";
/// The tokens' issuer, as the registry expects it.
pub const ISSUER: &str = "kiln-test-issuer";

/// Start a token server on a free loopback port, signing with `dir`'s
/// `token.key` / `token.crt`; its realm URL. It serves until the test
/// process ends.
pub fn serve(dir: &Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // One client at a time is plenty for kiln's few token requests.
            let _ = answer(stream, &dir);
        }
    });
    realm
}

/// Read one request and answer it: a token for good credentials, else 401.
fn answer(mut stream: TcpStream, dir: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut authorized = false;
    let wanted = format!("basic {}", STANDARD.encode(format!("{USER}:{PASSWORD}")));
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                // The scheme's case is free; base64 is not.
                let value = value.trim();
                authorized |= value.len() == wanted.len()
                    && value[..6].eq_ignore_ascii_case("basic ")
                    && value[6..] == wanted[6..];
            }
        }
    }
    let (status, body) = if authorized {
        let token = token(dir, &scopes(&target));
        ("200 OK", serde_json::json!({ "token": token, "access_token": token, "expires_in": 300 }).to_string())
    } else {
        ("401 Unauthorized", r#"{"details":"wrong or missing credentials"}"#.to_owned())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The `access` claim for the request's `scope=repository:NAME:ACTIONS` parameters.
fn scopes(target: &str) -> Vec<serde_json::Value> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("scope="))
        .flat_map(|scope| {
            let scope = decode(scope);
            scope
                .split(' ')
                .filter_map(|one| {
                    let mut parts = one.splitn(3, ':');
                    let (kind, rest) = (parts.next()?, parts.collect::<Vec<_>>());
                    // NAME may hold a port, never a colon: ACTIONS is the last part.
                    let (name, actions) = (rest.first()?, rest.get(1)?);
                    Some(serde_json::json!({
                        "type": kind,
                        "name": name,
                        "actions": actions.split(',').collect::<Vec<_>>(),
                    }))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Percent-decoding of a query value (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() && u8::from_str_radix(&s[i + 1..i + 3], 16).is_ok() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
                continue;
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An RS256 JWT granting `access`, its header carrying the signing certificate.
fn token(dir: &Path, access: &[serde_json::Value]) -> String {
    let pem = std::fs::read_to_string(dir.join("token.crt")).unwrap();
    let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let header = serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5c": [der] });
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": USER, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("kiln-{now}-{}", std::process::id()),
        "access": access,
    });
    let signed =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("token.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    openssl.stdin.take().unwrap().write_all(signed.as_bytes()).unwrap();
    let out = openssl.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl dgst -sign failed");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(out.stdout))
}

#[test]
fn bearer_token_login_push_and_pull_keep_the_password_out_of_output_and_store() {
    let r = Registry::token_auth();
    let s = Session::new();
    let a = Kiln::with_busybox();
    let name = format!("{}/tokens/busybox:1", r.host);

    let out = s.run(&a, &["push", "busybox", &name], None).failed();
    assert!(out.stderr.contains(&format!("log in to {} with kiln login", r.host)), "{}", out.stderr);

    let wrong = "not-the-Passw0rd-xyz";
    let out = s.run(&a, &["login", "-u", USER, "--password-stdin", &r.host], Some(&format!("{wrong}\n"))).failed();
    assert!(out.stderr.contains("log in to"), "{}", out.stderr);
    assert!(!out.stderr.contains(wrong) && !out.stdout.contains(wrong), "{}{}", out.stdout, out.stderr);
    assert!(!s.docker_config().exists(), "a refused login keeps nothing");

    let login = s.run(&a, &["login", "-u", USER, "--password-stdin", &r.host], Some(&format!("{PASSWORD}\n"))).ok();
    let push = s.run(&a, &["push", "busybox", &name], None).ok();
    let b = Kiln::empty();
    let pull = s.run(&b, &["pull", &name], None).ok();
    // The same image (config); the manifest differs, its layers gzipped on the way.
    assert_eq!(b.inspect(&name)["Id"], a.inspect("busybox")["Id"]);
    for out in [&login, &push, &pull] {
        assert!(!out.stderr.contains(PASSWORD) && !out.stdout.contains(PASSWORD), "{}{}", out.stdout, out.stderr);
    }
    for k in [&a, &b] {
        let leaked = Command::new("grep").args(["-r", "-l", PASSWORD]).arg(k.root()).output().unwrap();
        assert!(leaked.stdout.is_empty(), "the password is in the store: {}", String::from_utf8_lossy(&leaked.stdout));
    }
    // The registry took the upload and the manifest with a token, not a refusal.
    assert_eq!(count(&r, "PUT", "/v2/tokens/busybox/manifests/1", 201), 1, "{}", r.log());

    // A second repository mounts the blobs: its token must cover both.
    let other = format!("{}/tokens/other:1", r.host);
    let out = s.run(&a, &["push", "busybox", &other], None).ok();
    assert!(!out.stderr.contains(PASSWORD));
    assert_eq!(count(&r, "PUT", "/v2/tokens/other/manifests/1", 201), 1, "{}", r.log());
    assert_eq!(count(&r, "POST", "/v2/tokens/other/blobs/uploads/?mount=", 201), 2, "{}", r.log());
    assert_eq!(count(&r, "PATCH", "/v2/tokens/other/", 202), 0, "a mounted blob was uploaded again");
}
