//! The context's checksum: a cache key depends on the files' content only,
//! never on where the context is, its times or its owners; and the context
//! index, which spares an unchanged context's reads, never hides a change.

use std::fs;
use std::process::Command;
use std::time::Duration;

use super::harness::{Kiln, Mode};

/// (steps CACHED, steps run) in a build's plain progress.
fn steps(stderr: &str) -> (usize, usize) {
    let cached = stderr.lines().filter(|l| l.ends_with(" CACHED")).count();
    let done = stderr.lines().filter(|l| l.starts_with('#') && l.contains(" DONE ")).count();
    (cached, done)
}

/// A context with folders, an executable, a symlink and a hard link, and a
/// Dockerfile that copies it whole and runs a step on it.
fn write_context(k: &Kiln) {
    k.write("Dockerfile", "FROM busybox\nCOPY . /ctx/\nRUN cat /ctx/src/main.sh /ctx/data/b > /out\n");
    k.write("src/main.sh", "#!/bin/sh\necho hi\n").write("data/a", "a\n").write("data/b", "b\n");
    k.write("data/deep/er/c", &"c".repeat(100_000));
    let ctx = k.ctx();
    std::os::unix::fs::symlink("../data/a", ctx.join("src/link")).unwrap();
    fs::hard_link(ctx.join("data/a"), ctx.join("data/a2")).unwrap();
    let run = |args: &[&str]| assert!(Command::new(args[0]).args(&args[1..]).status().unwrap().success(), "{args:?}");
    run(&["chmod", "755", ctx.join("src/main.sh").to_str().unwrap()]);
}

/// The same context copied to another folder with `cp -r` (new inodes, new
/// times; its hard link kept, which the checksum tells from two files), given other times still and, as root, another owner, hits the
/// cache for every step and gives the same image; no cache record names
/// the context's folder.
#[test]
fn the_same_context_elsewhere_hits_the_cache() {
    for k in Kiln::each_mode() {
        write_context(&k);
        let first = k.build(&["-t", "here"]).ok();
        assert_eq!(steps(&first.stderr), (0, 3), "{}", first.stderr);

        let elsewhere = k.dir.path().join("somewhere/else");
        fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
        let ok = Command::new("cp")
            .args(["-r", "--preserve=links"])
            .arg(k.ctx())
            .arg(&elsewhere)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cp -r");
        let mut touch = Command::new("find");
        touch.arg(&elsewhere).args(["-exec", "touch", "-h", "-d", "2001-02-03", "{}", "+"]);
        assert!(touch.status().unwrap().success());
        if k.mode == Mode::Root {
            assert!(Command::new("chown").args(["-R", "-h", "1234:5678"]).arg(&elsewhere).status().unwrap().success());
        } else {
            k.give(&elsewhere);
        }
        let second = k.cmd(&["build", "-t", "there", elsewhere.to_str().unwrap()]).ok();
        assert_eq!(steps(&second.stderr), (3, 0), "{:?}: {}", k.mode, second.stderr);
        assert_eq!(second.stdout, first.stdout, "{:?}: the same image", k.mode);

        for place in [k.ctx(), elsewhere] {
            let place = place.to_string_lossy().into_owned();
            for record in fs::read_dir(k.root().join("cache")).unwrap() {
                let text = fs::read_to_string(record.unwrap().path()).unwrap_or_default();
                assert!(!text.contains(&place), "a cache record names {place}: {text}");
            }
        }
    }
}

/// Wait until a file written now is older than the index's racy margin, so
/// that the build after trusts what it reads.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

/// An edit that keeps a file's size and puts its mtime back is still seen:
/// the index keys on the ctime too, which nothing but the kernel sets.
#[test]
fn an_edit_that_keeps_size_and_mtime_is_seen() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nCOPY f /f\n").write("f", "before\n");
    settle();
    let first = k.build(&["-t", "one"]).ok();
    assert_eq!(steps(&first.stderr), (0, 2), "{}", first.stderr);
    let indexes: Vec<_> = fs::read_dir(k.root().join("context-index")).unwrap().collect();
    assert_eq!(indexes.len(), 1, "the build kept an index of its context");

    let f = k.ctx().join("f");
    let mtime = fs::metadata(&f).unwrap().modified().unwrap();
    fs::write(&f, "after!\n").unwrap();
    fs::File::options().write(true).open(&f).unwrap().set_modified(mtime).unwrap();
    assert_eq!(fs::metadata(&f).unwrap().modified().unwrap(), mtime);
    let second = k.build(&["-t", "two"]).ok();
    assert_eq!(steps(&second.stderr), (1, 1), "{}", second.stderr);
    assert_eq!(k.file_in_top_layer("two", "f").as_deref(), Some("after!\n"));
}

/// An xattr set on a file the index knows had none is seen: setting it
/// moves the ctime, so the index no longer vouches that the file has none.
#[test]
fn an_xattr_added_to_an_indexed_file_is_seen() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nCOPY f /f\n").write("f", "same bytes\n");
    settle();
    let first = k.build(&["-t", "one"]).ok();
    assert_eq!(steps(&first.stderr), (0, 2), "{}", first.stderr);
    settle();
    let again = k.build(&["-t", "one"]).ok();
    assert_eq!(steps(&again.stderr), (2, 0), "{}", again.stderr);

    xattr::set(k.ctx().join("f"), "user.kiln.added", b"1").unwrap();
    let second = k.build(&["-t", "two"]).ok();
    assert_eq!(steps(&second.stderr), (1, 1), "the new xattr missed the cache:\n{}", second.stderr);
    let xattrs = k.layer_entries("two").pop().unwrap().into_iter().find(|e| e.path == "f").unwrap().xattrs;
    assert_eq!(xattrs, [("user.kiln.added".to_owned(), b"1".to_vec())]);
}

/// A no-op rebuild opens no context file for reading: `strace` lists every
/// file kiln opens, and only folders (walked) and the Dockerfile (parsed)
/// of the context may be among them.
#[test]
fn a_no_op_rebuild_reads_no_context_file() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nCOPY . /ctx/\nRUN --mount=type=bind,source=data,target=/m cat /m/a\n");
    for i in 0..50 {
        k.write(&format!("data/{i}"), &format!("{i}\n"));
    }
    k.write("data/a", "a\n").write("big", &"x".repeat(4 << 20));
    settle();
    k.build(&[]).ok();

    let log = k.dir.path().join("strace.log");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"]).arg(&log).arg(super::harness::kiln_bin());
    cmd.arg("--root").arg(k.root()).arg("build").arg(k.ctx());
    let out = cmd.output().expect("strace must be installed (.ci/run installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(steps(&String::from_utf8_lossy(&out.stderr)), (3, 0));

    let ctx = k.ctx().to_string_lossy().into_owned();
    let log = fs::read_to_string(&log).unwrap();
    let opened: Vec<&str> = log.lines().filter(|l| l.contains(&format!("\"{ctx}/"))).collect();
    assert!(opened.iter().any(|l| l.contains("/Dockerfile\"")), "strace saw kiln's opens:\n{log}");
    let read: Vec<&&str> = opened
        .iter()
        .filter(|l| !l.contains("O_DIRECTORY") && !l.contains("/Dockerfile\"") && !l.contains(".dockerignore\""))
        .collect();
    assert!(read.is_empty(), "context files read by a no-op rebuild:\n{read:#?}");
}
