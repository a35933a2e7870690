//! COPY semantics, as `docker build` has them.

use super::harness::{Entry, Kiln};
use tar::EntryType;

#[test]
fn copy_into_scratch_root_and_through_symlinks_keeps_docker_names() {
    let k = Kiln::with_busybox();
    k.write("dir/a.txt", "a").write("real.txt", "real");
    std::os::unix::fs::symlink("real.txt", k.ctx().join("link.txt")).unwrap();
    k.write("Dockerfile", "FROM scratch\nCOPY dir /\nCOPY link.txt /named/\nCOPY *.txt /glob/\n");
    k.build(&["-t", "scratch:v1"]).ok();
    let layers = k.layers("scratch:v1");
    assert_eq!(layers[0], ["a.txt"]);
    // A symlink source is followed, and keeps its own name.
    assert_eq!(layers[1], ["named/", "named/link.txt"]);
    assert_eq!(layers[2], ["glob/", "glob/link.txt", "glob/real.txt"]);
    assert_eq!(k.file_in_top_layer("scratch:v1", "glob/link.txt").as_deref(), Some("real"));
}

#[test]
fn chmod_leaves_created_parents_traversable_and_files_cannot_become_dirs() {
    let k = Kiln::with_busybox();
    k.write("a.txt", "a");
    k.write(
        "Dockerfile",
        "FROM busybox\nCOPY --chmod=600 --chown=nobody a.txt /newdir/a.txt\nUSER nobody\nRUN cat /newdir/a.txt\n",
    );
    k.build(&["-t", "chmod:v1"]).ok();
    let out = k.cmd(&["run", "chmod:v1", "stat", "-c", "%a %U", "/newdir", "/newdir/a.txt"]).ok();
    assert_eq!(out.stdout, "755 nobody\n600 nobody\n");

    k.write("Dockerfile", "FROM busybox\nCOPY a.txt /etc/passwd/x\n");
    let out = k.build(&["-t", "bad:v1"]).failed();
    assert!(out.stderr.contains("not a directory") || out.stderr.contains("non-directory"), "{}", out.stderr);
}

#[test]
fn copy_onto_an_existing_directory_goes_into_it() {
    let k = Kiln::with_busybox();
    k.write("tool.sh", "#!/bin/sh\necho tool\n");
    k.write(
        "Dockerfile",
        "FROM busybox\nRUN mkdir -p /opt/bin\nCOPY --chmod=755 tool.sh /opt/bin\nCMD [\"/opt/bin/tool.sh\"]\n",
    );
    k.build(&["-t", "into:v1"]).ok();
    assert_eq!(k.cmd(&["run", "into:v1"]).ok().stdout, "tool\n");
}

#[test]
fn copy_keeps_hard_links_and_xattrs() {
    let k = Kiln::with_busybox();
    k.write("a", "one inode\n")
        .write("tagged", "t")
        .write("Dockerfile", "FROM busybox\nCOPY . /dst/\nCOPY --chown=nobody --chmod=640 a b /owned/\n");
    std::fs::hard_link(k.ctx().join("a"), k.ctx().join("b")).unwrap();
    xattr::set(k.ctx().join("tagged"), "user.note", b"kept").unwrap();
    k.build(&["-t", "links:v1"]).ok();

    let entry = |path: &str, kind, link: Option<&str>, xattrs: &[(&str, &[u8])]| Entry {
        path: path.to_owned(),
        kind,
        link: link.map(str::to_owned),
        xattrs: xattrs.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect(),
    };
    let want = [
        entry("dst", EntryType::Directory, None, &[]),
        entry("dst/Dockerfile", EntryType::Regular, None, &[]),
        entry("dst/a", EntryType::Regular, None, &[]),
        entry("dst/b", EntryType::Link, Some("dst/a"), &[]),
        entry("dst/tagged", EntryType::Regular, None, &[("user.note", b"kept")]),
    ];
    let layers = k.layer_entries("links:v1");
    assert_eq!(layers[layers.len() - 2][..], want[..]);
    let out = k.cmd(&["run", "links:v1", "sh", "-c", "stat -c %i /dst/a /dst/b"]).ok();
    let inodes: Vec<&str> = out.stdout.lines().collect();
    assert!(inodes.len() == 2 && inodes[0] == inodes[1], "{inodes:?}");
    // --chown and --chmod hold for every name of the inode.
    let out = k.cmd(&["run", "links:v1", "stat", "-c", "%a %U %h", "/owned/a", "/owned/b"]).ok();
    assert_eq!(out.stdout, "640 nobody 2\n640 nobody 2\n");

    // Both reads of the context agree, so the step is cached from then on.
    let again = k.build(&["-t", "links:v2"]).ok();
    assert!(again.stderr.contains("CACHED"), "{}", again.stderr);
    assert_eq!(k.inspect("links:v1")["Digest"], k.inspect("links:v2")["Digest"]);
}
