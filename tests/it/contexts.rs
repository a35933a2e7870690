//! Build contexts as BuildKit takes them: `.dockerignore` (and
//! `<Dockerfile>.dockerignore`), stdin (`-f -`, `kiln build -` with a tar or
//! a Dockerfile), named contexts (`--build-context`), and `kiln debug
//! ignore|context`.

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use super::harness::{Kiln, Mode, Run};

/// kiln `args` with `input` on stdin, temporary files under `tmp`.
fn with_stdin(k: &Kiln, args: &[&str], input: &[u8], tmp: &Path) -> Run {
    let mut child = k
        .command()
        .args(args)
        .env("TMPDIR", tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // kiln may stop reading early (a refused flag): a broken pipe is no failure here.
    let _ = child.stdin.take().unwrap().write_all(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A tar of `files` (name, content), gzip-compressed when `gzip`.
fn tar_of(files: &[(&str, &str)], gzip: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, body.as_bytes()).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn top_layer(k: &Kiln, image: &str) -> Vec<String> {
    k.layers(image).pop().unwrap()
}

#[test]
fn dockerignore_judges_paths_as_buildkit_does() {
    let k = Kiln::with_busybox();
    for file in ["dir/keep", "dir/drop", "app/x.tmp", "app/xfile", "other/f", "notes/é.md", "notes/ab.md"] {
        k.write(file, file);
    }
    // `**file` matches any path ending in `file` (`Dockerfile` too); `?` is one character (é
    // is two bytes); `dir` then `!dir/keep` sends `dir/` and `dir/keep`;
    // `other/f` then `!other` leaves `other/f` out, as fsutil judges a
    // child with its parent's results.
    k.write(".dockerignore", "dir\n!dir/keep\n**file\napp/*.tmp\nother/f\n!other\nnotes/?.md\n");
    k.write("Dockerfile", "FROM scratch\nCOPY . /\n");
    k.build(&["-t", "ign:v1"]).ok();
    let mut got = top_layer(&k, "ign:v1");
    got.sort();
    assert_eq!(got, [".dockerignore", "app/", "dir/", "dir/keep", "notes/", "notes/ab.md", "other/"], "{got:?}");
    // `COPY dir` finds the folder though it is excluded: something below it is sent.
    k.write("Dockerfile", "FROM scratch\nCOPY dir /d/\n");
    k.build(&["-t", "ign:v2"]).ok();
    assert_eq!(top_layer(&k, "ign:v2"), ["d/", "d/keep"]);
    k.write("Dockerfile", "FROM scratch\nCOPY di? /g/\n");
    k.build(&["-t", "ign:v3"]).ok();
    assert_eq!(top_layer(&k, "ign:v3"), ["g/", "g/keep"]);
}

#[test]
fn a_malformed_dockerignore_fails_the_build_naming_file_and_line() {
    let k = Kiln::with_busybox();
    k.write(".dockerignore", "# fine\nok\n[a-b-c]\n");
    k.write("Dockerfile", "FROM scratch\nCOPY . /\n");
    let run = k.build(&[]).failed();
    assert!(run.stderr.contains(".dockerignore:3:5: invalid .dockerignore pattern \"[a-b-c]\""), "{}", run.stderr);
    k.write(".dockerignore", "trailing\\\n");
    let run = k.build(&[]).failed();
    assert!(run.stderr.contains(".dockerignore:1:9:") && run.stderr.contains("write `\\\\`"), "{}", run.stderr);
}

#[test]
fn the_dockerfiles_own_ignore_file_wins_and_the_dockerfile_may_live_outside() {
    let k = Kiln::with_busybox();
    k.write("a", "a").write("b", "b");
    k.write(".dockerignore", "a\n");
    k.write("Dockerfile", "FROM scratch\nCOPY . /\n");
    k.build(&["-t", "ig:ctx"]).ok();
    assert!(!top_layer(&k, "ig:ctx").contains(&"a".to_owned()));

    // Beside a Dockerfile outside the context, its own ignore file is used instead.
    let outside = k.dir.path().join("elsewhere");
    fs::create_dir_all(&outside).unwrap();
    let dockerfile = outside.join("build.Dockerfile");
    fs::write(&dockerfile, "FROM scratch\nCOPY . /\n").unwrap();
    fs::write(outside.join("build.Dockerfile.dockerignore"), "b\n").unwrap();
    k.build(&["-t", "ig:own", "-f", dockerfile.to_str().unwrap()]).ok();
    let got = top_layer(&k, "ig:own");
    assert!(got.contains(&"a".to_owned()) && !got.contains(&"b".to_owned()), "{got:?}");
    // Not in the context, so not copied.
    assert!(!got.iter().any(|p| p.contains("build.Dockerfile")), "{got:?}");
}

#[test]
fn the_dockerfile_from_stdin() {
    let k = Kiln::with_busybox();
    let tmp = tempfile::tempdir().unwrap();
    k.write("a", "from the context");
    k.write(".dockerignore", "ignored\n").write("ignored", "x");
    let ctx = k.ctx();
    let args = ["build", "-t", "stdin:v1", "-f", "-", ctx.to_str().unwrap()];
    with_stdin(&k, &args, b"FROM scratch\nCOPY . /c/\n", tmp.path()).ok();
    let got = top_layer(&k, "stdin:v1");
    assert!(got.contains(&"c/a".to_owned()) && !got.contains(&"c/ignored".to_owned()), "{got:?}");

    // A Dockerfile error is named as BuildKit names stdin's: `Dockerfile`.
    let run = with_stdin(&k, &args, b"FROM scratch\nBOGUS x\n", tmp.path()).failed();
    assert!(run.stderr.contains("Dockerfile:2"), "{}", run.stderr);

    // Both from stdin cannot be.
    let run = with_stdin(&k, &["build", "-f", "-", "-"], b"FROM scratch\n", tmp.path()).failed();
    assert!(run.stderr.contains("stdin cannot be both"), "{}", run.stderr);
}

#[test]
fn a_context_archive_on_stdin_is_unpacked_and_removed() {
    let k = Kiln::with_busybox();
    let tmp = tempfile::tempdir().unwrap();
    let files = [
        ("Dockerfile", "FROM scratch\nCOPY . /c/\n"),
        ("sub/file", "in the archive"),
        ("skipped", "x"),
        (".dockerignore", "skipped\n"),
        ("other.Dockerfile", "FROM busybox\nCOPY sub/file /f\nRUN cat /f\n"),
    ];
    for gzip in [false, true] {
        let image = format!("tar:{gzip}");
        with_stdin(&k, &["build", "-t", &image, "-"], &tar_of(&files, gzip), tmp.path()).ok();
        // BuildKit applies no .dockerignore to a context that came as an archive.
        let got = top_layer(&k, &image);
        assert!(got.contains(&"c/sub/file".to_owned()) && got.contains(&"c/skipped".to_owned()), "{got:?}");
    }
    // -f names a Dockerfile inside the archive.
    let run = with_stdin(&k, &["build", "-f", "other.Dockerfile", "-"], &tar_of(&files, true), tmp.path()).ok();
    assert!(run.stderr.contains("in the archive"), "{}", run.stderr);
    // Messages name the Dockerfile as the archive does.
    let bad = [("sub/bad.Dockerfile", "FROM scratch\nNOPE\n")];
    let run = with_stdin(&k, &["build", "-f", "sub/bad.Dockerfile", "-"], &tar_of(&bad, false), tmp.path()).failed();
    assert!(run.stderr.contains("sub/bad.Dockerfile:2"), "{}", run.stderr);
    let run = with_stdin(&k, &["build", "-"], &tar_of(&bad, false), tmp.path()).failed();
    assert!(run.stderr.contains("holds no Dockerfile Dockerfile: name it with -f"), "{}", run.stderr);
    let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the unpacked context is removed: {left:?}");
}

#[test]
fn a_hostile_context_archive_writes_nothing_outside() {
    let k = Kiln::with_busybox();
    let tmp = tempfile::tempdir().unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(1);
    header.set_mode(0o644);
    header.as_gnu_mut().unwrap().name[..14].copy_from_slice(b"../../escaped\0");
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"x"[..]).unwrap();
    let run = with_stdin(&k, &["build", "-"], &builder.into_inner().unwrap(), tmp.path()).failed();
    assert!(run.stderr.contains("build context archive"), "{}", run.stderr);
    assert!(!tmp.path().join("escaped").exists() && !tmp.path().parent().unwrap().join("escaped").exists());
    let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_dockerfile_on_stdin_as_the_context_has_no_files() {
    let k = Kiln::with_busybox();
    let tmp = tempfile::tempdir().unwrap();
    let run = with_stdin(&k, &["build", "-t", "nofiles:v1", "-"], b"FROM busybox\nRUN echo ran\n", tmp.path()).ok();
    assert!(run.stderr.contains("ran"), "{}", run.stderr);
    let run = with_stdin(&k, &["build", "-"], b"FROM busybox\nCOPY Dockerfile /\n", tmp.path()).failed();
    assert!(run.stderr.contains("file not found in build context"), "{}", run.stderr);
    let run = with_stdin(&k, &["build", "-f", "x", "-"], b"FROM busybox\n", tmp.path()).failed();
    assert!(run.stderr.contains("stdin holds a Dockerfile"), "{}", run.stderr);
}

#[test]
fn named_contexts_come_before_stages_and_images() {
    let k = Kiln::with_busybox();
    let docs = k.dir.path().join("docs");
    fs::create_dir_all(&docs).unwrap();
    fs::write(docs.join("index.html"), "v1").unwrap();
    fs::write(docs.join("private"), "p").unwrap();
    fs::write(docs.join(".dockerignore"), "private\n").unwrap();
    let named = format!("docs={}", docs.display());
    // The stage `docs` is overridden by the named context of that name.
    k.write("Dockerfile", "FROM scratch AS docs\nCOPY nothing-here /\n\nFROM busybox\nCOPY --from=docs . /docs/\n");
    let run = k.build(&["-t", "named:v1", "--build-context", &named]).ok();
    let got = top_layer(&k, "named:v1");
    assert_eq!(got, ["docs/", "docs/.dockerignore", "docs/index.html"], "{}", run.stderr);

    // Its content is in the cache key: a change runs the step again.
    let run = k.build(&["-t", "named:v1", "--build-context", &named]).ok();
    assert!(run.stderr.contains("COPY --from=docs . /docs/\n#2 CACHED"), "{}", run.stderr);
    fs::write(docs.join("index.html"), "v2").unwrap();
    let run = k.build(&["-t", "named:v2", "--build-context", &named]).ok();
    assert!(
        !run.stderr.contains("/docs/\n#2 CACHED")
            && k.file_in_top_layer("named:v2", "docs/index.html").as_deref() == Some("v2"),
        "{}",
        run.stderr
    );

    // A folder as FROM: its files are the filesystem.
    k.write("Dockerfile", "FROM docs\nENV A=1\n");
    k.build(&["-t", "named:from", "--build-context", &named]).ok();
    assert_eq!(k.layers("named:from"), [vec![".dockerignore", "index.html"]]);

    // An image stands in for a name: FROM alpine builds on busybox.
    k.write("Dockerfile", "FROM alpine\nRUN echo on busybox\n");
    let run = k.build(&["-t", "named:img", "--build-context", "alpine=docker-image://busybox"]).ok();
    assert!(run.stderr.contains("on busybox"), "{}", run.stderr);

    // Without the flag, the name is a stage or an image again.
    k.write("Dockerfile", "FROM busybox\nCOPY --from=docs . /docs/\n");
    let run = k.build(&[]).failed();
    assert!(run.stderr.contains("docs"), "{}", run.stderr);
    for (flag, says) in [
        ("docs", "has no `=`"),
        ("Docs=/tmp", "NAME is not a valid image name"),
        ("docs=https://example.com/x.tar", "kiln takes NAME=DIR or NAME=docker-image://REF"),
        ("docs=/no/such/dir", "not a directory"),
    ] {
        let run = k.build(&["--build-context", flag]).failed();
        assert!(run.stderr.contains(says), "{flag}: {}", run.stderr);
    }
}

#[test]
fn debug_ignore_and_context_show_what_a_build_uses() {
    let k = Kiln::empty();
    let m = |args: &[&str]| {
        let mut all = vec!["debug", "ignore", "match"];
        all.extend_from_slice(args);
        k.cmd(&all)
    };
    assert_eq!(m(&["--pattern", "*.md", "--pattern", "!README.md", "--", "README.md"]).ok().stdout, "false\n");
    assert_eq!(m(&["--pattern", "*.md", "--", "notes.md"]).ok().stdout, "true\n");
    assert_eq!(m(&["--pattern", "docs", "--", "docs/a/b"]).ok().stdout, "true\n");
    assert_eq!(m(&["--pattern", "**file", "--", "a/xfile"]).ok().stdout, "true\n");
    assert_eq!(m(&["--pattern", "?", "--", "é"]).ok().stdout, "true\n");
    let run = m(&["--pattern", "ok", "--pattern", "[a-b-c]", "--", "x"]).failed();
    assert!(run.stderr.contains("--pattern:2:5: invalid .dockerignore pattern \"[a-b-c]\""), "{}", run.stderr);

    let ctx = k.ctx();
    fs::write(ctx.join(".dockerignore"), "\u{feff}# comment\n/a/../b/\n! /keep\n\n").unwrap();
    let file = ctx.join(".dockerignore");
    let run = k.cmd(&["debug", "ignore", "read", file.to_str().unwrap()]).ok();
    assert_eq!(run.stdout, "[\"b\",\"!keep\"]\n");

    for f in ["dir/keep", "dir/drop", "a", "z/y"] {
        k.write(f, "");
    }
    k.write(".dockerignore", "dir\n!dir/keep\nz\n");
    k.write("app.Dockerfile.dockerignore", "a\n");
    let run = k.cmd(&["debug", "context", ctx.to_str().unwrap()]).ok();
    assert_eq!(run.stdout, ".dockerignore\na\napp.Dockerfile.dockerignore\ndir/\ndir/keep\n");
    let dockerfile = ctx.join("app.Dockerfile");
    let run = k.cmd(&["debug", "context", "-f", dockerfile.to_str().unwrap(), ctx.to_str().unwrap()]).ok();
    assert_eq!(run.stdout, ".dockerignore\napp.Dockerfile.dockerignore\ndir/\ndir/drop\ndir/keep\nz/\nz/y\n");
    let help = k.cmd(&["debug", "--help"]).ok().stdout;
    assert!(help.contains("debug ignore match") && help.contains("debug context"), "{help}");
}

#[test]
fn rootless_kiln_reads_an_archive_from_stdin_and_a_named_folder() {
    let k = Kiln::in_mode(Mode::Rootless);
    let tmp = tempfile::tempdir().unwrap();
    k.give(tmp.path());
    let shared = k.dir.path().join("shared");
    fs::create_dir_all(&shared).unwrap();
    fs::write(shared.join("f"), "from the named folder\n").unwrap();
    k.give(&shared);
    let files = [
        ("Dockerfile", "FROM busybox\nCOPY --from=shared f /f\nCOPY a /a\nRUN cat /f /a\n"),
        ("a", "from the archive\n"),
    ];
    let named = format!("shared={}", shared.display());
    let args = ["build", "-t", "rootless:ctx", "--build-context", &named, "-"];
    let run = with_stdin(&k, &args, &tar_of(&files, true), tmp.path()).ok();
    assert!(run.stderr.contains("from the named folder") && run.stderr.contains("from the archive"), "{}", run.stderr);
    let left: Vec<_> = fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "the unpacked context is removed: {left:?}");
}
