//! Engine-level tests of remote ADD: a loopback HTTP server serves files and
//! a git repository (dumb HTTP), and the steps are solved as a build would.

use std::collections::BTreeMap;
use std::sync::Arc;

use kiln_frontend::{CopyFrom, CopyOp, Op};
use kiln_solver::{Graph, Solver};

use super::super::{Engine, FsState};
use crate::fetch::git::Mtime;
use crate::fetch::test_server::{git, served_repo, Server};
use crate::store::Store;

/// One entry of a layer: mode, mtime, uid, content (or link target).
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    mode: u32,
    mtime: u64,
    uid: u64,
    data: String,
}

/// Solve `op` on scratch; git files get their commit's time.
fn solve(store: &Store, op: CopyOp) -> Result<FsState, String> {
    solve_with(store, op, Mtime::Commit)
}

fn solve_with(store: &Store, op: CopyOp, mtime: Mtime) -> Result<FsState, String> {
    let engine = Arc::new(Engine::new(store, None).unwrap().with_git_mtime(mtime));
    let mut graph = Graph::new();
    let base = graph.add(Op::Scratch, vec![], "scratch").unwrap();
    let target = graph.add(Op::Copy(op), vec![base], "ADD").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(Solver::new(engine, 1).solve(&graph, &target)).map_err(|e| format!("{:#}", anyhow::Error::new(e)))
}

fn entries(store: &Store, fs: &FsState) -> BTreeMap<String, Entry> {
    let blob = std::fs::File::open(store.blob_path(&fs.layers.last().unwrap().digest)).unwrap();
    let mut tar = tar::Archive::new(blob);
    let mut out = BTreeMap::new();
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        let mut data = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(link) = e.link_name().unwrap() {
            data = link.display().to_string();
        }
        let path = e.path().unwrap().display().to_string();
        out.insert(
            path,
            Entry { mode: h.mode().unwrap() & 0o7777, mtime: h.mtime().unwrap(), uid: h.uid().unwrap(), data },
        );
    }
    out
}

fn url_op(sources: &[String], dest: &str) -> CopyOp {
    CopyOp { from: CopyFrom::Url, sources: sources.to_vec(), dest: dest.into(), ..Default::default() }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn downloaded_blobs(store: &Store) -> usize {
    std::fs::read_dir(store.root().join("downloads/blobs")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_url_is_a_0600_file_named_after_its_path_with_the_server_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let server = Server::start();
    server.reply("/dl/tool.txt", 200, &[("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")], b"tool\n");
    server.reply("/plain", 200, &[], b"plain\n");
    server.reply("/a%5Bb%5D.txt", 200, &[], b"glob\n");

    let fs = solve(&store, url_op(&[server.url("/dl/tool.txt")], "/opt/")).unwrap();
    let got = entries(&store, &fs);
    assert_eq!(got["opt/tool.txt"], Entry { mode: 0o600, mtime: 784111777, uid: 0, data: "tool\n".into() });

    // No Last-Modified: the epoch. A destination without `/` names the file.
    let mut op = url_op(&[server.url("/plain")], "/renamed");
    op.chmod = Some("755".into());
    let fs = solve(&store, op).unwrap();
    assert_eq!(entries(&store, &fs)["renamed"], Entry { mode: 0o755, mtime: 0, uid: 0, data: "plain\n".into() });

    // Two URLs go into the destination folder, each under its own name.
    let fs = solve(&store, url_op(&[server.url("/dl/tool.txt"), server.url("/plain")], "/both/")).unwrap();
    let names: Vec<_> = entries(&store, &fs).into_keys().collect();
    assert_eq!(names, ["both", "both/plain", "both/tool.txt"]);

    // A name that reads as a wildcard is still the one file.
    let fs = solve(&store, url_op(&[server.url("/a%5Bb%5D.txt")], "/g/")).unwrap();
    assert_eq!(entries(&store, &fs)["g/a[b].txt"].data, "glob\n");
}

#[test]
fn the_cache_key_follows_the_content_and_a_checksum_spares_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let server = Server::start();
    server.reply("/f", 200, &[], b"one");
    let url = server.url("/f");

    let first = solve(&store, url_op(std::slice::from_ref(&url), "/f")).unwrap();
    assert_eq!(entries(&store, &first)["f"].data, "one");
    server.reply("/f", 200, &[], b"two");
    let second = solve(&store, url_op(std::slice::from_ref(&url), "/f")).unwrap();
    assert_eq!(entries(&store, &second)["f"].data, "two", "changed content must not hit the cache");

    let mut pinned = url_op(std::slice::from_ref(&url), "/f");
    pinned.checksum = Some(sha256(b"two"));
    let built = solve(&store, pinned.clone()).unwrap();
    assert_eq!(entries(&store, &built)["f"].data, "two");
    let hits = server.hits("/f");
    // The same step again: its key is the checksum, and its layer is cached.
    assert_eq!(solve(&store, pinned).unwrap(), built);
    assert_eq!(server.hits("/f"), hits, "a pinned, cached URL is not requested again");
}

#[test]
fn an_etag_spares_the_download_and_sha512_checksums_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let server = Server::start();
    server.reply("/e", 200, &[("ETag", "\"v1\"")], b"tagged");
    let first = solve(&store, url_op(&[server.url("/e")], "/e")).unwrap();
    assert_eq!(server.not_modified("/e"), 0);
    let again = solve(&store, url_op(&[server.url("/e")], "/e")).unwrap();
    assert_eq!(server.not_modified("/e"), 1, "the second build asks with If-None-Match");
    assert_eq!(again, first);

    use sha2::Digest as _;
    let sha512 = format!("sha512:{}", hex::encode(sha2::Sha512::digest(b"tagged")));
    let mut op = url_op(&[server.url("/e")], "/f");
    op.checksum = Some(sha512.clone());
    assert_eq!(entries(&store, &solve(&store, op.clone()).unwrap())["f"].data, "tagged");
    op.checksum = Some(format!("sha512:{}", "0".repeat(128)));
    let err = solve(&store, op).unwrap_err();
    assert!(err.contains(&sha512), "{err}");
}

#[test]
fn a_checksum_mismatch_names_both_digests_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let server = Server::start();
    server.reply("/f.tgz", 200, &[], b"tampered");
    let mut op = url_op(&[server.url("/f.tgz")], "/");
    let expected = sha256(b"genuine");
    op.checksum = Some(expected.clone());
    let err = solve(&store, op).unwrap_err();
    for part in [server.url("/f.tgz"), expected, sha256(b"tampered")] {
        assert!(err.contains(&part), "{part} not in: {err}");
    }
    assert_eq!(downloaded_blobs(&store), 0);
    let work: Vec<_> = std::fs::read_dir(store.work_dir()).unwrap().collect();
    assert!(work.is_empty(), "the store's scratch folder keeps {work:?}");

    let mut op = url_op(&[server.url("/f.tgz")], "/");
    op.checksum = Some("sha256:nothex".into());
    let err = solve(&store, op).unwrap_err();
    assert!(err.contains("write sha256: followed by 64 hex digits"), "{err}");
}

#[test]
fn errors_do_not_show_a_password_of_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let server = Server::start();
    let secret = server.url("/f").replace("http://", "http://user:hunter2@");
    let err = solve(&store, url_op(&[secret], "/")).unwrap_err();
    assert!(err.contains("404") && !err.contains("hunter2"), "{err}");
    let closed = "http://user:hunter2@127.0.0.1:1/f".to_owned();
    let err = solve(&store, url_op(&[closed], "/")).unwrap_err();
    assert!(err.contains("xxxxx@127.0.0.1:1") && !err.contains("hunter2"), "{err}");
}

#[test]
fn http_errors_name_the_url_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let server = Server::start();
    server.reply("/gone", 410, &[], b"");
    for (path, status) in [("/missing", "404 Not Found"), ("/gone", "410 Gone")] {
        let err = solve(&store, url_op(&[server.url(path)], "/")).unwrap_err();
        assert!(err.contains(&server.url(path)) && err.contains(status), "{err}");
    }
    assert_eq!(downloaded_blobs(&store), 0);
}

fn git_op(source: String, dest: &str) -> CopyOp {
    CopyOp {
        from: CopyFrom::Git { keep_git_dir: false },
        sources: vec![source],
        dest: dest.into(),
        ..Default::default()
    }
}

#[test]
fn a_git_ref_is_checked_out_with_git_modes_and_the_commit_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (server, url, first, _) = served_repo(dir.path());

    let fs = solve(&store, git_op(format!("{url}#v1"), "/src")).unwrap();
    let got = entries(&store, &fs);
    let names: Vec<_> = got.keys().cloned().collect();
    assert_eq!(names, ["src", "src/a.txt", "src/link", "src/sub", "src/sub/run.sh"]);
    let e = |mode, data: &str| Entry { mode, mtime: 1600000000, uid: 0, data: data.into() };
    assert_eq!(got["src/a.txt"], e(0o644, "v1\n"));
    assert_eq!(got["src/sub/run.sh"], e(0o755, "#!/bin/sh\n"));
    assert_eq!(got["src/sub"], e(0o755, ""));
    // The new destination folder is the checkout's root folder, its mtime
    // included (BuildKit copies a folder's times onto the folder it makes).
    assert_eq!(got["src"], e(0o755, ""));
    assert_eq!(got["src/link"].data, "a.txt");

    // The default branch, a subdirectory, a commit id, and the .git folder kept.
    let fs = solve(&store, git_op(url.clone(), "/head/")).unwrap();
    assert_eq!(entries(&store, &fs)["head/a.txt"].data, "v2\n");
    let fs = solve(&store, git_op(format!("{url}#main:sub"), "/only/")).unwrap();
    let names: Vec<_> = entries(&store, &fs).into_keys().collect();
    assert_eq!(names, ["only", "only/run.sh"]);
    let fs = solve(&store, git_op(format!("{url}#{first}"), "/pinned")).unwrap();
    assert_eq!(entries(&store, &fs)["pinned/a.txt"].data, "v1\n");
    // A commit id is its own key: built again while the server is down, from cache.
    server.set_down(true);
    assert_eq!(solve(&store, git_op(format!("{url}#{first}"), "/pinned")).unwrap(), fs);
    let err = solve(&store, git_op(format!("{url}#v1"), "/src")).unwrap_err();
    assert!(err.contains("ls-remote failed"), "{err}");
    server.set_down(false);
    let mut keep = git_op(format!("{url}#v1"), "/kept");
    keep.from = CopyFrom::Git { keep_git_dir: true };
    let fs = solve(&store, keep).unwrap();
    let got = entries(&store, &fs);
    assert!(got.contains_key("kept/.git/HEAD"), "{:?}", got.keys().collect::<Vec<_>>());
}

#[test]
fn git_files_get_the_checkout_time_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (_server, url, ..) = served_repo(dir.path());
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let fs = solve_with(&store, git_op(url, "/src"), Mtime::Checkout).unwrap();
    let got = entries(&store, &fs);
    for path in ["src", "src/a.txt", "src/sub/run.sh"] {
        assert!(got[path].mtime >= before, "{path}: {:?} is older than the build", got[path]);
    }
}

#[test]
fn git_runs_no_local_or_command_transport() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let marker = dir.path().join("ran");
    let ext = format!("ext::sh -c touch% {}", marker.display());
    let (_server, _url, ..) = served_repo(dir.path());
    let local = format!("file://{}", dir.path().join("repo.git").display());
    for source in [ext, local] {
        let err = solve(&store, git_op(source.clone(), "/x")).unwrap_err();
        assert!(err.contains("ls-remote failed"), "{source}: {err}");
    }
    assert!(!marker.exists(), "the ext:: transport ran a command");
}

#[test]
fn a_git_checksum_is_the_commit_and_a_moved_branch_is_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (_server, url, first, second) = served_repo(dir.path());

    let mut op = git_op(format!("{url}#v1"), "/src");
    op.checksum = Some(first[..12].to_owned());
    solve(&store, op.clone()).unwrap();
    op.checksum = Some(second.clone());
    let err = solve(&store, op).unwrap_err();
    assert!(err.contains(&second) && err.contains(&first) && err.contains(&url), "{err}");

    // BuildKit's query form (Dockerfile 1.18).
    let fs = solve(&store, git_op(format!("{url}?tag=v1&subdir=sub&commit={first}"), "/q/")).unwrap();
    let names: Vec<_> = entries(&store, &fs).into_keys().collect();
    assert_eq!(names, ["q", "q/run.sh"]);
    let err = solve(&store, git_op(format!("{url}?branch=main&checksum={first}"), "/q/")).unwrap_err();
    assert!(err.contains(&second) && err.contains(&first), "{err}");

    let err = solve(&store, git_op(format!("{url}#nope"), "/src")).unwrap_err();
    assert!(err.contains("no branch or tag nope"), "{err}");
    let err = solve(&store, git_op(format!("{url}#main:missing"), "/src")).unwrap_err();
    assert!(err.contains("missing is not a directory of the repository"), "{err}");

    let before = solve(&store, git_op(format!("{url}#main"), "/src")).unwrap();
    let work = dir.path().join("work");
    std::fs::write(work.join("a.txt"), "v3\n").unwrap();
    git(&work, &["commit", "-q", "-am", "three"]);
    let bare = dir.path().join("repo.git");
    git(&bare, &["fetch", "-q", work.to_str().unwrap(), "main:main"]);
    git(&bare, &["update-server-info"]);
    let after = solve(&store, git_op(format!("{url}#main"), "/src")).unwrap();
    assert_ne!(before, after);
    assert_eq!(entries(&store, &after)["src/a.txt"].data, "v3\n");
}

#[test]
fn git_submodules_are_checked_out_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let server = Server::start();
    let bare = |name: &str, files: &[(&str, &str)], submodule: Option<&str>| {
        let work = dir.path().join(format!("{name}-work"));
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q"]);
        for (path, body) in files {
            std::fs::write(work.join(path), body).unwrap();
        }
        if let Some(url) = submodule {
            git(&work, &["submodule", "add", "-q", url, "lib"]);
        }
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", name]);
        let bare = dir.path().join(format!("{name}.git"));
        git(dir.path(), &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);
        git(&bare, &["update-server-info"]);
        server.serve_dir(&format!("/{name}.git"), &bare);
    };
    bare("lib", &[("lib.txt", "from the submodule\n")], None);
    bare("app", &[("app.txt", "app\n")], Some(&server.url("/lib.git")));

    let fs = solve(&store, git_op(server.url("/app.git"), "/app")).unwrap();
    let got = entries(&store, &fs);
    assert_eq!(got["app/lib/lib.txt"].data, "from the submodule\n");
    assert!(!got.contains_key("app/lib/.git"), "{:?}", got.keys().collect::<Vec<_>>());
    let fs = solve(&store, git_op(format!("{}?submodules=false", server.url("/app.git")), "/app")).unwrap();
    let got = entries(&store, &fs);
    assert!(got.contains_key("app/lib") && !got.contains_key("app/lib/lib.txt"), "{:?}", got.keys());
}

#[test]
fn a_kept_git_dir_has_no_password_of_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (_server, url, ..) = served_repo(dir.path());
    let url = url.replace("http://", "http://u:secret@");
    let mut keep = git_op(format!("{url}#v1"), "/kept");
    keep.from = CopyFrom::Git { keep_git_dir: true };
    let fs = solve(&store, keep).unwrap();
    let got = entries(&store, &fs);
    assert!(got["kept/.git/config"].data.contains("url = http://127.0.0.1:"), "{}", got["kept/.git/config"].data);
    for (path, entry) in &got {
        assert!(!entry.data.contains("secret"), "{path} keeps the password: {}", entry.data);
    }
}
