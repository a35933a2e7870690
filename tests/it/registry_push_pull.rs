//! Push and pull against a real registry: a round trip with equal digests,
//! blobs the registry has skipped, blobs of another repository mounted, a
//! second pull that moves nothing, `kiln run` and `FROM` pulling what the
//! store lacks.

use super::harness::{Kiln, Mode};
use super::registry::{count, Registry, Session};

#[test]
fn a_pushed_image_pulls_into_an_empty_store_with_the_same_digest_and_runs() {
    let r = Registry::start();
    let s = Session::new();
    let a = Kiln::with_busybox();
    let name = format!("{}/team/app:v1", r.host);
    a.write("Dockerfile", "FROM busybox\nRUN echo hello > /greeting\nCMD [\"cat\", \"/greeting\"]\n");
    a.build(&["-t", &name]).ok();
    let pushed = s.run(&a, &["push", &name], None).ok();
    let local = a.inspect(&name)["Digest"].as_str().unwrap().to_owned();
    let (_, digest) = pushed.stdout.trim().rsplit_once('@').unwrap();
    assert_eq!(pushed.stdout.trim(), format!("{name}@{digest}"));
    // The store keeps plain tars; they leave gzipped, so the manifest is another.
    assert_ne!(digest, local);
    assert_eq!(layer_types(&name), ["application/vnd.oci.image.layer.v1.tar+gzip"; 2]);

    let b = Kiln::empty();
    let pulled = s.run(&b, &["pull", &name], None).ok();
    assert_eq!(pulled.stdout.trim(), name);
    assert_eq!(b.inspect(&name)["Digest"], digest, "the pushed manifest, as sent");
    assert_eq!(b.inspect(&name)["Id"], a.inspect(&name)["Id"]);
    assert_eq!(s.run(&b, &["run", &name], None).ok().stdout, "hello\n");

    // A second pull moves no blob.
    let blob_gets = count(&r, "GET", "/blobs/sha256:", 200);
    let again = s.run(&b, &["pull", &name], None).ok();
    assert_eq!(count(&r, "GET", "/blobs/sha256:", 200), blob_gets, "{}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);

    // A second push compresses nothing (the gzip of each layer is recorded
    // beside its diffID) and uploads nothing: every blob is there (HEAD).
    let records = compressed_records(&a);
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|(p, _)| p.extension().unwrap() == "gzip"));
    let uploads = count(&r, "POST", "/blobs/uploads/", 202);
    let again = s.run(&a, &["push", &name], None).ok();
    assert_eq!(again.stdout, pushed.stdout, "the same manifest");
    assert_eq!(count(&r, "POST", "/blobs/uploads/", 202), uploads, "{:?}", r.requests());
    assert_eq!(compressed_records(&a), records, "a layer was compressed again");

    // Another repository of the same registry: mounted, not uploaded.
    let other = format!("{}/elsewhere/app:v2", r.host);
    let out = s.run(&a, &["push", &name, &other], None).ok();
    assert!(out.stderr.contains("mounted from team/app"), "{}", out.stderr);
    assert_eq!(count(&r, "POST", "mount=sha256", 201), 2 + 1, "config and both layers:\n{:?}", r.requests());
    assert_eq!(count(&r, "POST", "/blobs/uploads/", 202), uploads, "nothing uploaded");
    assert_eq!(s.run(&b, &["pull", &other], None).ok().stdout.trim(), other);
}

/// The layer media types of the manifest the registry holds for `name`.
fn layer_types(name: &str) -> Vec<String> {
    super::registry::remote_manifest(name)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_owned())
        .collect()
}

/// The records of compressed layers in `k`'s store, with their mtimes.
fn compressed_records(k: &Kiln) -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
    let mut records: Vec<_> = std::fs::read_dir(k.root().join("compressed"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, mtime)
        })
        .collect();
    records.sort();
    records
}

#[test]
fn run_and_from_pull_what_the_store_lacks_unless_told_not_to() {
    let r = Registry::start();
    let s = Session::new();
    let a = Kiln::with_busybox();
    let base = format!("{}/base/busybox:1", r.host);
    s.run(&a, &["push", "busybox", &base], None).ok();

    let b = Kiln::empty();
    assert_eq!(s.run(&b, &["run", &base, "echo", "ran"], None).ok().stdout, "ran\n");

    let c = Kiln::empty();
    c.write("Dockerfile", &format!("FROM {base}\nRUN echo built > /b\n"));
    let out = s.run(&c, &["build", "--pull=never", "-t", "x", c.ctx().to_str().unwrap()], None).failed();
    assert!(out.stderr.contains(&base), "{}", out.stderr);
    s.run(&c, &["build", "-t", "x", c.ctx().to_str().unwrap()], None).ok();
    assert_eq!(s.run(&c, &["run", "x", "cat", "/b"], None).ok().stdout, "built\n");
    // --pull=always asks the registry again (for the manifest; blobs are there).
    let manifests = count(&r, "GET", "/base/busybox/manifests/1", 200);
    s.run(&c, &["build", "--pull=always", "-t", "x", c.ctx().to_str().unwrap()], None).ok();
    assert_eq!(count(&r, "GET", "/base/busybox/manifests/1", 200), manifests + 1);
}

#[test]
fn build_push_names_then_pushes_and_search_lists_the_catalog() {
    let r = Registry::start();
    let s = Session::new();
    let a = Kiln::with_busybox();
    let name = format!("{}/ci/app:v3", r.host);
    a.write("Dockerfile", "FROM busybox\nRUN echo x > /x\n");
    let meta = a.root().join("meta.json");
    let ctx = a.ctx();
    let args = ["build", "-t", &name, "--push", "--metadata-file", meta.to_str().unwrap(), ctx.to_str().unwrap()];
    let out = s.run(&a, &args, None).ok();
    assert!(out.stdout.contains(&format!("{name}@sha256:")), "{}", out.stdout);
    assert_eq!(count(&r, "PUT", "/ci/app/manifests/v3", 201), 1);
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let (_, digest) = out.stdout.trim().rsplit_once('@').unwrap();
    assert_eq!(meta["image.name"], name.as_str());
    assert_eq!(meta["image.pushed"], serde_json::json!([format!("{name}@{digest}")]), "{meta}");

    let out = s.run(&a, &["search", "app", "--registry", &r.host, "--tags"], None).ok();
    assert_eq!(out.stdout, format!("{}/ci/app\tv3\n", r.host));
    let none = s.run(&a, &["search", "nothing-like-it", "--registry", &r.host], None).ok();
    assert_eq!(none.stdout, "");
}

#[test]
fn a_rootless_kiln_pushes_and_pulls_the_same_image() {
    let r = Registry::start();
    let s = Session::new();
    let a = Kiln::in_mode(Mode::Rootless);
    a.give(s.dir.path());
    let name = format!("{}/rootless/app:v1", r.host);
    a.write("Dockerfile", "FROM busybox\nRUN id -u > /uid\nCMD [\"cat\", \"/uid\"]\n");
    a.build(&["-t", &name]).ok();
    s.run(&a, &["push", &name], None).ok();
    let b = Kiln::in_mode(Mode::Rootless);
    s.run(&b, &["pull", &name], None).ok();
    assert_eq!(b.inspect(&name)["Id"], a.inspect(&name)["Id"]);
    assert_eq!(s.run(&b, &["run", &name], None).ok().stdout, "0\n");
}

#[test]
fn push_compression_zstd_sends_zstd_layers_once_compressed_and_they_pull_back_and_run() {
    let r = Registry::start();
    let s = Session::new();
    let a = Kiln::with_busybox();
    let name = format!("{}/z/app:1", r.host);
    a.write("Dockerfile", "FROM busybox\nRUN echo zstd > /z\nCMD [\"cat\", \"/z\"]\n");
    a.build(&["-t", &name]).ok();
    let out = s.run(&a, &["push", "--compression", "zstd", &name], None).ok();
    let local = a.inspect(&name)["Digest"].as_str().unwrap().to_owned();
    let pushed = out.stdout.trim().rsplit_once('@').unwrap().1.to_owned();
    assert_ne!(pushed, local, "the layers changed, so the manifest did");

    assert_eq!(layer_types(&name), ["application/vnd.oci.image.layer.v1.tar+zstd"; 2]);

    let b = Kiln::empty();
    s.run(&b, &["pull", &name], None).ok();
    assert_eq!(b.inspect(&name)["Digest"], pushed.as_str());
    assert_eq!(b.inspect(&name)["Id"], a.inspect(&name)["Id"], "the same config: diffIDs do not change");
    assert_eq!(s.run(&b, &["run", &name], None).ok().stdout, "zstd\n");
    // Built upon, the pulled layers keep their zstd type, the new one is a plain tar.
    b.write("Dockerfile", &format!("FROM {name}\nRUN echo more > /m\n"));
    s.run(&b, &["build", "-t", "on-zstd", b.ctx().to_str().unwrap()], None).ok();
    let on_zstd = b.inspect("on-zstd");
    let types: Vec<&str> =
        on_zstd["Manifest"]["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
    let (zstd, tar) = ("application/vnd.oci.image.layer.v1.tar+zstd", "application/vnd.oci.image.layer.v1.tar");
    assert_eq!(types, [zstd, zstd, tar]);
    assert_eq!(s.run(&b, &["run", "on-zstd", "cat", "/z", "/m"], None).ok().stdout, "zstd\nmore\n");

    // Once compressed, remembered beside each diffID: a second push
    // compresses nothing and uploads nothing.
    let records = compressed_records(&a);
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|(p, _)| p.extension().unwrap() == "zstd"));
    let (heads, uploads) = (count(&r, "HEAD", "/z/app/blobs/", 200), count(&r, "POST", "/blobs/uploads/", 202));
    let again = s.run(&a, &["push", "--compression", "zstd", &name], None).ok();
    assert_eq!(again.stdout, out.stdout, "the same manifest");
    assert_eq!(count(&r, "HEAD", "/z/app/blobs/", 200), heads + 3, "config and both layers skipped");
    assert_eq!(count(&r, "POST", "/blobs/uploads/", 202), uploads, "nothing uploaded");
    assert_eq!(compressed_records(&a), records, "a layer was compressed again");
}
