//! ADD of URLs and git repositories, built by the real binary from servers on
//! 127.0.0.1: files with Last-Modified and ETags, and a git repository over
//! git's dumb HTTP protocol.

use super::harness::{Kiln, Mode, Run};

#[path = "../../src/fetch/test_server.rs"]
mod test_server;

use test_server::{git, served_repo, Server};

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `stat` of `paths` in `image`: mode, owner, mtime, name.
fn stat(k: &Kiln, image: &str, paths: &[&str]) -> String {
    let mut args = vec!["run", image, "stat", "-c", "%a %u:%g %Y %n"];
    args.extend_from_slice(paths);
    k.cmd(&args).ok().stdout
}

#[test]
fn add_url_names_modes_mtimes_and_caches_like_buildkit() {
    for k in [Kiln::with_busybox(), Kiln::in_mode(Mode::Rootless)] {
        let server = Server::start();
        server.reply("/dist/tool-1.0.txt", 200, &[("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")], b"tool\n");
        server.reply("/raw", 200, &[], b"raw\n");
        let tool = server.url("/dist/tool-1.0.txt");
        let raw = server.url("/raw");
        k.write(
            "Dockerfile",
            &format!(
                "FROM busybox\nADD {tool} /opt/\nADD --chown=1:2 --chmod=640 {raw} /etc/raw.conf\n\
                 ADD {tool} {raw} /both/\n"
            ),
        );
        k.build(&["-t", "remote:v1"]).ok();
        assert_eq!(
            stat(&k, "remote:v1", &["/opt/tool-1.0.txt", "/etc/raw.conf", "/both/raw"]),
            "600 0:0 784111777 /opt/tool-1.0.txt\n640 1:2 0 /etc/raw.conf\n600 0:0 0 /both/raw\n",
            "{:?}",
            k.mode
        );
        assert_eq!(
            k.cmd(&["run", "remote:v1", "cat", "/opt/tool-1.0.txt", "/both/tool-1.0.txt"]).ok().stdout,
            "tool\ntool\n"
        );

        // Unchanged content: every step cached. Changed content: a new layer.
        let out = k.build(&["-t", "remote:v2"]).ok();
        let cached = out.stdout.matches("CACHED").count() + out.stderr.matches("CACHED").count();
        assert_eq!(cached, 4, "FROM and the three ADDs: {}", out.stderr);
        server.reply("/raw", 200, &[], b"raw, changed\n");
        k.build(&["-t", "remote:v3"]).ok();
        assert_eq!(k.cmd(&["run", "remote:v3", "cat", "/etc/raw.conf"]).ok().stdout, "raw, changed\n");
        k.assert_clean();
    }
}

#[test]
fn add_url_checksum_is_checked_and_spares_the_request_once_cached() {
    let k = Kiln::with_busybox();
    let server = Server::start();
    server.reply("/pkg.tgz", 200, &[], b"the package");
    let url = server.url("/pkg.tgz");
    let good = sha256(b"the package");
    k.write("Dockerfile", &format!("FROM busybox\nADD --checksum={good} {url} /pkg/\n"));
    k.build(&["-t", "pinned:v1"]).ok();
    let hits = server.hits("/pkg.tgz");
    k.build(&["-t", "pinned:v2"]).ok();
    assert_eq!(server.hits("/pkg.tgz"), hits, "a pinned URL whose step is cached is not fetched again");

    let bad = sha256(b"another package");
    k.write("Dockerfile", &format!("FROM busybox\nADD --checksum={bad} {url} /pkg/\n"));
    let out = k.build(&["-t", "pinned:bad"]).failed();
    for part in [&url, &bad, &good] {
        assert!(out.stderr.contains(part.as_str()), "{part} not in: {}", out.stderr);
    }
    assert!(out.stderr.contains("checksum mismatch"), "{}", out.stderr);
    assert!(!k.image_names().iter().any(|n| n.contains("pinned:bad")));
    k.assert_clean();
}

#[test]
fn add_url_that_fails_names_the_url_and_status() {
    let k = Kiln::with_busybox();
    let server = Server::start();
    let url = server.url("/no/such/file.txt");
    k.write("Dockerfile", &format!("FROM busybox\nADD {url} /x\n"));
    let out = k.build(&["-t", "missing:v1"]).failed();
    assert!(out.stderr.contains(&url) && out.stderr.contains("404 Not Found"), "{}", out.stderr);
    k.assert_clean();
}

#[test]
fn add_git_checks_out_refs_and_subdirs_at_the_commit_time() {
    for k in [Kiln::with_busybox(), Kiln::in_mode(Mode::Rootless)] {
        add_git_in(&k);
    }
}

#[test]
fn add_git_files_get_the_checkout_time_unless_source_date_epoch_is_set() {
    let k = Kiln::with_busybox();
    let repos = tempfile::tempdir().unwrap();
    let (_server, url, ..) = served_repo(repos.path());
    k.write("Dockerfile", &format!("FROM busybox\nADD {url} /src\n"));
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    k.build(&["-t", "git:now"]).ok();
    let out = k.cmd(&["run", "git:now", "stat", "-c", "%Y", "/src/a.txt"]).ok().stdout;
    assert!(out.trim().parse::<u64>().unwrap() >= before, "{out} is older than the build");
}

/// `kiln build -t tag` with `SOURCE_DATE_EPOCH` set: git files get their commit's time.
fn build_reproducibly(k: &Kiln, tag: &str) -> Run {
    let ctx = k.ctx();
    let mut cmd = k.command();
    cmd.env("SOURCE_DATE_EPOCH", "1600000000").args(["build", "-t", tag]).arg(ctx);
    let out = cmd.output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Run { code: out.status.code().unwrap_or(-1), stdout: text(&out.stdout), stderr: text(&out.stderr) }
}

fn add_git_in(k: &Kiln) {
    let repos = tempfile::tempdir().unwrap();
    let (_server, url, first, _second) = served_repo(repos.path());
    k.write(
        "Dockerfile",
        &format!(
            "FROM busybox\nADD {url}#v1 /v1\nADD {url}#main:sub /tools/\nADD --keep-git-dir=true {url} /full\n\
             ADD --checksum={first} {url}#v1 /pinned\n"
        ),
    );
    build_reproducibly(k, "git:v1").ok();
    let out = k.cmd(&["run", "git:v1", "cat", "/v1/a.txt", "/full/a.txt", "/pinned/a.txt"]).ok().stdout;
    assert_eq!(out, "v1\nv2\nv1\n");
    assert_eq!(
        stat(k, "git:v1", &["/v1/a.txt", "/v1/sub", "/v1/sub/run.sh", "/tools/run.sh"]),
        "644 0:0 1600000000 /v1/a.txt\n755 0:0 1600000000 /v1/sub\n755 0:0 1600000000 /v1/sub/run.sh\n\
         755 0:0 1600000000 /tools/run.sh\n"
    );
    assert_eq!(k.cmd(&["run", "git:v1", "readlink", "/v1/link"]).ok().stdout, "a.txt\n");
    let git_dirs = k.cmd(&["run", "git:v1", "sh", "-c", "ls -d /v1/.git /tools/.git /full/.git 2>/dev/null"]);
    assert_eq!(git_dirs.stdout, "/full/.git\n");

    // The branch moves: the steps that follow it run again, the pinned ones stay cached.
    let work = repos.path().join("work");
    std::fs::write(work.join("sub/run.sh"), "#!/bin/sh\necho new\n").unwrap();
    git(&work, &["commit", "-q", "-am", "three"]);
    let bare = repos.path().join("repo.git");
    git(&bare, &["fetch", "-q", work.to_str().unwrap(), "main:main"]);
    git(&bare, &["update-server-info"]);
    build_reproducibly(k, "git:v2").ok();
    assert_eq!(k.cmd(&["run", "git:v2", "cat", "/tools/run.sh"]).ok().stdout, "#!/bin/sh\necho new\n");
    k.assert_clean();
}

#[test]
fn add_git_with_a_wrong_commit_or_ref_fails_clearly() {
    let k = Kiln::with_busybox();
    let repos = tempfile::tempdir().unwrap();
    let (_server, url, first, second) = served_repo(repos.path());
    k.write("Dockerfile", &format!("FROM busybox\nADD --checksum={second} {url}#v1 /src\n"));
    let out = k.build(&["-t", "git:bad"]).failed();
    assert!(out.stderr.contains(&first) && out.stderr.contains(&second), "{}", out.stderr);
    k.write("Dockerfile", &format!("FROM busybox\nADD {url}#no-such-branch /src\n"));
    let out = k.build(&["-t", "git:bad"]).failed();
    assert!(out.stderr.contains("no branch or tag no-such-branch"), "{}", out.stderr);
    k.assert_clean();
}
