//! Whiteouts apply inside the layer being extracted only: `.wh..` in a layer
//! once removed the folder above it, which held every other snapshot.

use super::super::harness::Kiln;

fn tar_with(k: &Kiln, name: &str) -> std::path::PathBuf {
    let path = k.dir.path().join("whiteout.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.set_mode(0o644);
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    // Something ordinary, so the archive is not empty of files.
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, "file", &b"x"[..]).unwrap();
    b.finish().unwrap();
    k.give(&path);
    path
}

#[test]
fn a_whiteout_of_dot_dot_removes_no_other_snapshot() {
    for k in Kiln::each_mode() {
        // busybox is extracted (a snapshot exists) and a container uses it.
        k.cmd(&["run", "busybox", "true"]).ok();
        for name in [".wh..", ".wh.", "dir/.wh.."] {
            let tar = tar_with(&k, name);
            let imported = k.cmd(&["import", tar.to_str().unwrap(), "hostile"]);
            let used = if imported.code == 0 { k.cmd(&["run", "hostile", "/bin/true"]) } else { imported };
            assert_ne!(used.code, 0, "{:?} {name}: the layer was extracted", k.mode);
            assert!(used.stderr.contains(name.rsplit('/').next().unwrap()), "{:?} {name}: {}", k.mode, used.stderr);
            let out = k.cmd(&["run", "busybox", "ls", "/bin/sh"]).ok();
            assert_eq!(out.stdout, "/bin/sh\n", "{:?} {name}", k.mode);
        }
        k.assert_clean();
    }
}

/// A file a step names `.wh.*` would read, in its layer, as a deletion of
/// a file the step never deleted: the build fails, names the file, and tags
/// nothing.
#[test]
fn a_step_that_makes_a_file_named_as_a_whiteout_fails_and_names_it() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\nRUN --network=none mkdir -p /etc/d && touch /etc/d/ok /etc/d/.wh.passwd\n",
        );
        let out = k.build(&["-t", "wh"]);
        assert_ne!(out.code, 0, "{:?}: the step's layer was written", k.mode);
        assert!(
            out.stderr.contains("/etc/d/.wh.passwd") && out.stderr.contains("rename it"),
            "{:?}: {}",
            k.mode,
            out.stderr
        );
        assert!(!k.image_names().iter().any(|n| n.starts_with("wh")), "{:?}: an image was tagged", k.mode);
        k.assert_clean();
    }
}
