//! Registries that fail: a tampered blob, an unreachable host, a manifest of
//! a media type kiln cannot read, a disk that fills during a pull, TLS with
//! htpasswd auth and a wrong password, an offline `FROM busybox` through a
//! mirror.

use std::os::unix::fs::PermissionsExt;

use super::harness::Kiln;
use super::registry::{count, Registry, Session, PASSWORD, USER};

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_named() {
    let r = Registry::start();
    let s = Session::new();
    let a = Kiln::with_busybox();
    let name = format!("{}/t/busybox:1", r.host);
    s.run(&a, &["push", "busybox", &name], None).ok();
    let manifest = super::registry::remote_manifest(&name);
    let digest = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let hex = &digest[7..];
    let data = r.dir.path().join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut bytes = std::fs::read(&data).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();

    let b = Kiln::empty();
    let out = s.run(&b, &["pull", &name], None).failed();
    assert!(out.stderr.contains(&digest[..19]), "{}", out.stderr);
    assert!(!b.root().join(format!("oci/blobs/sha256/{hex}")).exists(), "the tampered blob was stored");
    assert!(b.image_names().is_empty(), "{:?}", b.image_names());
}

#[test]
fn an_unreachable_registry_is_named_with_the_cause() {
    let s = Session::new();
    let b = Kiln::empty();
    let out = s.run(&b, &["pull", "127.0.0.1:1/nothing/here:1"], None).failed();
    assert!(out.stderr.contains("cannot reach the registry 127.0.0.1:1"), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("connection refused"), "{}", out.stderr);
}

#[test]
fn tls_and_htpasswd_login_push_and_pull_and_a_wrong_password_is_not_echoed() {
    let r = Registry::tls_htpasswd();
    let config = format!("[registries.\"{}\"]\nca = \"{}\"\n", r.host, r.ca().display());
    let s = Session::with_config(&config);
    let a = Kiln::with_busybox();
    let name = format!("{}/secure/busybox:1", r.host);

    let out = s.run(&a, &["push", "busybox", &name], None).failed();
    assert!(out.stderr.contains(&format!("log in to {} with kiln login", r.host)), "{}", out.stderr);

    let wrong = "not-the-Passw0rd-xyz";
    let out = s.run(&a, &["login", "-u", USER, "--password-stdin", &r.host], Some(&format!("{wrong}\n"))).failed();
    assert!(out.stderr.contains("log in to"), "{}", out.stderr);
    assert!(!out.stderr.contains(wrong) && !out.stdout.contains(wrong), "{}{}", out.stdout, out.stderr);
    assert!(!s.docker_config().exists(), "a refused login keeps nothing");

    let out = s.run(&a, &["login", "-u", USER, "--password-stdin", &r.host], Some(&format!("{PASSWORD}\n"))).ok();
    assert!(!out.stderr.contains(PASSWORD) && !out.stdout.contains(PASSWORD));
    let mode = std::fs::metadata(s.docker_config()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let out = s.run(&a, &["push", "busybox", &name], None).ok();
    assert!(!out.stderr.contains(PASSWORD));
    let b = Kiln::empty();
    s.run(&b, &["pull", &name], None).ok();
    // The same image (config); the manifest differs, its layers gzipped on the way.
    assert_eq!(b.inspect(&name)["Id"], a.inspect("busybox")["Id"]);
    for k in [&a, &b] {
        let leaked = std::process::Command::new("grep").args(["-r", "-l", PASSWORD]).arg(k.root()).output().unwrap();
        assert!(leaked.stdout.is_empty(), "the password is in the store: {}", String::from_utf8_lossy(&leaked.stdout));
    }

    s.run(&a, &["logout", &r.host], None).ok();
    s.run(&Kiln::empty(), &["pull", &name], None).failed();
}

#[test]
fn from_busybox_builds_offline_through_a_configured_mirror() {
    let r = Registry::start();
    let a = Kiln::with_busybox();
    Session::new().run(&a, &["push", "busybox", &format!("{}/library/busybox:latest", r.host)], None).ok();
    let s = Session::with_config(&format!("[registries.\"docker.io\"]\nmirrors = [\"http://{}\"]\n", r.host));
    let c = Kiln::empty();
    c.write("Dockerfile", "FROM busybox\nRUN echo mirrored > /m\n");
    s.run(&c, &["build", "-t", "m", c.ctx().to_str().unwrap()], None).ok();
    assert_eq!(s.run(&c, &["run", "m", "cat", "/m"], None).ok().stdout, "mirrored\n");
    assert_eq!(count(&r, "GET", "/v2/library/busybox/manifests/latest", 200), 1, "{:?}", r.requests());
    assert!(c.image_names().contains(&"busybox:latest".to_owned()), "{:?}", c.image_names());
}

#[test]
fn a_tls_registry_whose_ca_is_not_trusted_says_so() {
    // On loopback kiln may fall back to plain http, but not for a registry
    // that speaks only TLS: the certificate is the problem worth naming.
    let r = Registry::tls_htpasswd();
    let s = Session::new();
    let k = Kiln::empty();
    let out = s.run(&k, &["pull", &format!("{}/any/image:1", r.host)], None).failed();
    let text = out.stderr.to_lowercase();
    assert!(text.contains("certificate"), "{}", out.stderr);
    assert!(!text.contains("http request to an https server"), "{}", out.stderr);
}

/// A stand-in registry for what the real one refuses to hold: distribution
/// 2.8 takes no manifest of a type it does not know, and no schema 1
/// manifest, which old registries still serve. It answers every request on
/// its own thread with `manifest` (and its `Content-Type`) for manifests,
/// `{}` for the rest.
fn serve_manifests(manifests: Vec<(&'static str, &'static str, String)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let found = manifests.iter().find(|(repo, _, _)| path.starts_with(&format!("/v2/{repo}/manifests/")));
            let (kind, body) = found.map_or(("application/json", "{}".to_owned()), |(_, k, b)| (*k, b.clone()));
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = (&conn).write_all(answer.as_bytes());
        }
    });
    host
}

#[test]
fn a_manifest_of_an_unknown_media_type_is_named_and_nothing_is_kept() {
    let odd = "application/vnd.example.thing.v1+json";
    let schema1 = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    let host = serve_manifests(vec![
        ("odd/thing", odd, format!(r#"{{"schemaVersion": 2, "mediaType": "{odd}"}}"#)),
        ("old/schema1", schema1, r#"{"schemaVersion": 1, "name": "old/schema1", "fsLayers": []}"#.to_owned()),
    ]);
    let s = Session::new();
    let b = Kiln::empty();
    for (repo, media) in [("odd/thing", odd), ("old/schema1", schema1)] {
        let out = s.run(&b, &["pull", &format!("{host}/{repo}:1")], None).failed();
        assert!(out.stderr.contains(&format!("media type \"{media}\"")), "{}", out.stderr);
    }
    assert!(b.image_names().is_empty(), "{:?}", b.image_names());
    let blobs = b.root().join("oci/blobs/sha256");
    assert!(std::fs::read_dir(&blobs).map_or(true, |d| d.count() == 0), "blobs were kept");
}

#[test]
fn a_blob_whose_size_the_manifest_misstates_is_refused_and_not_kept() {
    // The config blob is `{}` (2 bytes, its digest right), the manifest says
    // 3 bytes: the store's ingester checks the size as well as the digest.
    let config = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let manifest = format!(
        r#"{{"schemaVersion": 2, "mediaType": "{oci}", "config": {{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "{config}", "size": 3}}, "layers": []}}"#
    );
    let host = serve_manifests(vec![("odd/size", oci, manifest)]);
    let b = Kiln::empty();
    let out = Session::new().run(&b, &["pull", &format!("{host}/odd/size:1")], None).failed();
    assert!(out.stderr.contains("is 2 bytes long, not the 3 its descriptor says"), "{}", out.stderr);
    assert!(b.image_names().is_empty(), "{:?}", b.image_names());
    assert!(!b.root().join(format!("oci/blobs/sha256/{}", &config[7..])).exists(), "the blob was kept");
}

#[test]
fn a_disk_that_fills_during_a_pull_names_the_write_and_keeps_nothing() {
    // A 4 MB tmpfs as the store, in a mount namespace of the test's own (so
    // nothing leaks), and an image whose 20 MB random layer cannot fit. What
    // the store holds afterwards is listed before the namespace (and the
    // tmpfs) goes. Needs root to mount, as CI has.
    let r = Registry::start();
    let s = Session::new();
    let name = format!("{}/big/image:1", r.host);
    let a = super::registry_upload::big_image(&name);
    s.run(&a, &["push", &name], None).ok();
    let layer = super::registry::remote_manifest(&name)["layers"][1]["digest"].as_str().unwrap().to_owned();

    let b = Kiln::empty();
    std::fs::create_dir_all(b.root()).unwrap();
    let out = std::process::Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=4m tmpfs "$ROOT" && "$KILN" --root "$ROOT" pull "$NAME"; code=$?;
               echo "--- images"; "$KILN" --root "$ROOT" images; echo "--- files"; find "$ROOT" -type f; exit $code"#,
        ])
        .env("ROOT", b.root())
        .env("KILN", super::harness::KILN)
        .env("NAME", &name)
        .env("DOCKER_CONFIG", s.dir.path().join("docker"))
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the image fit:\n{stdout}\n{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains(&format!("writing blob {}", &layer[..19])), "the write is not named:\n{stderr}");
    let (images, files) = stdout.split_once("--- files").unwrap();
    assert!(!images.contains("big/image"), "the image was named:\n{stdout}");
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
    assert!(!files.contains(&layer[7..]), "the layer's blob was kept:\n{files}");
    let partial: Vec<&str> = files.lines().filter(|l| l.contains("ingest") || l.contains(".tmp")).collect();
    assert!(partial.is_empty(), "a partial blob was left: {partial:?}\n{files}");
    // Which small blobs (config, manifest) got in before the layer failed
    // depends on the parallel downloads; the index is always there.
    assert!(files.contains("oci/index.json"), "the listing is empty, so it proves nothing:\n{files}");
}
