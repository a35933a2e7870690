//! RUN's networks: the default (a namespace of its own, outbound through
//! pasta or slirp4netns, never to the host's loopback nor listening on the
//! host), `--network=none` (only `lo`) and `--network=host` (only with the
//! entitlement). Every server here is the test's own, on this machine: no
//! test needs the internet.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::build::Dockerfile;
use kiln::store::Store;
use kiln::BuildRequest;

use super::harness::{busybox_tar, Kiln, Run, KILN};

/// What a build printed, both streams.
fn output(run: &Run) -> String {
    format!("{}{}", run.stdout, run.stderr)
}

/// A TCP server of the test's, answering each connection as an HTTP server
/// would, after running `on_hit`; it counts them. The steps read it with
/// busybox nc under `timeout`: the pasta of Debian 12 (2023-03) does not
/// always pass the server's FIN on, so nc may wait after the reply.
struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(ip: IpAddr, body: &'static str, on_hit: impl Fn() + Send + 'static) -> Server {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (hits, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let server = Server { addr: listener.local_addr().unwrap(), hits: hits.clone(), stop: stop.clone() };
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        hits.fetch_add(1, Ordering::Relaxed);
                        on_hit();
                        conn.set_nonblocking(false).unwrap();
                        conn.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                        let _ = conn.read(&mut [0u8; 1024]);
                        let reply = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                        let _ = conn.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        server
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// An address of this machine that is not on its loopback: the source of its
/// route to the world, else its first global address.
fn host_address() -> IpAddr {
    let out = Command::new("ip").args(["-4", "-o", "route", "get", "1.1.1.1"]).output().unwrap();
    let route = String::from_utf8_lossy(&out.stdout).into_owned();
    let words: Vec<&str> = route.split_whitespace().collect();
    if let Some(src) = words.iter().position(|w| *w == "src").and_then(|i| words.get(i + 1)) {
        return src.parse().unwrap();
    }
    let out = Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output().unwrap();
    let addrs = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = addrs.split_whitespace().skip_while(|w| *w != "inet").nth(1);
    let addr = first.and_then(|a| a.split('/').next()).unwrap_or_else(|| {
        panic!("these tests need an IPv4 address on this machine beyond its loopback; `ip addr` shows none")
    });
    addr.parse().unwrap()
}

#[test]
fn the_default_network_reaches_the_hosts_address_but_not_its_loopback() {
    let host = host_address();
    for k in Kiln::each_mode() {
        let private = Server::start(loopback(), "LOOPBACK-SERVICE", || {});
        let public = Server::start(host, "PUBLIC-SERVICE", || {});
        let (lo, pb) = (private.addr.port(), public.addr.port());
        // The gateway is where slirp4netns (without --disable-host-loopback)
        // and pasta (without --no-map-gw) would lead to the host's loopback.
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 RUN timeout 5 nc -w 3 127.0.0.1 {lo} </dev/null; \
                 gw=$(ip route | awk '/^default/ {{print $3}}'); echo GATEWAY $gw; \
                 timeout 5 nc -w 3 $gw {lo} </dev/null; \
                 timeout 5 nc -w 3 {host} {pb} </dev/null; echo; \
                 grep nameserver /etc/resolv.conf\n"
            ),
        );
        let out = k.build(&["--no-cache"]).ok();
        let text = output(&out);
        assert_eq!(private.hits(), 0, "{:?}: a RUN step reached a service on the host's loopback:\n{text}", k.mode);
        assert!(!text.contains("LOOPBACK-SERVICE"), "{:?}:\n{text}", k.mode);
        assert!(text.contains("GATEWAY 10.0.2.2"), "{:?}: no default route:\n{text}", k.mode);
        assert!(text.contains("PUBLIC-SERVICE") && public.hits() >= 1, "{:?}: {host} not reached:\n{text}", k.mode);
        // The helper's DNS forwarder, never the host's loopback resolver.
        let nameservers: Vec<&str> = text.lines().filter_map(|l| l.split("nameserver ").nth(1)).collect();
        assert!(nameservers == ["10.0.2.3"], "{:?}: resolv.conf names {nameservers:?}", k.mode);
        k.assert_clean();
    }
}

#[test]
fn a_port_a_step_listens_on_is_not_reachable_from_the_host() {
    let host = host_address();
    for k in Kiln::each_mode() {
        let port = TcpListener::bind((loopback(), 0)).unwrap().local_addr().unwrap().port();
        let reached = Arc::new(AtomicBool::new(false));
        let seen = reached.clone();
        // While the step listens (it waits on this answer), try its port on
        // the host for a while: pasta's default forwarding (-t auto) notices
        // a new listening port within a second.
        let signal = Server::start(host, "PROBED", move || {
            let until = Instant::now() + Duration::from_millis(2500);
            while Instant::now() < until {
                for ip in [loopback(), host] {
                    let to = SocketAddr::new(ip, port);
                    if TcpStream::connect_timeout(&to, Duration::from_millis(200)).is_ok() {
                        seen.store(true, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 RUN (nc -ll -p {port} -e /bin/true &); \
                 until netstat -ltn | grep -q ':{port} '; do sleep 0.1; done; echo LISTENING; \
                 timeout 12 nc -w 10 {host} {sp} </dev/null; true\n",
                sp = signal.addr.port()
            ),
        );
        let out = k.build(&["--no-cache"]).ok();
        let text = output(&out);
        assert!(text.contains("LISTENING") && text.contains("PROBED"), "{:?}:\n{text}", k.mode);
        assert!(!reached.load(Ordering::Relaxed), "{:?}: the step's port {port} was reachable from the host", k.mode);
        k.assert_clean();
    }
}

#[test]
fn the_default_network_blocks_the_cloud_metadata_service_but_not_the_dns_forwarder() {
    for k in Kiln::each_mode() {
        assert_metadata_blocked(&k, None);
    }
    // pasta too: found alone on PATH, slirp4netns (preferred) is not.
    let k = Kiln::with_busybox();
    let only_pasta = k.dir.path().join("only-pasta");
    std::fs::create_dir_all(&only_pasta).unwrap();
    let pasta = ["/usr/bin/pasta", "/bin/pasta"].into_iter().find(|p| Path::new(p).exists());
    std::os::unix::fs::symlink(pasta.expect("pasta is installed"), only_pasta.join("pasta")).unwrap();
    assert_metadata_blocked(&k, Some(&only_pasta));
}

/// A default-network step of `k`'s, with `path` as kiln's PATH if given,
/// cannot reach the metadata service and still reaches the DNS forwarder.
fn assert_metadata_blocked(k: &Kiln, path: Option<&Path>) {
    {
        // Nothing may answer at 169.254.169.254 on this machine, so what is
        // checked is that the step's own kernel refuses at once (a prohibit
        // route: EACCES) rather than handing the connection to the helper,
        // which would open it from the host. The DNS forwarder (resolv.conf's
        // nameserver) must still be routed, and answer a query. The markers
        // are split by '' so the echoed command line does not contain them.
        // A packet socket (CAP_NET_RAW) would pass the routes by: frames
        // written straight to the helper's tap device (arping, here).
        k.write(
            "Dockerfile",
            "FROM busybox\n\
             RUN ip route; ip -6 route 2>/dev/null; ip route get 10.0.2.3; \
             t0=$(date +%s); \
             if timeout 5 nc -w 3 169.254.169.254 80 </dev/null; then echo METADATA-''REACHED; fi; \
             echo METADATA-''SECONDS $(( $(date +%s) - t0 )); \
             if timeout 5 nc -w 3 169.254.1.1 53 </dev/null; then echo LINK-''LOCAL-REACHED; fi; \
             if [ -e /proc/net/if_inet6 ]; then ip -6 route | grep -q '^prohibit fd00:ec2::/64' && echo V6-''BLOCKED; \
             else echo V6-''BLOCKED; fi; \
             timeout 10 nslookup -type=a localhost.example 10.0.2.3; \
             dev=$(ip route | awk '/^default/ {print $5}'); \
             if timeout 5 arping -c 1 -w 2 -I $dev 10.0.2.2; then echo RAW-''FRAMES-SENT; fi; true\n",
        );
        let mut cmd = k.command();
        if let Some(path) = path {
            cmd.env("PATH", path);
        }
        let out = cmd.args(["build", "--no-cache", k.ctx().to_str().unwrap()]).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{:?} {path:?}:\n{text}", k.mode);
        // slirp4netns's device is tap0; pasta's takes the name of the host's.
        assert_eq!(text.contains("dev tap0"), path.is_none(), "{path:?}: the wrong helper:\n{text}");
        assert!(
            text.contains("prohibit 169.254.0.0/16"),
            "{:?}: no prohibit route for the metadata range:\n{text}",
            k.mode
        );
        assert!(text.contains("V6-BLOCKED"), "{:?}: no prohibit route for fd00:ec2::/64:\n{text}", k.mode);
        assert!(!text.contains("METADATA-REACHED") && !text.contains("LINK-LOCAL-REACHED"), "{:?}:\n{text}", k.mode);
        assert!(!text.contains("RAW-FRAMES-SENT"), "{:?}: a packet socket reached the helper:\n{text}", k.mode);
        assert!(text.contains("Permission denied"), "{:?}: the metadata address was not refused:\n{text}", k.mode);
        let secs: u64 =
            text.split("METADATA-SECONDS ").nth(1).and_then(|s| s.split_whitespace().next()?.parse().ok()).unwrap();
        assert!(secs <= 1, "{:?}: refusing took {secs}s, as if the helper had the connection:\n{text}", k.mode);
        assert!(text.contains("10.0.2.3 dev "), "{:?}: the DNS forwarder is not routed:\n{text}", k.mode);
        assert!(
            text.contains("Server:") && text.contains("10.0.2.3"),
            "{:?}: no answer from the forwarder:\n{text}",
            k.mode
        );
        k.assert_clean();
    }
}

#[test]
fn network_none_has_only_lo_and_no_route() {
    let host = host_address();
    for k in Kiln::each_mode() {
        let public = Server::start(host, "PUBLIC-SERVICE", || {});
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 RUN --network=none ip -o link; ip route; \
                 test \"$(ip -o link | grep -cv ': lo:')\" = 0; test -z \"$(ip route)\"; \
                 ip -o link | grep -q 'lo:.*UP'; \
                 ! timeout 4 nc -w 2 {host} {pb} </dev/null; echo ONLY-LO\n",
                pb = public.addr.port()
            ),
        );
        let out = k.build(&["--no-cache"]);
        let text = output(&out);
        assert_eq!(out.code, 0, "{:?}:\n{text}", k.mode);
        assert!(text.contains("ONLY-LO"), "{:?}:\n{text}", k.mode);
        assert_eq!(public.hits(), 0, "{:?}: a --network=none step reached the host", k.mode);
        k.assert_clean();
    }
}

#[test]
fn network_host_is_refused_without_the_entitlement() {
    let private = Server::start(loopback(), "LOOPBACK-SERVICE", || {});
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN --network=host timeout 5 nc -w 3 127.0.0.1 {} </dev/null\n",
                private.addr.port()
            ),
        );
        let out = k.build(&["--no-cache"]).failed();
        assert!(out.stderr.contains("--allow network.host"), "{:?}:\n{}", k.mode, out.stderr);
        assert_eq!(private.hits(), 0);
    }
}

/// Through the library (the flag is the CLI's): with the entitlement, the
/// step is on the host's network, loopback included.
#[test]
fn network_host_with_the_entitlement_reaches_the_hosts_loopback() {
    let private = Server::start(loopback(), "LOOPBACK-SERVICE", || {});
    let k = Kiln::empty();
    let store = Store::open(&k.root()).unwrap();
    let tar = std::fs::File::open(busybox_tar()).unwrap();
    kiln::image_io::import_rootfs(&store, std::io::BufReader::new(tar), "busybox", "test").unwrap();
    let mut request = BuildRequest::new(k.ctx());
    request.dockerfile = Dockerfile::Text {
        name: "inline".into(),
        text: format!(
            "FROM busybox\nRUN --network=host timeout 5 nc -w 3 127.0.0.1 {} </dev/null > /got\n",
            private.addr.port()
        ),
    };
    request.tags = vec!["hostnet:v1".into()];
    request.sandbox_exe = Some(KILN.into());
    request.run.allow.network_host = true;
    kiln::build(&store, request).unwrap();
    assert!(private.hits() >= 1);
    assert!(k.cmd(&["run", "hostnet:v1", "cat", "/got"]).ok().stdout.ends_with("\r\n\r\nLOOPBACK-SERVICE"));
}

#[test]
fn without_pasta_or_slirp4netns_the_default_network_is_a_clear_error_and_none_still_runs() {
    let k = Kiln::with_busybox();
    let empty = k.dir.path().join("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let build = |dockerfile: &str| {
        k.write("Dockerfile", dockerfile);
        let ctx = k.ctx();
        let out = k.command().env("PATH", &empty).args(["build", "--no-cache", ctx.to_str().unwrap()]).output();
        let out = out.unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, stderr) = build("FROM busybox\nRUN echo hi\n");
    assert!(!ok && stderr.contains("pasta (Debian package passt) or slirp4netns"), "{stderr}");
    assert!(stderr.contains("Dockerfile:2"), "the error names the step's line:\n{stderr}");
    let (ok, stderr) = build("FROM busybox\nRUN --network=none echo hi\n");
    assert!(ok, "{stderr}");
    // kiln run too: its sandbox, started while the container is made, is
    // ended, and a --rm container is gone.
    let out = k.command().env("PATH", &empty).args(["run", "--rm", "busybox", "true"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("pasta (Debian package passt) or slirp4netns"), "{stderr}");
    assert_eq!(k.cmd(&["ps", "-a", "-q"]).ok().stdout, "");
    k.assert_clean();
}
