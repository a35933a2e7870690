//! Hostile archives: `kiln load` and `kiln import` must refuse what they
//! cannot store safely, and name nothing when they refuse.

use std::path::Path;

use sha2::Digest as _;

use super::super::harness::Kiln;

/// Write a `docker save` archive of one image to `path`: named `repo_tags`,
/// its one layer the tar `layer`, its config listing that layer's diffID.
pub(super) fn docker_save(path: &Path, repo_tags: &[&str], layer: &[u8]) {
    let config = serde_json::json!({"config": {"Cmd": ["sh"]}});
    super::super::harness::write_docker_save(path, config, repo_tags, layer);
}

/// A tar of regular files whose names are written exactly as given: the tar
/// crate's own path setters refuse `..`, which is what these tests need.
pub(super) fn raw_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A tar of one hard link `name` → `target`, written as given.
fn raw_link(name: &str, target: &str) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &[][..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn importing_an_empty_file_fails_and_tags_nothing() {
    for k in Kiln::each_mode_empty() {
        let out = k.cmd(&["import", "/dev/null", "empty:1"]).failed();
        for want in ["/dev/null", "holds no files", "tar -C"] {
            assert!(out.stderr.contains(want), "expected {want:?} in:\n{}", out.stderr);
        }
        assert!(k.image_names().is_empty(), "tagged {:?}", k.image_names());
    }
}

#[test]
fn a_layer_that_cannot_be_extracted_is_refused_at_load_and_nothing_is_tagged_or_written_outside() {
    for k in Kiln::each_mode_empty() {
        // Enough `..` to reach `/` from any snapshot folder, then back down to here.
        let escape =
            format!("{}{}/escaped", "../".repeat(16), k.dir.path().display().to_string().trim_start_matches('/'));
        for (case, layer) in [
            ("a `..` entry", raw_tar(&[("ok.txt", b"ok"), ("../x", b"x"), (&escape, b"escaped")])),
            ("a hardlink to a file not in the layer", raw_link("etc/shadow-copy", "/etc/shadow")),
        ] {
            let archive = k.dir.path().join("bad-layer.tar");
            docker_save(&archive, &["bad:1"], &layer);
            let out = k.cmd(&["load", "-i", archive.to_str().unwrap()]).failed();
            assert!(out.stderr.contains("bad-layer.tar"), "{case}:\n{}", out.stderr);
            assert!(k.image_names().is_empty(), "{case}: tagged {:?}", k.image_names());
        }
        for outside in [k.dir.path().join("escaped"), k.root().join("snapshots/x"), k.root().join("x")] {
            assert!(!outside.exists(), "the layer wrote {}", outside.display());
        }
        let snapshots: Vec<_> =
            std::fs::read_dir(k.root().join("snapshots")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(snapshots.is_empty(), "a refused layer left snapshots: {snapshots:?}");
        k.assert_clean();
    }
}

#[test]
fn a_full_disk_while_loading_names_the_write_and_its_path() {
    // A 4 MB tmpfs as the store, in a mount namespace of the test's own (so
    // nothing leaks), and an archive that cannot fit: random, so no
    // compression saves it. Needs root (CI runs as root) to mount.
    let k = Kiln::empty();
    let mut data = vec![0u8; 6 << 20];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut data).unwrap();
    let archive = k.dir.path().join("big.tar");
    docker_save(&archive, &["big:1"], &raw_tar(&[("random.bin", &data)]));
    std::fs::create_dir_all(k.root()).unwrap();
    let out = std::process::Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            r#"mount -t tmpfs -o size=4m tmpfs "$ROOT" && exec "$KILN" --root "$ROOT" load -i "$ARCHIVE""#,
        ])
        .env("ROOT", k.root())
        .env("KILN", super::super::harness::KILN)
        .env("ARCHIVE", &archive)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the archive fit:\n{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains(&format!("writing {}/", k.root().display())),
        "the write and its path are not named:\n{stderr}"
    );
    assert!(!stderr.contains("reading the archive"), "a failed write is blamed on the archive:\n{stderr}");
}

#[test]
fn a_multi_member_gzip_layer_is_extracted_to_its_end() {
    // pigz and eStargz write a layer as many gzip members; each file of the
    // busybox rootfs goes in a member of its own here, so the image only
    // works if every member is read.
    let tar = std::fs::read(super::super::harness::busybox_tar()).unwrap();
    let mut blob = Vec::new();
    for chunk in tar.chunks(4096) {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, chunk).unwrap();
        blob.extend(gz.finish().unwrap());
    }
    for k in Kiln::each_mode_empty() {
        // An OCI layout keeps layer blobs as they are (docker save archives are
        // recompressed on load).
        let archive = k.dir.path().join("multi.tar");
        oci_archive(&archive, "multi:1", &blob, &tar);
        k.cmd(&["load", "-i", archive.to_str().unwrap()]).ok();
        let out = k.cmd(&["run", "multi:1", "sh", "-c", "ls /bin | wc -l"]).ok();
        let entries = tar::Archive::new(&tar[..]).entries().unwrap().count();
        let bins: usize = out.stdout.trim().parse().unwrap();
        assert!(bins > 100 && entries > 100, "{:?}: only {bins} of the rootfs's files in /bin", k.mode);
    }
}

/// Write an OCI image layout archive of one image named `name`, its one
/// layer the gzip blob `layer` whose uncompressed tar is `tar`.
fn oci_archive(path: &Path, name: &str, layer: &[u8], tar: &[u8]) {
    let sha = |b: &[u8]| format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha(tar)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer), "size": layer.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    }))
    .unwrap();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", sha(b).trim_start_matches("sha256:"));
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec();
    let mut out = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in [
        ("oci-layout".to_owned(), &layout),
        ("index.json".to_owned(), &index),
        (blob(&manifest), &manifest),
        (blob(&config), &config),
        (blob(layer), &layer.to_vec()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        out.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    out.finish().unwrap();
}
