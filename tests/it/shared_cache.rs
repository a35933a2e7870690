//! `--cache-to` / `--cache-from`: a build exports its cache, and the same
//! build on another machine (a fresh, empty store, another context path)
//! hits every step without running a single RUN.

use super::harness::{Kiln, Mode};
use super::registry::{count, Registry, Session};

/// (CACHED lines, DONE lines) of a build's progress.
fn steps(stderr: &str) -> (usize, usize) {
    let cached = stderr.lines().filter(|l| l.ends_with(" CACHED")).count();
    let done = stderr.lines().filter(|l| l.starts_with('#') && l.contains(" DONE ")).count();
    (cached, done)
}

/// A store holding busybox imported at a fixed time: the same image, the
/// same digest, in every store (an import made at another second is another
/// image, and so another cache key, as it should be).
fn with_pinned_busybox(mode: Mode) -> Kiln {
    let k = Kiln::in_mode(mode);
    let tar = k.dir.path().join("busybox.tar");
    let out = k.command().env("SOURCE_DATE_EPOCH", "0").args(["import", tar.to_str().unwrap(), "busybox"]).output();
    assert!(out.unwrap().status.success());
    k
}

/// A build whose RUN steps leave the time they ran: run again, they would
/// make another image.
fn write_build(k: &Kiln) {
    k.write("a.txt", "a\n");
    k.write("Dockerfile", "FROM busybox\nCOPY a.txt /a\nRUN date +%s%N > /ran-1\nRUN cat /a /ran-1 > /ran-2\n");
    k.give(&k.ctx());
}

#[test]
fn a_local_cache_folder_gives_a_fresh_store_every_step_cached() {
    let a = with_pinned_busybox(Mode::Root);
    write_build(&a);
    let cache = a.dir.path().join("cache");
    let first = a.build(&["-t", "app", "--cache-to", &format!("type=local,dest={}", cache.display())]).ok();
    assert_eq!(steps(&first.stderr), (0, 4), "{}", first.stderr);
    assert!(cache.join("index.json").is_file() && cache.join("oci-layout").is_file());

    let b = with_pinned_busybox(Mode::Root);
    write_build(&b);
    let second = b.build(&["-t", "app", "--cache-from", &format!("type=local,src={}", cache.display())]).ok();
    assert_eq!(steps(&second.stderr), (4, 0), "{}", second.stderr);
    assert_eq!(second.stdout, first.stdout, "the same image ID");
    assert_eq!(
        b.cmd(&["run", "app", "cat", "/ran-2"]).ok().stdout,
        a.cmd(&["run", "app", "cat", "/ran-2"]).ok().stdout
    );

    // Its records joined the store's own cache: the next build needs no import.
    let third = b.build(&["-t", "app"]).ok();
    assert_eq!(steps(&third.stderr), (4, 0), "{}", third.stderr);
}

#[test]
fn a_missing_or_broken_cache_is_a_warning_not_a_failure() {
    let k = with_pinned_busybox(Mode::Root);
    write_build(&k);
    let missing = k.dir.path().join("none");
    let out = k.build(&["--cache-from", &format!("type=local,src={}", missing.display())]).ok();
    assert_eq!(steps(&out.stderr), (0, 4), "{}", out.stderr);
    let broken = k.dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("index.json"), "{").unwrap();
    let out = k.build(&["--cache-from", &format!("type=local,src={}", broken.display())]).ok();
    assert!(out.stderr.contains("warning: cache") && out.stderr.contains("is not used"), "{}", out.stderr);
    let bad = k.build(&["--cache-to", "type=s3,bucket=x"]).failed();
    assert!(bad.stderr.contains("invalid cache spec"), "{}", bad.stderr);
}

#[test]
fn a_registry_cache_gives_an_empty_store_every_step_cached_min_and_max() {
    let r = Registry::start();
    let s = Session::new();
    let a = Kiln::with_busybox();
    let base = format!("{}/base/busybox:1", r.host);
    s.run(&a, &["push", "busybox", &base], None).ok();
    // Two stages: mode=min exports the final stage's steps, mode=max every stage's.
    let dockerfile = format!(
        "FROM {base} AS tool\nRUN date +%s%N > /made\nFROM {base}\nCOPY a.txt /a\nCOPY --from=tool /made /made\nRUN cat /a /made > /out\n"
    );
    a.write("a.txt", "a\n").write("Dockerfile", &dockerfile);
    let (min, max) = (format!("{}/cache/app:min", r.host), format!("{}/cache/app:max", r.host));
    let to_min = format!("type=registry,ref={min}");
    let to_max = format!("type=registry,ref={max},mode=max");
    let first =
        s.run(&a, &["build", "--cache-to", &to_min, "--cache-to", &to_max, a.ctx().to_str().unwrap()], None).ok();
    let id = first.stdout.trim();
    assert!(
        count(&r, "PUT", "/manifests/min", 201) == 1 && count(&r, "PUT", "/manifests/max", 201) == 1,
        "{:?}",
        r.requests()
    );

    for (cache, want) in [(&max, (5, 0)), (&min, (4, 1))] {
        let b = Kiln::empty();
        b.write("a.txt", "a\n").write("Dockerfile", &dockerfile);
        let from = format!("type=registry,ref={cache}");
        let out = s.run(&b, &["build", "--cache-from", &from, b.ctx().to_str().unwrap()], None).ok();
        // min lacks the other stage's RUN, which runs; what follows it still
        // hits, since keys come from definitions, not from results.
        assert_eq!(steps(&out.stderr), want, "{cache}\n{}", out.stderr);
        assert_eq!(out.stdout.trim(), id, "the same image ID");
    }
}

/// The kiln lines of docs/ci.md (the login through a pipe, the build), each
/// once, as written.
fn doc_lines() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ci.md")).unwrap();
    let mut lines: Vec<String> = Vec::new();
    for line in doc.lines() {
        let line = line.trim().trim_start_matches("- ");
        if (line.starts_with("kiln ") || line.contains("| kiln ")) && !lines.iter().any(|l| l == line) {
            lines.push(line.to_owned());
        }
    }
    // As the job runs them: the login first.
    lines.sort_by_key(|l| !l.contains("kiln login"));
    lines
}

/// Run one line of the doc with `sh`, as the rootless user, in `k`'s
/// context, with the job's variables (GitLab's, and what they make of
/// IMAGE and CACHE) pointing at the test registry.
fn run_doc_line(k: &Kiln, line: &str, vars: &[(&str, String)]) -> super::harness::Run {
    use super::harness::{shared_kiln, ROOTLESS_USER};
    let bin = std::path::Path::new(shared_kiln()).parent().unwrap();
    let mut cmd = std::process::Command::new("runuser");
    cmd.args(["-u", ROOTLESS_USER, "--", "env", &format!("HOME=/home/{ROOTLESS_USER}"), "XDG_DATA_HOME="]);
    cmd.arg(format!("PATH={}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display()));
    cmd.arg(format!("KILN_ROOT={}", k.root().display()));
    for (name, value) in vars {
        cmd.arg(format!("{name}={value}"));
    }
    let out = cmd.args(["sh", "-ec", line]).current_dir(k.ctx()).output().unwrap();
    super::harness::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_ci_doc_commands_run_rootless_against_a_registry_with_login_and_a_shared_cache() {
    use super::registry::{PASSWORD, USER};
    let lines = doc_lines();
    assert_eq!(lines.len(), 2, "docs/ci.md's kiln lines: a login and a build: {lines:?}");
    let r = Registry::tls_htpasswd();
    // The base image, pushed by someone else (root, its own session).
    let admin = Session::with_config(&format!("[registries.\"{}\"]\nca = \"{}\"\n", r.host, r.ca().display()));
    let a = Kiln::with_busybox();
    admin.run(&a, &["login", "-u", USER, "--password-stdin", &r.host], Some(PASSWORD)).ok();
    let base = format!("{}/base/busybox:1", r.host);
    admin.run(&a, &["push", "busybox", &base], None).ok();

    let dockerfile = format!("FROM {base}\nCOPY a.txt /a\nRUN date +%s%N > /ran\nRUN cat /a /ran > /out\n");
    let mut runs = Vec::new();
    for _ in 0..2 {
        // Each job: a fresh runner, an empty store, a checkout of its own.
        let [_, k] = Kiln::each_mode_empty();
        k.write("a.txt", "a\n").write("Dockerfile", &dockerfile);
        let ca = k.dir.path().join("ca.crt");
        std::fs::copy(r.ca(), &ca).unwrap();
        std::fs::write(
            k.dir.path().join("config.toml"),
            format!("[registries.\"{}\"]\nca = \"{}\"\n", r.host, ca.display()),
        )
        .unwrap();
        k.give(k.dir.path());
        let vars = [
            ("CI_REGISTRY", r.host.clone()),
            ("CI_REGISTRY_USER", USER.to_owned()),
            ("CI_REGISTRY_PASSWORD", PASSWORD.to_owned()),
            ("IMAGE", format!("{}/team/app:abc1234", r.host)),
            ("CACHE", format!("{}/team/app:buildcache", r.host)),
            ("DOCKER_CONFIG", k.dir.path().join("docker").display().to_string()),
            ("KILN_CONFIG", k.dir.path().join("config.toml").display().to_string()),
        ];
        let outs: Vec<_> = lines.iter().map(|l| run_doc_line(&k, l, &vars)).collect();
        for (line, out) in lines.iter().zip(&outs) {
            assert_eq!(out.code, 0, "{line}\n{}", out.stderr);
        }
        let build = &outs[1];
        let metadata: serde_json::Value =
            serde_json::from_slice(&std::fs::read(k.ctx().join("build.json")).unwrap()).unwrap();
        runs.push((steps(&build.stderr), build.stdout.clone(), metadata, build.stderr.clone()));
    }
    assert_eq!(runs[0].0, (0, 4), "{}", runs[0].3);
    assert_eq!(runs[1].0, (4, 0), "the second runner runs nothing:\n{}", runs[1].3);
    assert_eq!(runs[0].1, runs[1].1, "the same image ID");
    // The same manifest pushed: the first runner's plain layers gzipped on the
    // way out are the blobs the second one took from the cache. (The local
    // manifests differ: one store holds plain tars, the other the cache's gzip.)
    assert_eq!(runs[0].2["image.pushed"], runs[1].2["image.pushed"], "the same pushed digest");
    assert!(!runs[0].3.contains("warning"), "no cache yet is no reason to warn:\n{}", runs[0].3);
}
