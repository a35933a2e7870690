//! COPY's destination, wildcard, mode and flag rules, as BuildKit has them,
//! checked in the image built by the real binary.

use super::harness::Kiln;

/// `stat -c FORMAT paths…` run in `image`.
fn stat(k: &Kiln, image: &str, format: &str, paths: &[&str]) -> String {
    let mut args = vec!["run", image, "stat", "-c", format];
    args.extend(paths);
    k.cmd(&args).ok().stdout
}

#[test]
fn existing_folders_keep_their_mode_and_owner() {
    for k in Kiln::each_mode() {
        existing_folders_kept(&k);
    }
}

fn existing_folders_kept(k: &Kiln) {
    k.write("a.txt", "a");
    k.write(
        "Dockerfile",
        "FROM busybox AS s\nRUN echo hi > /hello\n\
         FROM busybox\nRUN mkdir -p /shared/deep && chmod 1777 /shared && chown nobody /shared && chmod 700 /shared/deep\n\
         COPY --from=s /hello /shared\nCOPY a.txt /shared/deep/new/\nCOPY --chown=nobody a.txt /made/here/\n",
    );
    k.build(&["-t", "keep:v1"]).ok();
    let got = stat(
        k,
        "keep:v1",
        "%n %a %U",
        &["/shared", "/shared/hello", "/shared/deep", "/shared/deep/new", "/made", "/made/here"],
    );
    assert_eq!(
        got,
        "/shared 1777 nobody\n/shared/hello 644 root\n/shared/deep 700 root\n/shared/deep/new 755 root\n\
         /made 755 nobody\n/made/here 755 nobody\n"
    );
}

#[test]
fn wildcards_and_several_sources_follow_buildkit() {
    let k = Kiln::with_busybox();
    k.write("a.txt", "a").write("b.txt", "b").write("c.md", "c").write("dir/x", "x").write("[x].txt", "bracket");
    k.write(
        "Dockerfile",
        "FROM busybox\n\
         COPY *.md /one\n\
         COPY a.txt b.txt /last\n\
         COPY nothing* a.txt /optional/\n\
         COPY [ab].txt /class/\n\
         COPY \\\\[x\\\\]*.txt /escaped\n\
         COPY d?r /dir/\n",
    );
    k.build(&["-t", "wild:v1"]).ok();
    let out = k
        .cmd(&[
            "run",
            "wild:v1",
            "sh",
            "-c",
            "cat /one /last; echo; ls /optional; ls /class; cat /escaped; echo; ls /dir",
        ])
        .ok()
        .stdout;
    assert_eq!(out, "cb\na.txt\na.txt\nb.txt\nbracket\nx\n");
}

#[test]
fn chmod_symbolic_and_chown_names() {
    let k = Kiln::with_busybox();
    k.write("dir/run.sh", "#!/bin/sh\n").write("dir/data", "d");
    std::fs::set_permissions(k.ctx().join("dir/run.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    k.write(
        "Dockerfile",
        "FROM busybox\nCOPY --chown=nobody:nogroup --chmod=a=rX dir /d\nCOPY --chmod=u=rw,g=r,o= dir/data /data\n",
    );
    k.build(&["-t", "chmod:v2"]).ok();
    let got = stat(&k, "chmod:v2", "%n %a %U %G", &["/d", "/d/run.sh", "/d/data", "/data"]);
    assert_eq!(
        got,
        "/d 555 nobody nogroup\n/d/run.sh 555 nobody nogroup\n/d/data 444 nobody nogroup\n/data 640 root root\n"
    );
}

#[test]
fn heredoc_files_parents_and_exclude() {
    let k = Kiln::with_busybox();
    k.write("src/app/main.txt", "main").write("src/app/notes.md", "notes").write("src/lib/l.txt", "l");
    k.write(
        "Dockerfile",
        "FROM busybox\n\
         COPY <<EOF /etc/motd\nhello $HOSTNAME\nEOF\n\
         COPY <<one <<two /docs/\nfirst\none\nsecond\ntwo\n\
         COPY --parents src/./app/* src/lib /p/\n\
         COPY --exclude=*.md src/app /x/\n",
    );
    k.build(&["-t", "flags:v1"]).ok();
    let out = k
        .cmd(&[
            "run",
            "flags:v1",
            "sh",
            "-c",
            "cat /etc/motd /docs/one /docs/two; stat -c %a /etc/motd; find /p /x | sort",
        ])
        .ok()
        .stdout;
    assert_eq!(
        out,
        "hello \nfirst\nsecond\n644\n/p\n/p/app\n/p/app/main.txt\n/p/app/notes.md\n/p/src\n/p/src/lib\n/p/src/lib/l.txt\n\
         /x\n/x/main.txt\n"
    );
}

#[test]
fn double_star_wildcards_cross_folders() {
    let k = Kiln::with_busybox();
    k.write("src/a.txt", "a").write("src/deep/er/b.txt", "b").write("src/deep/c.md", "c").write("top.txt", "t");
    k.write("Dockerfile", "FROM busybox\nCOPY **/*.txt /all/\nCOPY src/**/b.txt /one/\nCOPY src/deep/**/*.md /md/\n");
    k.build(&["-t", "star:v1"]).ok();
    let out = k.cmd(&["run", "star:v1", "sh", "-c", "find /all /one /md | sort"]).ok().stdout;
    // Each match is copied by its name, as any wildcard's match is.
    assert_eq!(out, "/all\n/all/a.txt\n/all/b.txt\n/all/top.txt\n/md\n/md/c.md\n/one\n/one/b.txt\n");
}

#[test]
fn refusals_instead_of_silent_changes() {
    let k = Kiln::with_busybox();
    k.write("secret/key.txt", "k").write(".dockerignore", "secret\n");
    k.write("tree/etc/passwd/x", "x").write("wh/.wh.passwd", "").write("wh/ok", "ok");
    for (dockerfile, want) in [
        // A wildcard searching a folder .dockerignore leaves out.
        (
            "FROM busybox\nCOPY secret/*.txt /s/\n",
            "file not found in build context or excluded by .dockerignore: secret/*.txt",
        ),
        // A folder onto a file of the base.
        ("FROM busybox\nCOPY tree/ /\n", "cannot copy to non-directory: /etc/passwd"),
        // A file named as a whiteout: never a deletion of the base's /etc/passwd.
        ("FROM busybox\nCOPY wh/ /etc/\n", "/etc/.wh.passwd: a file named .wh.* would be a whiteout"),
    ] {
        k.write("Dockerfile", dockerfile);
        let run = k.build(&["-t", "refused:v1"]).failed();
        assert!(run.stderr.contains(want), "{dockerfile}: {}", run.stderr);
        assert!(run.stderr.contains("Dockerfile:2"), "{dockerfile}: {}", run.stderr);
    }
    // Left out, the rest of the folder copies and the base keeps its file.
    k.write("Dockerfile", "FROM busybox\nCOPY --exclude=.wh.* wh/ /etc/\n");
    k.build(&["-t", "refused:v2"]).ok();
    let out = k.cmd(&["run", "refused:v2", "sh", "-c", "cat /etc/ok; grep -c ^root: /etc/passwd"]).ok().stdout;
    assert_eq!(out, "ok1\n");
}
