//! Unit tests of [`super`]: hostile entries, whiteouts both ways, metadata.

use super::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use tar::Header;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test makes devices, whiteouts and chowns: run it as root \
         (CI does; `sudo -E cargo test` locally)"
    );
}

/// A tar built entry by entry, names written raw so that hostile names
/// (`..`, absolute) get through the tar crate's own checks.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Tar(tar::Builder::new(Vec::new()))
    }
    fn raw(&mut self, kind: EntryType, name: &str, link: &str, data: &[u8], mode: u32) {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
    }
    fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
        self.raw(EntryType::Regular, name, "", data, 0o644);
        self
    }
    fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(EntryType::Directory, name, "", b"", 0o755);
        self
    }
    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(EntryType::Symlink, name, target, b"", 0o777);
        self
    }
    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(EntryType::Link, name, target, b"", 0o644);
        self
    }
    fn bytes(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.0, tar::Builder::new(Vec::new())).into_inner().unwrap()
    }
}

fn apply_to(tar: &[u8]) -> (tempfile::TempDir, Result<(), LayerError>) {
    let dir = tempfile::tempdir().unwrap();
    let result = apply(tar, dir.path(), "test-layer");
    (dir, result)
}

fn assert_unsafe(result: Result<(), LayerError>, entry: &str) {
    match result {
        Err(LayerError::Unsafe { entry: e, .. }) => assert_eq!(e, entry),
        other => panic!("want Unsafe for {entry:?}, got {other:?}"),
    }
}

#[test]
fn whiteouts_become_devices_and_opaque_markers_xattrs() {
    require_root();
    let tar = Tar::new()
        .dir("dir/")
        .file("dir/.wh.gone", b"")
        .file(".wh.top", b"")
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/kept", b"k")
        .file("dir/.wh..wh.plnk", b"")
        .bytes();
    let (dir, result) = apply_to(&tar);
    result.unwrap();
    for gone in ["dir/gone", "top"] {
        let m = fs::symlink_metadata(dir.path().join(gone)).unwrap();
        assert!(m.file_type().is_char_device(), "{gone}");
        assert_eq!(m.rdev(), 0, "{gone}");
    }
    let opaque = xattr::get(dir.path().join("opaque"), OPAQUE_XATTR).unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read(dir.path().join("opaque/kept")).unwrap(), b"k");
    assert!(!dir.path().join("dir/.wh..wh.plnk").exists());
    assert!(!dir.path().join("dir/.wh.gone").exists());
}

#[test]
fn parent_components_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let nested = root.path().join("root");
    fs::create_dir(&nested).unwrap();
    for name in ["../evil", "a/../../evil", "/../evil"] {
        let tar = Tar::new().file(name, b"x").bytes();
        assert_unsafe(apply(&tar[..], &nested, "l"), name);
    }
    assert!(!root.path().join("evil").exists());
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[test]
fn leading_slash_and_dot_are_stripped() {
    let tar = Tar::new().file("/abs", b"1").file("./rel", b"2").bytes();
    let (dir, result) = apply_to(&tar);
    result.unwrap();
    assert_eq!(fs::read(dir.path().join("abs")).unwrap(), b"1");
    assert_eq!(fs::read(dir.path().join("rel")).unwrap(), b"2");
}

#[test]
fn symlinked_parents_are_refused_and_nothing_escapes() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("a/f", Tar::new().symlink("a", target).file("a/f", b"x").bytes()),
        ("a/d/", Tar::new().symlink("a", target).dir("a/d/").bytes()),
        ("a/.wh.f", Tar::new().symlink("a", target).file("a/.wh.f", b"").bytes()),
    ];
    for (entry, tar) in cases {
        let (_dir, result) = apply_to(&tar);
        assert_unsafe(result, entry);
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "{entry}");
    }
}

#[test]
fn a_folder_swapped_for_a_symlink_after_its_files_is_walked_again() {
    // The walk of a parent is skipped for the next entry of the same parent
    // only: an entry that swaps a folder for a symlink changes what a later
    // entry of another parent walks.
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().to_str().unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        ("a/f2", Tar::new().dir("a/").file("a/f1", b"x").symlink("a", target).file("a/f2", b"x").bytes()),
        ("a/b/f2", Tar::new().file("a/b/f1", b"x").symlink("a/b", target).file("a/b/f2", b"x").bytes()),
        ("d/y/f", Tar::new().file("d/x", b"x").symlink("d/y", target).file("d/y/f", b"x").bytes()),
    ];
    for (entry, tar) in cases {
        let (_dir, result) = apply_to(&tar);
        assert_unsafe(result, entry);
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "{entry}");
    }
}

#[test]
fn a_symlink_is_replaced_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"safe").unwrap();
    let tar = Tar::new().symlink("f", victim.to_str().unwrap()).file("f", b"evil").bytes();
    let (dir, result) = apply_to(&tar);
    result.unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"safe");
    assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"evil");
}

#[test]
fn hardlink_escapes_are_refused() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"s").unwrap();
    let target = outside.path().to_str().unwrap();
    let cases: [(&str, Vec<u8>); 2] = [
        ("h", Tar::new().hardlink("h", "../secret").bytes()),
        ("h", Tar::new().symlink("s", target).hardlink("h", "s/secret").bytes()),
    ];
    for (entry, tar) in cases {
        let (dir, result) = apply_to(&tar);
        assert_unsafe(result, entry);
        assert!(!dir.path().join("h").exists());
    }
    // An absolute target is inside the root, like any entry name.
    let tar = Tar::new().file("etc/a", b"x").hardlink("b", "/etc/a").bytes();
    let (dir, result) = apply_to(&tar);
    result.unwrap();
    let (a, b) = (dir.path().join("etc/a"), dir.path().join("b"));
    assert_eq!(fs::metadata(a).unwrap().ino(), fs::metadata(b).unwrap().ino());
}

#[test]
fn metadata_is_kept() {
    require_root();
    let mut t = Tar::new();
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Directory);
    h.set_mode(0o1777);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_mtime(2_000_000);
    h.set_size(0);
    t.0.append_data(&mut h, "tmp/", io::empty()).unwrap();
    let mut h = Header::new_gnu();
    h.set_mode(0o4755);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_mtime(3_000_000);
    h.set_size(2);
    t.0.append_pax_extensions([("SCHILY.xattr.user.note", &b"hi"[..])]).unwrap();
    t.0.append_data(&mut h, "tmp/suid", &b"#!"[..]).unwrap();
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Char);
    h.set_mode(0o666);
    h.set_size(0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    t.0.append_data(&mut h, "null", io::empty()).unwrap();
    t.raw(EntryType::Fifo, "fifo", "", b"", 0o600);
    t.symlink("link", "tmp/suid");
    let (dir, result) = apply_to(&t.bytes());
    result.unwrap();

    let d = fs::symlink_metadata(dir.path().join("tmp")).unwrap();
    assert_eq!(d.mode() & 0o7777, 0o1777);
    assert_eq!((d.uid(), d.gid(), d.mtime()), (1234, 5678, 2_000_000));
    let f = fs::symlink_metadata(dir.path().join("tmp/suid")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o4755);
    assert_eq!((f.uid(), f.gid(), f.mtime()), (1234, 5678, 3_000_000));
    let note = xattr::get(dir.path().join("tmp/suid"), "user.note").unwrap();
    assert_eq!(note.as_deref(), Some(&b"hi"[..]));
    let n = fs::symlink_metadata(dir.path().join("null")).unwrap();
    assert!(n.file_type().is_char_device());
    assert_eq!(n.rdev(), makedev(1, 3));
    let fifo = fs::symlink_metadata(dir.path().join("fifo")).unwrap();
    assert!(fifo.file_type().is_fifo());
    let link = fs::read_link(dir.path().join("link")).unwrap();
    assert_eq!(link, Path::new("tmp/suid"));
    let l = fs::symlink_metadata(dir.path().join("link")).unwrap();
    assert_eq!(l.mtime(), 1_000_000);
}

#[test]
fn long_names_and_targets() {
    let long_dir = "d".repeat(150);
    let long_file = format!("{long_dir}/{}", "f".repeat(120));
    let mut t = Tar::new();
    let mut h = Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    // GNU long name (what the tar crate writes)
    t.0.append_data(&mut h, &long_file, &b"g"[..]).unwrap();
    // PAX path (what Go writes)
    let pax_name = format!("{long_dir}/{}", "p".repeat(120));
    t.0.append_pax_extensions([("path", pax_name.as_bytes())]).unwrap();
    t.raw(EntryType::Regular, "truncated", "", b"p", 0o644);
    let mut h = Header::new_gnu();
    h.set_entry_type(EntryType::Symlink);
    h.set_size(0);
    t.0.append_link(&mut h, "sym", &long_file).unwrap();
    let (dir, result) = apply_to(&t.bytes());
    result.unwrap();
    assert_eq!(fs::read(dir.path().join(&long_file)).unwrap(), b"g");
    assert_eq!(fs::read(dir.path().join(&pax_name)).unwrap(), b"p");
    assert_eq!(fs::read_link(dir.path().join("sym")).unwrap(), Path::new(&long_file));
    assert!(!dir.path().join("truncated").exists());
}

#[test]
fn later_entries_replace_earlier_ones() {
    let tar = Tar::new()
        .file("x/old", b"1")
        .file("x/keep", b"k")
        .dir("x/") // a dir over a dir keeps its content
        .dir("x/old/") // a dir over a file replaces it
        .file("y/z", b"2")
        .file("y", b"file over dir")
        .bytes();
    let (dir, result) = apply_to(&tar);
    result.unwrap();
    assert_eq!(fs::read(dir.path().join("x/keep")).unwrap(), b"k");
    assert!(dir.path().join("x/old").is_dir());
    assert_eq!(fs::read(dir.path().join("y")).unwrap(), b"file over dir");
}

#[test]
fn apply_blob_reads_gzip_and_plain() {
    let tar = Tar::new().file("a", b"plain").bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let blobs = tempfile::tempdir().unwrap();
    for (name, bytes) in [("plain", &tar), ("gzip", &gz)] {
        let path = blobs.path().join(name);
        fs::write(&path, bytes).unwrap();
        let root = tempfile::tempdir().unwrap();
        apply_blob(&path, root.path(), name).unwrap();
        assert_eq!(fs::read(root.path().join("a")).unwrap(), b"plain", "{name}");
    }
}
#[test]
fn whiteouts_of_no_valid_name_are_refused_and_remove_nothing() {
    // The store's other snapshots sit beside the folder being extracted.
    let store = tempfile::tempdir().unwrap();
    let sibling = store.path().join("other-snapshot");
    fs::create_dir(&sibling).unwrap();
    fs::write(sibling.join("bin"), b"kept").unwrap();
    let root = store.path().join("extracting");
    for name in [".wh..", ".wh.", "./.wh..", "dir/.wh..", "dir/.wh."] {
        fs::create_dir_all(root.join("dir")).unwrap();
        fs::write(root.join("dir/kept"), b"k").unwrap();
        let tar = Tar::new().file(name, b"").bytes();
        let result = apply(&tar[..], &root, "l");
        assert!(matches!(result, Err(LayerError::Unsafe { .. })), "{name}: {result:?}");
        assert_eq!(fs::read(sibling.join("bin")).unwrap(), b"kept", "{name}");
        assert_eq!(fs::read(root.join("dir/kept")).unwrap(), b"k", "{name}");
        fs::remove_dir_all(&root).unwrap();
    }
}

#[test]
fn multi_member_gzip_layers_are_read_to_the_end() {
    // pigz and eStargz: the layer is several gzip members back to back.
    let tar = Tar::new().file("first", b"1").file("second", b"2").bytes();
    let (head, tail) = tar.split_at(1024); // the first entry's header and data
    let mut blob = Vec::new();
    for part in [head, tail] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut gz, part).unwrap();
        blob.extend(gz.finish().unwrap());
    }
    let blobs = tempfile::tempdir().unwrap();
    let path = blobs.path().join("multi");
    fs::write(&path, &blob).unwrap();
    let root = tempfile::tempdir().unwrap();
    apply_blob(&path, root.path(), "multi").unwrap();
    assert_eq!(fs::read(root.path().join("first")).unwrap(), b"1");
    assert_eq!(fs::read(root.path().join("second")).unwrap(), b"2");
}

#[test]
fn a_hardlink_to_a_file_outside_the_layer_says_so() {
    let tar = Tar::new().hardlink("h", "/etc/passwd").bytes();
    let (_dir, result) = apply_to(&tar);
    let msg = result.unwrap_err().to_string();
    assert!(msg.contains("not in this layer"), "{msg}");
    assert!(!msg.contains("No such file"), "{msg}");
}

/// Apply `layers` one over the other into a fresh folder, as `-o type=local` does.
fn flatten(layers: &[Vec<u8>]) -> (tempfile::TempDir, Result<(), LayerError>) {
    let dir = tempfile::tempdir().unwrap();
    for (i, layer) in layers.iter().enumerate() {
        let result = apply_as(&layer[..], dir.path(), &format!("layer {i}"), Stack::Flatten);
        if result.is_err() {
            return (dir, result);
        }
    }
    (dir, Ok(()))
}

/// Every path below `dir`, relative, sorted; folders end in `/`.
fn tree(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            if e.file_type().is_dir() {
                rel + "/"
            } else {
                rel
            }
        })
        .collect();
    out.sort();
    out
}

#[test]
fn flattening_applies_whiteouts_to_the_layers_below() {
    let base = Tar::new()
        .file("gone", b"g")
        .file("d/old", b"o")
        .file("d/sub/deep", b"x")
        .file("opaque/lower", b"l")
        .file("keep", b"k")
        .bytes();
    let top = Tar::new()
        .file(".wh.gone", b"")
        .file("d/.wh.sub", b"")
        .file("opaque/new", b"n") // written before the marker: the marker keeps it
        .file("opaque/.wh..wh..opq", b"")
        .file("keep", b"k2")
        .bytes();
    let (dir, result) = flatten(&[base, top]);
    result.unwrap();
    assert_eq!(tree(dir.path()), ["d/", "d/old", "keep", "opaque/", "opaque/new"]);
    assert_eq!(fs::read(dir.path().join("keep")).unwrap(), b"k2");
    // Nothing overlay-specific is left: no devices, no opaque xattr.
    assert_eq!(xattr::get(dir.path().join("opaque"), OPAQUE_XATTR).unwrap(), None);
}

#[test]
fn flattening_keeps_every_write_inside_the_folder() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, b"safe").unwrap();
    let target = outside.path().to_str().unwrap();
    let link_out = Tar::new().symlink("a", target).bytes();
    for (case, layers, bad) in [
        ("`..` in a name", vec![Tar::new().file("x/../../evil", b"e").bytes()], Some("x/../../evil")),
        (
            "a file below a symlink of a lower layer",
            vec![link_out.clone(), Tar::new().file("a/evil", b"e").bytes()],
            Some("a/evil"),
        ),
        (
            "a whiteout below a symlink of a lower layer",
            vec![link_out.clone(), Tar::new().file("a/.wh.victim", b"").bytes()],
            Some("a/.wh.victim"),
        ),
        (
            "an opaque marker below a symlink",
            vec![link_out.clone(), Tar::new().file("a/.wh..wh..opq", b"").bytes()],
            Some("a/.wh..wh..opq"),
        ),
        ("a whiteout of the symlink itself", vec![link_out.clone(), Tar::new().file(".wh.a", b"").bytes()], None),
        ("a hardlink to the host", vec![Tar::new().hardlink("h", victim.to_str().unwrap()).bytes()], Some("h")),
    ] {
        let (dir, result) = flatten(&layers);
        match bad {
            Some(entry) => assert_unsafe(result, entry),
            None => result.unwrap(),
        }
        assert_eq!(fs::read(&victim).unwrap(), b"safe", "{case}");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1, "{case}");
        assert!(!dir.path().parent().unwrap().join("evil").exists(), "{case}");
    }
}
