//! Uploads through a connection that drops: a loopback proxy between kiln and
//! the registry cuts connections (see [`Cut`]). Cut once, the push resumes
//! where the registry stands (a GET of the upload, then a PATCH from there)
//! and does not start over; cut every time, it fails clearly and no tag is
//! written.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::harness::Kiln;
use super::registry::{count, Registry, Session};

/// A TCP proxy to a registry that cuts connections.
struct Proxy {
    /// `127.0.0.1:<port>`: push here.
    host: String,
    /// Bytes it carried towards the registry, all connections together.
    sent: Arc<AtomicU64>,
}

/// When the proxy cuts.
#[derive(Clone, Copy)]
enum Cut {
    /// Once: the first PATCH that starts after this many bytes went to the
    /// registry (over all connections), before any of it is passed on. The
    /// registry then holds whole chunks only: distribution 2.8 cancels an
    /// upload whose stored size differs from what it last answered, so a
    /// body cut short there could not be resumed, only started over.
    OncePatchAfter(u64),
    /// Every connection, in the middle of whatever it carries, once it has
    /// carried this many bytes.
    Always(u64),
}

impl Proxy {
    fn start(upstream: &str, cut: Cut) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let cut_once = Arc::new(AtomicBool::new(false));
        let (total, upstream) = (sent.clone(), upstream.to_owned());
        // Runs until the test binary exits: accept blocks, and a leaked
        // thread per test costs nothing.
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || copy(s2, c2, |_| false));
                let (total, cut_once) = (total.clone(), cut_once.clone());
                std::thread::spawn(move || {
                    let mut carried = 0u64;
                    copy(client, server, |read| {
                        let drop = match cut {
                            Cut::OncePatchAfter(n) => {
                                read.starts_with(b"PATCH ")
                                    && total.load(Ordering::SeqCst) > n
                                    && !cut_once.swap(true, Ordering::SeqCst)
                            }
                            Cut::Always(n) => carried + read.len() as u64 > n,
                        };
                        if !drop {
                            carried += read.len() as u64;
                            total.fetch_add(read.len() as u64, Ordering::SeqCst);
                        }
                        drop
                    })
                });
            }
        });
        Proxy { host, sent }
    }
}

/// Copy `from` to `to` until either ends, or until `cut` (shown each read)
/// says to drop both without passing that read on.
fn copy(mut from: TcpStream, mut to: TcpStream, mut cut: impl FnMut(&[u8]) -> bool) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if cut(&buf[..n]) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// An image with a 20 MB layer of random bytes (gzip cannot shrink it), named `name`.
pub(super) fn big_image(name: &str) -> Kiln {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN head -c 20000000 /dev/urandom > /big\n");
    k.build(&["-t", name]).ok();
    k
}

/// The size of every blob of `image`'s manifest, config included.
fn blob_bytes(k: &Kiln, image: &str) -> u64 {
    let manifest = &k.inspect(image)["Manifest"];
    let layers: u64 = manifest["layers"].as_array().unwrap().iter().map(|l| l["size"].as_u64().unwrap()).sum();
    layers + manifest["config"]["size"].as_u64().unwrap()
}

#[test]
fn an_upload_cut_once_resumes_where_the_registry_stands() {
    let r = Registry::start();
    let proxy = Proxy::start(&r.host, Cut::OncePatchAfter(12_000_000));
    let s = Session::new();
    let name = format!("{}/up/big:1", proxy.host);
    let a = big_image(&name);

    let out = s.run(&a, &["push", &name], None).ok();
    let requests = r.requests();
    let status = requests.iter().position(|(m, p, s)| m == "GET" && p.contains("/up/big/blobs/uploads/") && *s == 204);
    let status = status.unwrap_or_else(|| panic!("no GET of the upload's status: {requests:?}\n{}", out.stderr));
    assert!(
        requests[status..].iter().any(|(m, p, s)| m == "PATCH" && p.contains("/up/big/blobs/uploads/") && *s == 202),
        "no PATCH after the status check: {requests:?}"
    );
    let blobs = blob_bytes(&a, &name);
    let sent = proxy.sent.load(Ordering::SeqCst);
    assert!(sent < blobs * 3 / 2, "{sent} bytes sent for {blobs} bytes of blobs: the upload started over");

    let b = Kiln::empty();
    s.run(&b, &["pull", &name], None).ok();
    assert_eq!(b.inspect(&name)["Id"], a.inspect(&name)["Id"]);
    assert_eq!(s.run(&b, &["run", &name, "wc", "-c", "/big"], None).ok().stdout.trim(), "20000000 /big");
}

#[test]
fn an_upload_cut_every_time_fails_clearly_and_writes_no_tag() {
    let r = Registry::start();
    let proxy = Proxy::start(&r.host, Cut::Always(2_000_000));
    let s = Session::new();
    let name = format!("{}/up/big:1", proxy.host);
    let a = big_image(&name);

    let out = s.run(&a, &["push", &name], None).failed();
    assert!(out.stderr.contains("broke off at byte"), "{}", out.stderr);
    assert!(out.stderr.contains(&proxy.host), "{}", out.stderr);
    assert_eq!(count(&r, "PUT", "/manifests/", 201), 0, "{:?}", r.requests());
    let mut conn = TcpStream::connect(&r.host).unwrap();
    conn.write_all(b"HEAD /v2/up/big/manifests/1 HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.contains(" 404 "), "the tag exists: {answer}");
}
