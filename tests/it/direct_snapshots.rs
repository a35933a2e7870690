//! Snapshots made while their layer is written (`src/snapshot/direct.rs`):
//! a COPY's, ADD's, WORKDIR's or import's folder extracted from the tar as
//! it is written, a RUN's upper folder conformed and renamed. Each must be
//! exactly what extracting its layer gives: the store's snapshots are set
//! aside, kiln extracts every layer again, and the two trees are compared.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::harness::Kiln;

/// One line per file of `root`, sorted: its name, type, mode, owner, times,
/// xattrs, link target, content digest, and the first name of its inode when
/// it has several. Whiteouts are only whiteouts (extraction dates and owns
/// them as it makes them), the root folder's times are its maker's.
fn tree(root: &Path) -> Vec<String> {
    let mut first_names: HashMap<(u64, u64), String> = HashMap::new();
    let mut lines = Vec::new();
    for item in walkdir::WalkDir::new(root).sort_by_file_name() {
        let item = item.unwrap();
        let path = item.path();
        let rel = format!("/{}", path.strip_prefix(root).unwrap().display());
        let m = fs::symlink_metadata(path).unwrap();
        let kind = m.file_type();
        if kind.is_char_device() && m.rdev() == 0 {
            lines.push(format!("{rel} whiteout"));
            continue;
        }
        let mut line = format!("{rel} {:o} {}:{}", m.mode(), m.uid(), m.gid());
        if item.depth() > 0 {
            line += &format!(" mtime={}.{:09}", m.mtime(), m.mtime_nsec());
        }
        let mut names: Vec<_> = xattr::list(path).unwrap().collect();
        names.sort();
        for name in names {
            let value = xattr::get(path, &name).unwrap().unwrap_or_default();
            line += &format!(" {}={}", name.to_string_lossy(), String::from_utf8_lossy(&value));
        }
        if kind.is_symlink() {
            line += &format!(" -> {}", fs::read_link(path).unwrap().display());
        } else if kind.is_file() {
            line += &format!(" sha256={:x}", Sha256::digest(fs::read(path).unwrap()));
        }
        if m.nlink() > 1 && !kind.is_dir() {
            let first = first_names.entry((m.dev(), m.ino())).or_insert_with(|| rel.clone());
            line += &format!(" inode-of={first}");
        }
        lines.push(line);
    }
    lines
}

/// The diffIDs (hex) of `image`'s layers.
fn diff_ids(k: &Kiln, image: &str) -> Vec<String> {
    let v = k.inspect(image);
    let ids = v["Config"]["rootfs"]["diff_ids"].as_array().unwrap_or_else(|| panic!("no diff_ids in {v:#}"));
    ids.iter().map(|d| d.as_str().unwrap().trim_start_matches("sha256:").to_owned()).collect()
}

/// Build `dockerfile` as `image`, then check that every layer's snapshot
/// was there right after the build, and equals what kiln extracts from the
/// layer's blob.
fn assert_direct_equals_extracted(k: &Kiln, image: &str) {
    k.build(&["-t", image]).ok();
    let snapshots = k.root().join("snapshots");
    let ids = diff_ids(k, image);
    // Nothing mounts an image's top layer during its build: its snapshot is
    // there only because it was written with its layer.
    let top = ids.last().unwrap();
    assert!(snapshots.join(top).is_dir(), "the top layer {top} has no snapshot right after the build");
    let leftovers: Vec<_> = fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary folders left in snapshots/: {leftovers:?}");

    let direct = k.root().join("snapshots.direct");
    fs::rename(&snapshots, &direct).unwrap();
    fs::create_dir(&snapshots).unwrap();
    k.give(&snapshots);
    // Mounting the image extracts every layer anew.
    k.cmd(&["run", image, "true"]).ok();
    for id in &ids {
        let (got, want) = (tree(&direct.join(id)), tree(&snapshots.join(id)));
        assert_eq!(got, want, "{:?}: layer {id}: the direct snapshot (left) is not its extraction (right)", k.mode);
    }
    fs::remove_dir_all(&direct).unwrap();
    k.assert_clean();
}

#[test]
fn copy_add_and_workdir_snapshots_are_their_layers_extracted() {
    for k in Kiln::each_mode() {
        k.write("ctx/a.txt", "a");
        k.write("ctx/d/b.txt", "b");
        k.write(&format!("ctx/d/e/{}", "long-name-".repeat(12)), "deep");
        let ctx = k.ctx().join("ctx");
        fs::hard_link(ctx.join("a.txt"), ctx.join("hard")).unwrap();
        std::os::unix::fs::symlink("d/b.txt", ctx.join("sym")).unwrap();
        xattr::set(ctx.join("a.txt"), "user.kiln.test", b"v").unwrap();
        // An archive ADD extracts into its layer.
        let mut archive = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o4755);
        h.set_uid(7);
        h.set_gid(8);
        h.set_mtime(1_000_000);
        archive.append_data(&mut h, "x/y", &b"hi"[..]).unwrap();
        fs::write(k.ctx().join("a.tar"), archive.into_inner().unwrap()).unwrap();
        k.give(&k.ctx());
        k.write(
            "Dockerfile",
            "FROM busybox\nCOPY ctx/ /c/\nCOPY --chown=5:6 --chmod=600 ctx/a.txt /owned\nADD a.tar /t/\n\
             WORKDIR /w/x/y\nCOPY <<EOF /w/here\nheredoc\nEOF\n",
        );
        k.give(&k.ctx());
        assert_direct_equals_extracted(&k, "direct:copy");
    }
}

#[test]
fn run_upper_folders_become_snapshots_equal_to_their_layers_extracted() {
    for k in Kiln::each_mode() {
        k.write("f", "file");
        // Each RUN is the top layer of one image, so each one's snapshot is checked to be direct.
        let steps = [
            // New files, a hard link, a symlink, modes, an owner, a fifo.
            "mkdir -p /n/d && echo 1 > /n/d/one && ln /n/d/one /n/two && ln -s d/one /n/sym && \
             chmod 4711 /n/d/one && chmod 700 /n/d && chown 3:4 /n/two && mkfifo /n/fifo",
            // Deletions (whiteouts), an opaque folder, a file replaced by a folder, a folder by a file.
            "rm /c/f && rm -rf /etc/network && mkdir -p /etc/network && echo n > /etc/network/new && \
             rm /bin/ls && mkdir /bin/ls && echo in > /bin/ls/x && rm -rf /usr && echo f > /usr",
            // A change in place of a file of a lower layer, and nothing but times.
            "echo more >> /c/g && touch /c /etc",
        ];
        let mut dockerfile = String::from("FROM busybox\nCOPY f /c/f\nCOPY f /c/g\n");
        for (i, step) in steps.iter().enumerate() {
            dockerfile.push_str(&format!("RUN {step}\n"));
            k.write("Dockerfile", &dockerfile);
            k.give(&k.ctx().join("Dockerfile"));
            assert_direct_equals_extracted(&k, &format!("direct:run{i}"));
        }
    }
}

#[test]
fn a_rebuild_after_a_small_change_links_the_unchanged_big_files_of_the_last_snapshot() {
    for k in Kiln::each_mode() {
        let big = |seed: u8| -> Vec<u8> { (0..(1usize << 20) + 4321).map(|i| (i % 251) as u8 ^ seed).collect() };
        let ctx = k.ctx().join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("same"), big(1)).unwrap();
        fs::write(ctx.join("rewritten"), big(2)).unwrap();
        k.write("ctx/small", "one");
        k.write("Dockerfile", "FROM busybox\nCOPY ctx/ /c/\n");
        k.give(&k.ctx());
        k.build(&["-t", "donor:1"]).ok();

        k.write("ctx/small", "two");
        // Same size and mtime, other bytes in the middle: only reading tells.
        let mut changed = big(2);
        changed[700_000] ^= 0xff;
        let mtime = fs::metadata(ctx.join("rewritten")).unwrap().modified().unwrap();
        fs::write(ctx.join("rewritten"), &changed).unwrap();
        let file = fs::File::options().write(true).open(ctx.join("rewritten")).unwrap();
        file.set_times(fs::FileTimes::new().set_modified(mtime)).unwrap();
        k.give(&k.ctx());
        k.build(&["-t", "donor:2"]).ok();

        let snapshots = k.root().join("snapshots");
        let (first, second) = (diff_ids(&k, "donor:1").pop().unwrap(), diff_ids(&k, "donor:2").pop().unwrap());
        assert_ne!(first, second);
        let at = |id: &str, name: &str| snapshots.join(id).join("c").join(name);
        let ino = |id: &str, name: &str| fs::metadata(at(id, name)).unwrap().ino();
        assert_eq!(ino(&first, "same"), ino(&second, "same"), "{:?}: the unchanged big file is linked", k.mode);
        assert_ne!(ino(&first, "rewritten"), ino(&second, "rewritten"), "{:?}", k.mode);
        assert_eq!(fs::read(at(&second, "rewritten")).unwrap(), changed);
        assert_eq!(fs::read(at(&first, "rewritten")).unwrap(), big(2), "the old snapshot is left as it was");
        assert_eq!(fs::read(at(&second, "small")).unwrap(), b"two");
        // What runs sees the new files.
        let out = k.cmd(&["run", "donor:2", "sh", "-c", "cat /c/small; sha256sum /c/rewritten"]).ok().stdout;
        let want = format!("two{:x}  /c/rewritten\n", Sha256::digest(&changed));
        assert_eq!(out, want);
        k.assert_clean();
    }
}
