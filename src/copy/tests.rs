//! `write_layer` against a base folder and a context: what lands in the layer.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use kiln_frontend::{CopyFrom, CopyOp, InlineFile};

use super::select::tests::context;
use super::*;
use crate::layer::LayerWriter;
use crate::store::Store;

/// One layer entry: path, kind (tar type byte), mode, uid, content or link target.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    path: String,
    kind: char,
    mode: u32,
    uid: u64,
    body: String,
}

fn seen(path: &str, kind: char, mode: u32, body: &str) -> Seen {
    Seen { path: path.into(), kind, mode, uid: 0, body: body.into() }
}

fn op(sources: &[&str], dest: &str) -> CopyOp {
    CopyOp { sources: sources.iter().map(|s| s.to_string()).collect(), dest: dest.into(), ..CopyOp::default() }
}

/// Write `op`'s layer onto `base` from `ctx`; its entries, or the error. The
/// checksum of the first pass must agree with the layer's.
fn write(op: &CopyOp, base: Option<&Path>, ctx: &SourceRoot) -> Result<Vec<Seen>, String> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut writer = LayerWriter::new(&store).unwrap();
    let from = (!matches!(op.from, CopyFrom::Inline(_))).then_some(ctx);
    let written = write_layer(op, base, from, None, writer.tar(), None).map_err(|e| e.to_string())?;
    if from.is_some() {
        assert_eq!(checksum(ctx, op).unwrap(), written, "both passes of {op:?}");
    }
    let layer = writer.finish().unwrap();
    let blob = fs::File::open(store.blob_path(&layer.digest)).unwrap();
    let mut tar = tar::Archive::new(blob);
    let entries = tar.entries().unwrap().map(|e| {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        let mut body = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(link) = e.link_name().unwrap() {
            body = link.display().to_string();
        }
        let path = e.path().unwrap().display().to_string();
        Seen {
            path,
            kind: h.entry_type().as_byte() as char,
            mode: h.mode().unwrap() & 0o7777,
            uid: h.uid().unwrap(),
            body,
        }
    });
    Ok(entries.collect())
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A base filesystem: /tmp 1777, /etc/passwd, /bin -> usr/bin, /file.
fn base() -> tempfile::TempDir {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    for d in ["tmp", "etc", "usr/bin", "opt/app"] {
        fs::create_dir_all(b.join(d)).unwrap();
    }
    set_mode(&b.join("tmp"), 0o1777);
    set_mode(&b.join("opt"), 0o750);
    fs::write(b.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n").unwrap();
    fs::write(b.join("etc/group"), "root:x:0:\napp:x:1000:\n").unwrap();
    symlink("usr/bin", b.join("bin")).unwrap();
    fs::write(b.join("file"), "f").unwrap();
    base
}

#[test]
fn existing_folders_keep_their_mode_and_new_ones_are_0755() {
    let (_c, ctx) = context(&[("hello", "hi"), ("dir/x", "x")], "");
    let base = base();
    let b = Some(base.path());
    // Into an existing folder, with or without the trailing slash.
    for dest in ["/tmp", "/tmp/"] {
        let got = write(&op(&["hello"], dest), b, &ctx).unwrap();
        assert_eq!(got, [seen("tmp", '5', 0o1777, ""), seen("tmp/hello", '0', 0o644, "hi")], "{dest}");
    }
    // Existing parents too; missing ones 0755 and owned per --chown.
    let chown = CopyOp { chown: Some("app".into()), ..op(&["hello"], "/opt/new/deeper/") };
    let got = write(&chown, b, &ctx).unwrap();
    let owned = |mut s: Seen| {
        s.uid = 1000;
        s
    };
    assert_eq!(
        got,
        [
            seen("opt", '5', 0o750, ""),
            owned(seen("opt/new", '5', 0o755, "")),
            owned(seen("opt/new/deeper", '5', 0o755, "")),
            owned(seen("opt/new/deeper/hello", '0', 0o644, "hi")),
        ]
    );
    // A symlink on the way is followed inside the base.
    let got = write(&op(&["hello"], "/bin/"), b, &ctx).unwrap();
    assert_eq!(got.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["usr", "usr/bin", "usr/bin/hello"]);
    // A file on the way is an error.
    let err = write(&op(&["hello"], "/file/x"), b, &ctx).unwrap_err();
    assert!(err.contains("non-directory"), "{err}");
    let err = write(&op(&["dir"], "/file"), b, &ctx).unwrap_err();
    assert!(err.contains("non-directory"), "{err}");
}

#[test]
fn sources_are_copied_in_turn_as_buildkit_does() {
    let (d, ctx) = context(&[("a.txt", "a"), ("b.txt", "b"), ("c.md", "c"), ("dir/x", "x")], "");
    set_mode(&d.path().join("dir"), 0o700);
    let names =
        |got: Vec<Seen>| got.into_iter().map(|s| format!("{} {:o} {}", s.path, s.mode, s.body)).collect::<Vec<_>>();
    // Several files onto one name: each in turn, the last wins.
    let got = write(&op(&["a.txt", "b.txt"], "/c"), None, &ctx).unwrap();
    assert_eq!(names(got), ["c 644 a", "c 644 b"]);
    // One match onto a file name; a wildcard that matches nothing copies nothing.
    let got = write(&op(&["*.md", "none*"], "/d"), None, &ctx).unwrap();
    assert_eq!(names(got), ["d 644 c"]);
    let got = write(&op(&["none*"], "/e/"), None, &ctx).unwrap();
    assert!(got.is_empty(), "{got:?}");
    // A folder's contents: its new destination takes the folder's mode.
    let got = write(&op(&["dir"], "/new"), None, &ctx).unwrap();
    assert_eq!(names(got), ["new 700 ", "new/x 644 x"]);
    // ... then a file onto that folder goes into it.
    let got = write(&op(&["dir", "a.txt"], "/new"), None, &ctx).unwrap();
    assert_eq!(names(got), ["new 700 ", "new/x 644 x", "new/a.txt 644 a"]);
    // A new destination folder has the source folder's mtime (BuildKit
    // copies a folder's times onto the folder it makes, after its contents).
    crate::fetch::set_mtime(&d.path().join("dir"), 1_234_567).unwrap();
    let dir = CopyOp { sources: vec!["dir".into()], dest: "/made".into(), ..CopyOp::default() };
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let mut writer = LayerWriter::new(&store).unwrap();
    write_layer(&dir, None, Some(&ctx), None, writer.tar(), None).unwrap();
    let layer = writer.finish().unwrap();
    let blob = fs::File::open(store.blob_path(&layer.digest)).unwrap();
    let mut tar = tar::Archive::new(blob);
    let first = tar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(
        (first.path().unwrap().display().to_string(), first.header().mtime().unwrap()),
        ("made".into(), 1_234_567)
    );
    // A missing folder before a wildcard is an error.
    let err = write(&op(&["nodir/*.txt"], "/"), None, &ctx).unwrap_err();
    assert!(err.contains("file not found in build context"), "{err}");
}

#[test]
fn a_folder_never_replaces_a_file_nor_a_file_a_folder() {
    // As BuildKit's copy refuses them, where a layer entry would replace silently.
    let (_c, ctx) = context(&[("src/file/x", "x"), ("src/tmp", "t"), ("src/ok/y", "y")], "");
    let base = base();
    let err = write(&op(&["src"], "/"), Some(base.path()), &ctx).unwrap_err();
    assert!(err.starts_with("COPY failed: cannot copy to non-directory: /file: the image has a file"), "{err}");
    let (_c, ctx) = context(&[("src/tmp", "t")], "");
    let err = write(&op(&["src"], "/"), Some(base.path()), &ctx).unwrap_err();
    assert!(
        err.starts_with("COPY failed: cannot replace to directory /tmp with file: the image has a folder"),
        "{err}"
    );
    // Within one COPY too: a later source's folder onto an earlier one's file.
    let (_c, ctx) = context(&[("a/n", "file"), ("b/n/z", "z")], "");
    let err = write(&op(&["a", "b"], "/d/"), None, &ctx).unwrap_err();
    assert!(err.contains("cannot copy to non-directory: /d/n"), "{err}");
    // A base symlink is no folder to copy a folder into (BuildKit: the same error).
    let (_c, ctx) = context(&[("root/bin/tool", "t")], "");
    let err = write(&op(&["root"], "/"), Some(base.path()), &ctx).unwrap_err();
    assert!(err.contains("cannot copy to non-directory: /bin"), "{err}");
}

#[test]
fn a_wh_name_is_refused_not_turned_into_a_deletion() {
    let (_c, ctx) = context(&[("d/.wh.passwd", ""), ("d/ok", "ok"), (".wh.file", "")], "");
    let base = base();
    let b = Some(base.path());
    let refused = |op: CopyOp, path: &str| {
        let err = write(&op, b, &ctx).unwrap_err();
        assert!(err.starts_with(&format!("COPY failed: {path}: a file named .wh.* would be a whiteout")), "{err}");
    };
    refused(op(&["d"], "/etc/"), "/etc/.wh.passwd");
    refused(op(&[".wh.file"], "/"), "/.wh.file");
    refused(op(&["d/*"], "/etc/"), "/etc/.wh.passwd");
    // The destination's name too, and a heredoc's.
    refused(op(&["d/ok"], "/etc/.wh.passwd"), "/etc/.wh.passwd");
    let heredoc = CopyOp {
        from: CopyFrom::Inline(vec![InlineFile { name: ".wh.file".into(), content: "x".into() }]),
        ..op(&[], "/")
    };
    refused(heredoc, "/.wh.file");
    // Left out, the rest copies.
    let got = write(&CopyOp { exclude: vec![".wh.*".into()], ..op(&["d"], "/etc/") }, b, &ctx).unwrap();
    assert_eq!(got.last().map(|s| s.path.as_str()), Some("etc/ok"));
}

#[test]
fn chmod_octal_and_symbolic_on_files_and_folders() {
    let (d, ctx) = context(&[("dir/run.sh", "#!"), ("dir/data", "d")], "");
    set_mode(&d.path().join("dir/run.sh"), 0o755);
    set_mode(&d.path().join("dir/data"), 0o600);
    let modes = |chmod: &str| {
        let got = write(&CopyOp { chmod: Some(chmod.into()), ..op(&["dir"], "/d") }, None, &ctx).unwrap();
        got.into_iter().map(|s| format!("{} {:o}", s.path, s.mode)).collect::<Vec<_>>()
    };
    assert_eq!(modes("640"), ["d 640", "d/data 640", "d/run.sh 640"]);
    assert_eq!(modes("a=rX"), ["d 555", "d/data 444", "d/run.sh 555"]);
    assert_eq!(modes("go-rwx,u+w"), ["d 755", "d/data 600", "d/run.sh 700"].map(|s| s.replace("d 755", "d 700")));
    let err = write(&CopyOp { chmod: Some("u+q".into()), ..op(&["dir"], "/d") }, None, &ctx).unwrap_err();
    assert!(err.contains("invalid --chmod \"u+q\""), "{err}");
}

#[test]
fn heredoc_files_are_0644_files_named_after_their_delimiter() {
    let (_c, ctx) = context(&[], "");
    let base = base();
    let files = |names: &[&str]| {
        CopyFrom::Inline(names.iter().map(|n| InlineFile { name: n.to_string(), content: format!("{n}\n") }).collect())
    };
    let inline = |names: &[&str], dest: &str| CopyOp { from: files(names), ..op(names, dest) };
    let got = write(&inline(&["EOF"], "/tmp"), Some(base.path()), &ctx).unwrap();
    assert_eq!(got, [seen("tmp", '5', 0o1777, ""), seen("tmp/EOF", '0', 0o644, "EOF\n")]);
    let got = write(&inline(&["EOF"], "/conf.txt"), Some(base.path()), &ctx).unwrap();
    assert_eq!(got, [seen("conf.txt", '0', 0o644, "EOF\n")]);
    let got = write(&inline(&["A", "B"], "/x/"), None, &ctx).unwrap();
    assert_eq!(got, [seen("x", '5', 0o755, ""), seen("x/A", '0', 0o644, "A\n"), seen("x/B", '0', 0o644, "B\n")]);
    let chmod = CopyOp { chmod: Some("u+x".into()), ..inline(&["S"], "/s.sh") };
    assert_eq!(write(&chmod, None, &ctx).unwrap(), [seen("s.sh", '0', 0o744, "S\n")]);
}

#[test]
fn parents_keep_the_path_below_the_pivot() {
    let (d, ctx) = context(&[("a/b/c.txt", "c"), ("x/y/z.txt", "z"), ("x/y/w.md", "w")], "");
    set_mode(&d.path().join("a/b"), 0o700);
    let parents = |sources: &[&str]| CopyOp { parents: true, ..op(sources, "/dst/") };
    let names = |got: Vec<Seen>| got.into_iter().map(|s| format!("{} {:o}", s.path, s.mode)).collect::<Vec<_>>();
    let got = write(&parents(&["a/b/c.txt", "./x/./y/*.txt"]), None, &ctx).unwrap();
    assert_eq!(
        names(got),
        ["dst 755", "dst/a 755", "dst/a/b 700", "dst/a/b/c.txt 644", "dst/y 755", "dst/y/z.txt 644"]
    );
    let got = write(&parents(&["x/y"]), None, &ctx).unwrap();
    assert_eq!(names(got), ["dst 755", "dst/x 755", "dst/x/y 755", "dst/x/y/w.md 644", "dst/x/y/z.txt 644"]);
}

#[test]
fn exclude_leaves_out_matches_and_paths_below_folders() {
    let (_d, ctx) = context(&[("a.txt", "a"), ("b.md", "b"), ("dir/c.md", "c"), ("dir/sub/d.txt", "d")], "");
    let exclude = |sources: &[&str], patterns: &[&str]| CopyOp {
        exclude: patterns.iter().map(|p| p.to_string()).collect(),
        ..op(sources, "/dst/")
    };
    let names = |got: Vec<Seen>| got.into_iter().map(|s| s.path).collect::<Vec<_>>();
    // Against a match's name, and below a folder against the path in it.
    let got = write(&exclude(&["*"], &["*.md", "sub"]), None, &ctx).unwrap();
    assert_eq!(names(got), ["dst", "dst/a.txt"]);
    let got = write(&exclude(&["dir"], &["**/*.txt"]), None, &ctx).unwrap();
    assert_eq!(names(got), ["dst", "dst/c.md", "dst/sub"]);
    let got = write(&exclude(&["dir"], &["*", "!sub"]), None, &ctx).unwrap();
    assert_eq!(names(got), ["dst", "dst/sub", "dst/sub/d.txt"]);
}

#[test]
fn link_copies_as_onto_an_empty_filesystem() {
    let (_c, ctx) = context(&[("hello", "hi")], "");
    let base = base();
    let link = |dest: &str| CopyOp { link: true, chown: Some("app".into()), ..op(&["hello"], dest) };
    let got = write(&link("/bin/"), Some(base.path()), &ctx).unwrap();
    let names: Vec<_> = got.iter().map(|s| (s.path.as_str(), s.mode, s.uid)).collect();
    // The base's /bin symlink is not followed; --chown names still resolve in the base.
    assert_eq!(names, [("bin", 0o755, 1000), ("bin/hello", 0o644, 1000)]);
    // With --chmod, BuildKit does not link: the base's symlink is followed.
    let chmod = CopyOp { chmod: Some("600".into()), ..link("/bin/") };
    let got = write(&chmod, Some(base.path()), &ctx).unwrap();
    assert_eq!(got.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["usr", "usr/bin", "usr/bin/hello"]);
}

/// A tar archive of `entries` (path, body; a path ending in `/` is a folder,
/// a body starting with `->` a symlink).
fn tar_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(1234);
        h.set_mtime(1);
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o711);
            h.set_size(0);
            b.append_data(&mut h, path, std::io::empty()).unwrap();
        } else if let Some(target) = body.strip_prefix("->") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            b.append_link(&mut h, path, target).unwrap();
        } else {
            h.set_mode(0o640);
            h.set_size(body.len() as u64);
            // Written by hand: the tar crate refuses `..` names it would write.
            let name = h.as_old_mut();
            name.name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, body.as_bytes()).unwrap();
        }
    }
    b.into_inner().unwrap()
}

#[test]
fn add_extracts_local_archives_told_by_content() {
    let archive = tar_of(&[("top/", ""), ("top/f", "data"), ("top/l", "->f"), ("g", "g")]);
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&archive).unwrap();
        e.finish().unwrap()
    };
    let bz = {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(&archive).unwrap();
        e.finish().unwrap()
    };
    let xz = {
        let mut e = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        e.write_all(&archive).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::stream::encode_all(&archive[..], 1).unwrap();
    let (d, ctx) = context(&[("notes.txt", "plain text")], "");
    // Names say nothing: the content does.
    for (name, bytes) in [("a.tar", &archive), ("a.bin", &gz), ("a.bz", &bz), ("a.xz", &xz), ("a.data", &zst)] {
        fs::write(d.path().join(name), bytes).unwrap();
    }
    let base = base();
    for name in ["a.tar", "a.bin", "a.bz", "a.xz", "a.data"] {
        let add = CopyOp { unpack: true, ..op(&[name], "/tmp") };
        let got = write(&add, Some(base.path()), &ctx).unwrap();
        let want = [
            ("tmp", '5', 0o1777, 0, ""),
            ("tmp/top", '5', 0o711, 1234, ""),
            ("tmp/top/f", '0', 0o640, 1234, "data"),
            ("tmp/top/l", '2', 0o777, 1234, "f"),
            ("tmp/g", '0', 0o640, 1234, "g"),
        ]
        .map(|(p, k, m, uid, b)| Seen { uid, ..seen(p, k, m, b) });
        assert_eq!(got, want, "{name}");
        // --chown owns every entry; unpack=false copies the archive as it is.
        let chown = CopyOp { chown: Some("7:7".into()), ..add.clone() };
        assert!(write(&chown, Some(base.path()), &ctx).unwrap()[1..].iter().all(|s| s.uid == 7));
        let copied = write(&op(&[name], "/x"), None, &ctx).unwrap();
        assert_eq!(copied.iter().map(|s| s.path.as_str()).collect::<Vec<_>>(), ["x"], "{name}");
    }
    // Not an archive: copied as a file.
    let got = write(&CopyOp { unpack: true, ..op(&["notes.txt"], "/n/") }, None, &ctx).unwrap();
    assert_eq!(got, [seen("n", '5', 0o755, ""), seen("n/notes.txt", '0', 0o644, "plain text")]);
}

#[test]
fn add_refuses_archives_that_reach_out_or_delete() {
    let (d, ctx) = context(&[], "");
    for (name, entries, why) in [
        ("up.tar", &[("../evil", "x")][..], "climbs out of the destination"),
        ("deep.tar", &[("a/../../evil", "x")], "climbs out of the destination"),
        ("link.tar", &[("l", "->../../etc/passwd")], "symlink target climbs out"),
        ("wh.tar", &[("dir/.wh.passwd", "")], "whiteout"),
    ] {
        fs::write(d.path().join(name), tar_of(entries)).unwrap();
        let err = write(&CopyOp { unpack: true, ..op(&[name], "/x/") }, None, &ctx).unwrap_err();
        assert!(err.contains(why) && err.contains(name), "{name}: {err}");
    }
    // An absolute symlink target is the image's business, as in docker.
    fs::write(d.path().join("abs.tar"), tar_of(&[("l", "->/etc/passwd")])).unwrap();
    let got = write(&CopyOp { unpack: true, ..op(&["abs.tar"], "/x/") }, None, &ctx).unwrap();
    assert_eq!(got[1].body, "/etc/passwd");
}
