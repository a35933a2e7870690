//! Where a build's image goes (`-o type=image|oci|docker|local|tar`), `kiln
//! save`, `--iidfile`, `--metadata-file`: each read back by the tools that
//! must accept it (skopeo, umoci, `kiln load`, `docker load`'s layout).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::harness::Kiln;
use super::interop::tool;

/// A busybox image with a file from COPY, a file made and one deleted by RUN,
/// and a folder emptied wholesale (an opaque whiteout) by a second RUN.
fn built(k: &Kiln, outputs: &[&str]) -> String {
    k.write("hello.txt", "hello\n");
    k.write(
        "Dockerfile",
        "FROM busybox\nENV A=1\nCOPY hello.txt /hello.txt\n\
         RUN echo made > /made && rm /bin/ls && mkdir -p /d && echo x > /d/x\n\
         RUN rm -rf /d && mkdir /d && echo y > /d/y\nCMD [\"cat\", \"/hello.txt\"]\n",
    );
    let mut args = vec!["-t", "out:v1"];
    for o in outputs {
        args.extend(["-o", o]);
    }
    k.build(&args).ok().stdout.trim().to_owned()
}

/// Every path below `root`, absolute as the image sees it, sorted.
fn listing(root: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| format!("/{}", e.unwrap().path().strip_prefix(root).unwrap().display()))
        .collect();
    out.sort();
    out
}

/// What `kiln run IMAGE find / -xdev` sees, less the files the sandbox adds
/// to an image that has none (its /etc/hosts and /etc/resolv.conf).
fn seen_by_run(k: &Kiln, image: &str) -> Vec<String> {
    let out = k.cmd(&["run", image, "find", "/", "-xdev"]).ok().stdout;
    let mut seen: Vec<String> =
        out.lines().filter(|l| !matches!(*l, "/etc/hosts" | "/etc/resolv.conf")).map(str::to_owned).collect();
    seen.sort();
    seen
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn every_output_is_read_back_by_the_tools_that_must_accept_it() {
    let k = Kiln::with_busybox();
    let d = k.dir.path();
    let (oci, docker, local, flat) = (d.join("oci.tar"), d.join("docker.tar"), d.join("local"), d.join("fs.tar"));
    let outputs = [
        "type=image".to_owned(),
        format!("type=oci,dest={}", oci.display()),
        format!("type=docker,dest={}", docker.display()),
        format!("type=local,dest={}", local.display()),
        format!("type=tar,dest={}", flat.display()),
    ];
    let id = built(&k, &outputs.iter().map(String::as_str).collect::<Vec<_>>());
    let stored = k.inspect("out:v1");

    // The OCI archive, found by the -t name: the image's config, its layers
    // (plain tars in the store) gzipped on the way out.
    let spec = format!("oci-archive:{}:out:v1", path(&oci));
    let inspect: Value = serde_json::from_str(&tool("skopeo", &["inspect", &spec])).unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 4);
    assert_eq!(layer_mime_types(&spec), ["application/vnd.oci.image.layer.v1.tar+gzip"; 4]);
    assert_eq!(config_digest(&spec), stored["Id"].as_str().unwrap());
    tool(
        "skopeo",
        &["copy", &format!("oci-archive:{}:out:v1", path(&oci)), &format!("dir:{}", path(&d.join("skopeo-oci")))],
    );
    let layout = d.join("layout");
    fs::create_dir(&layout).unwrap();
    tool("tar", &["-C", path(&layout), "-xf", path(&oci)]);
    let bundle = d.join("bundle");
    tool("umoci", &["unpack", "--rootless", "--image", &format!("{}:out:v1", path(&layout)), path(&bundle)]);
    assert_eq!(fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(), "hello\n");
    assert!(!bundle.join("rootfs/bin/ls").exists() && !bundle.join("rootfs/d/x").exists());

    // The docker archive: skopeo reads it, and it has docker load's layout:
    // manifest.json naming a config that hashes to the image ID and layer
    // tars that hash to the config's diffIDs.
    let inspect: Value =
        serde_json::from_str(&tool("skopeo", &["inspect", &format!("docker-archive:{}", path(&docker))])).unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 4, "{inspect}");
    tool(
        "skopeo",
        &["copy", &format!("docker-archive:{}", path(&docker)), &format!("dir:{}", path(&d.join("skopeo-docker")))],
    );
    let saved = d.join("saved");
    fs::create_dir(&saved).unwrap();
    tool("tar", &["-C", path(&saved), "-xf", path(&docker)]);
    let manifest: Value = serde_json::from_slice(&fs::read(saved.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["out:v1"]));
    let config = fs::read(saved.join(manifest[0]["Config"].as_str().unwrap())).unwrap();
    assert_eq!(sha256(&config), id);
    let config: Value = serde_json::from_slice(&config).unwrap();
    let layers: Vec<String> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| sha256(&fs::read(saved.join(l.as_str().unwrap())).unwrap()))
        .collect();
    assert_eq!(serde_json::json!(layers), config["rootfs"]["diff_ids"]);
    let repositories: Value = serde_json::from_slice(&fs::read(saved.join("repositories")).unwrap()).unwrap();
    assert!(repositories["out"]["v1"].is_string(), "{repositories}");

    // Both load back into kiln, as the same image, and run.
    for archive in [&oci, &docker] {
        let other = Kiln::empty();
        other.cmd(&["load", "-i", path(archive)]).ok();
        assert_eq!(other.inspect("out:v1")["Id"], stored["Id"], "{}", archive.display());
        assert_eq!(other.cmd(&["run", "out:v1"]).ok().stdout, "hello\n");
    }

    // The filesystem, as files and as a tar, is what a container sees.
    let seen = seen_by_run(&k, "out:v1");
    assert_eq!(listing(&local), seen);
    assert_eq!(fs::read_to_string(local.join("d/y")).unwrap(), "y\n");
    let unpacked = d.join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    tool("tar", &["-C", path(&unpacked), "-xf", path(&flat)]);
    assert_eq!(listing(&unpacked), seen);
    let in_tar = tool("tar", &["-tvf", path(&flat)]);
    assert!(!in_tar.contains(".wh."), "{in_tar}");
    k.assert_clean();
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[test]
fn without_type_image_the_names_go_to_the_archive_not_the_store() {
    let k = Kiln::with_busybox();
    let oci = k.dir.path().join("only.tar");
    built(&k, &[&format!("type=oci,dest={}", oci.display())]);
    // Kept in the store (a build's result always is), but not named there.
    assert_eq!(k.image_names(), ["busybox:latest", "<none>:<none>"]);
    let other = Kiln::empty();
    assert!(other.cmd(&["load", "-i", path(&oci)]).ok().stdout.contains("out:v1"));
}

#[test]
fn save_and_load_round_trip_with_equal_image_ids() {
    let k = Kiln::with_busybox();
    built(&k, &[]);
    k.cmd(&["tag", "out:v1", "out:other"]).ok();
    let stored = k.inspect("out:v1");
    for format in ["docker", "oci"] {
        let archive = k.dir.path().join(format!("{format}.tar"));
        k.cmd(&["save", "--format", format, "-o", path(&archive), "out:v1", "out:other", "busybox"]).ok();
        let other = Kiln::empty();
        let loaded = other.cmd(&["load", "-i", path(&archive)]).ok().stdout;
        for name in ["out:v1", "out:other", "busybox:latest"] {
            assert!(loaded.contains(name), "{format}: {loaded}");
        }
        let back = other.inspect("out:v1");
        assert_eq!(back["Id"], stored["Id"], "{format}");
        assert_eq!(back["Config"], stored["Config"], "{format}");
        if format == "oci" {
            // Layers gzipped on the way out: the manifest is the archive's, not the store's.
            let spec = format!("oci-archive:{}:out:other", path(&archive));
            let inspect: Value = serde_json::from_str(&tool("skopeo", &["inspect", &spec])).unwrap();
            assert_eq!(back["Digest"], inspect["Digest"]);
            assert_ne!(back["Digest"], stored["Digest"]);
            assert!(layer_mime_types(&spec).iter().all(|t| t.ends_with("+gzip")));
        } else {
            tool("skopeo", &["inspect", &format!("docker-archive:{}:out:other", path(&archive))]);
        }
        assert_eq!(other.cmd(&["run", "out:other"]).ok().stdout, "hello\n");
    }
    // Docker's default format, to standard output.
    let out = k.command().args(["save", "out:v1"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = tar::Archive::new(&out.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect::<Vec<_>>();
    assert!(listed.contains(&"manifest.json".to_owned()), "{listed:?}");
    let err = k.cmd(&["save", "-o", path(&k.dir.path().join("x.tar")), "nosuch:1"]).failed();
    assert!(err.stderr.contains("nosuch"), "{}", err.stderr);
    assert!(!k.dir.path().join("x.tar").exists());
}

#[test]
fn iidfile_and_metadata_file_say_what_was_built() {
    let k = Kiln::with_busybox();
    let (iid, meta) = (k.dir.path().join("iid"), k.dir.path().join("meta.json"));
    k.write("Dockerfile", "FROM busybox\nENV A=1\n");
    let out = k.build(&["-t", "meta:v1", "--iidfile", path(&iid), "--metadata-file", path(&meta)]).ok();
    let stored = k.inspect("meta:v1");
    assert_eq!(fs::read_to_string(&iid).unwrap(), out.stdout.trim());
    assert_eq!(fs::read_to_string(&iid).unwrap(), stored["Id"].as_str().unwrap());
    let m: Value = serde_json::from_slice(&fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.digest"], stored["Digest"]);
    assert_eq!(m["containerimage.config.digest"], stored["Id"]);
    assert_eq!(m["containerimage.descriptor"]["digest"], stored["Digest"]);
    assert_eq!(m["containerimage.descriptor"]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let manifest_size = serde_json::to_vec(&stored["Manifest"]).unwrap().len();
    assert!(m["containerimage.descriptor"]["size"].as_u64().unwrap() >= manifest_size as u64 - 8, "{m}");
    assert_eq!(m["image.name"], "docker.io/library/meta:v1");
}

#[test]
fn history_shows_each_step_with_the_size_of_its_layer() {
    let k = Kiln::with_busybox();
    let id = built(&k, &[]);
    let out = k.cmd(&["history", "out:v1"]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY") && lines[0].contains("COMMENT"), "{out}");
    // Newest first: CMD, RUN, RUN, COPY, ENV, then busybox's import.
    let rows: Vec<Vec<&str>> =
        lines[1..].iter().map(|l| l.split("   ").filter(|c| !c.is_empty()).map(str::trim).collect()).collect();
    assert_eq!(rows.len(), 6, "{out}");
    assert_eq!(rows[0][0], &id["sha256:".len().."sha256:".len() + 12]);
    assert!(rows[1..].iter().all(|r| r[0] == "<missing>"), "{out}");
    for (row, step, layer) in
        [(0, "CMD", false), (1, "RUN", true), (2, "RUN", true), (3, "COPY", true), (4, "ENV", false)]
    {
        let r = &rows[row];
        assert!(r[2].starts_with(step), "row {row}: {r:?}");
        assert!(r[1].ends_with(" ago"), "row {row}: {r:?}");
        assert_eq!(r[3] != "0B", layer, "row {row}: {r:?}");
    }
    assert_eq!(rows[3][3], "6B", "COPY of a 6-byte file: {out}");
    // Long commands are cut unless --no-trunc.
    assert!(rows[2][2].ends_with('…') && rows[2][2].chars().count() == 45, "{out}");
    let whole = k.cmd(&["history", "--no-trunc", "out:v1"]).ok().stdout;
    assert!(whole.contains("echo made > /made && rm /bin/ls && mkdir -p /d && echo x > /d/x"), "{whole}");
    assert!(whole.contains(&id), "{whole}");
    let json = k.cmd(&["history", "--format", "json", "out:v1"]).ok().stdout;
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["Size"], "0B");
    assert!(first["CreatedBy"].as_str().unwrap().starts_with("CMD"), "{first}");
}

/// A `docker save` archive of one image of two layers, `lower` then `upper`.
fn two_layer_archive(path: &Path, name: &str, lower: &[u8], upper: &[u8]) {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(lower), sha256(upper)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": [name], "Layers": ["0/layer.tar", "1/layer.tar"]}
    ]))
    .unwrap();
    let mut tar = tar::Builder::new(fs::File::create(path).unwrap());
    for (entry, bytes) in
        [("manifest.json", &manifest[..]), ("config.json", &config), ("0/layer.tar", lower), ("1/layer.tar", upper)]
    {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, entry, bytes).unwrap();
    }
    tar.finish().unwrap();
}

/// A layer tar of (name, kind, link target), names written as given.
fn raw_layer(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        let data: &[u8] = if *kind == tar::EntryType::Regular { b"evil" } else { b"" };
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn a_hostile_image_exported_as_files_writes_nothing_outside_the_folder() {
    use tar::EntryType::{Regular, Symlink};
    let k = Kiln::empty();
    // Each layer extracts safely on its own, so `load` takes it; only stacked
    // does the upper one reach through the lower one's symlink.
    let outside = k.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("victim"), "safe").unwrap();
    let lower = raw_layer(&[("a", Symlink, path(&outside)), ("up", Symlink, "..")]);
    for (case, upper) in [
        ("a file through a lower symlink", raw_layer(&[("a/evil", Regular, "")])),
        ("a whiteout through a lower symlink", raw_layer(&[("a/.wh.victim", Regular, "")])),
        ("an opaque marker through a lower symlink", raw_layer(&[("a/.wh..wh..opq", Regular, "")])),
        ("a file through a relative symlink", raw_layer(&[("up/outside/evil", Regular, "")])),
    ] {
        let archive = k.dir.path().join("hostile.tar");
        two_layer_archive(&archive, "hostile:1", &lower, &upper);
        k.cmd(&["load", "-i", path(&archive)]).ok();
        let dest = k.dir.path().join("dest");
        k.write("Dockerfile", "FROM hostile:1\n");
        let out = k.build(&["-o", &format!("type=local,dest={}", dest.display())]).failed();
        assert!(out.stderr.contains("symlink"), "{case}: {}", out.stderr);
        assert_eq!(fs::read_to_string(outside.join("victim")).unwrap(), "safe", "{case}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1, "{case}");
        assert!(!dest.exists(), "{case}");
        let beside: Vec<PathBuf> = fs::read_dir(k.dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert!(
            !beside.iter().any(|p| p.file_name().unwrap().to_string_lossy().starts_with(".dest")),
            "{case}: {beside:?}"
        );
        k.assert_clean();
    }
}

#[test]
fn a_failed_export_or_build_leaves_nothing_behind() {
    let k = Kiln::with_busybox();
    // A full disk half-way through: a 64 KiB tmpfs, in a mount namespace of
    // the test's own, takes the start of each output and no more.
    let full = k.dir.path().join("full");
    fs::create_dir(&full).unwrap();
    built(&k, &[]);
    for output in ["type=oci,dest=D/x.tar", "type=docker,dest=D/x.tar", "type=tar,dest=D/x.tar", "type=local,dest=D/x"]
    {
        let output = output.replace('D', path(&full));
        let script = format!(
            "mount -t tmpfs -o size=64k tmpfs {full} && {kiln} --root {root} build -o {output} {ctx}; \
             code=$?; ls -A {full}; exit $code",
            full = path(&full),
            kiln = super::harness::kiln_bin(),
            root = path(&k.root()),
            ctx = path(&k.ctx()),
        );
        let out =
            Command::new("unshare").args(["-m", "--propagation", "private", "sh", "-c", &script]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{output}: the export should not fit: {stdout}");
        assert!(stderr.contains("No space left"), "{output}: {stderr}");
        // The build's own line (the image ID) would be the first; `ls -A` printed nothing.
        assert!(!stdout.lines().any(|l| l.starts_with("x") || l.starts_with(".x")), "{output} left {stdout}");
    }
    // A build that fails writes none of its outputs.
    k.write("Dockerfile", "FROM busybox\nRUN exit 3\n");
    let oci = k.dir.path().join("never.tar");
    k.build(&["-o", &format!("type=oci,dest={}", oci.display())]).failed();
    assert!(!oci.exists());
    // Nor does one whose output cannot be written, and it says so before any work.
    k.write("Dockerfile", "FROM busybox\nRUN echo ran > /ran\n");
    let out = k.build(&["-o", &format!("type=oci,dest={}", path(&k.dir.path().join("no/such/dir/x.tar")))]).failed();
    assert!(!out.stderr.contains("echo ran"), "{}", out.stderr);
    assert!(out.stderr.contains("no/such/dir"), "{}", out.stderr);
    let nonempty = k.dir.path().join("nonempty");
    fs::create_dir(&nonempty).unwrap();
    fs::write(nonempty.join("mine"), "mine").unwrap();
    let out = k.build(&["-o", &format!("type=local,dest={}", nonempty.display())]).failed();
    assert!(out.stderr.contains("not empty"), "{}", out.stderr);
    assert_eq!(fs::read_dir(&nonempty).unwrap().count(), 1);
    k.assert_clean();
}

/// The layers' media types of the manifest skopeo reads at `spec`.
fn layer_mime_types(spec: &str) -> Vec<String> {
    let raw: Value = serde_json::from_str(&tool("skopeo", &["inspect", "--raw", spec])).unwrap();
    raw["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap().to_owned()).collect()
}

/// The config digest (image ID) of the image skopeo reads at `spec`.
fn config_digest(spec: &str) -> String {
    let raw: Value = serde_json::from_str(&tool("skopeo", &["inspect", "--raw", spec])).unwrap();
    raw["config"]["digest"].as_str().unwrap().to_owned()
}

#[test]
fn save_and_output_compress_with_zstd_when_asked_and_reuse_the_compressed_layers() {
    let k = Kiln::with_busybox();
    built(&k, &[]);
    let stored = k.inspect("out:v1");
    let zstd = k.dir.path().join("z.tar");
    k.cmd(&["save", "--format", "oci", "--compression", "zstd", "-o", path(&zstd), "out:v1"]).ok();
    let spec = format!("oci-archive:{}:out:v1", path(&zstd));
    let inspect: Value = serde_json::from_str(&tool("skopeo", &["inspect", &spec])).unwrap();
    assert!(layer_mime_types(&spec).iter().all(|t| t.ends_with("+zstd")));
    assert_eq!(config_digest(&spec), stored["Id"].as_str().unwrap());
    let other = Kiln::empty();
    other.cmd(&["load", "-i", path(&zstd)]).ok();
    assert_eq!(other.cmd(&["run", "out:v1"]).ok().stdout, "hello\n");

    // -o type=oci,compression=zstd names the same blobs: made once, recorded.
    let records = fs::read_dir(k.root().join("compressed")).unwrap().count();
    let out = k.dir.path().join("o.tar");
    let spec_o = format!("type=oci,dest={},compression=zstd", path(&out));
    k.build(&["-t", "out:v1", "-o", &spec_o]).ok();
    assert_eq!(fs::read_dir(k.root().join("compressed")).unwrap().count(), records);
    let again: Value =
        serde_json::from_str(&tool("skopeo", &["inspect", &format!("oci-archive:{}:out:v1", path(&out))])).unwrap();
    assert_eq!(again["Digest"], inspect["Digest"], "the same compressed layers, the same manifest");

    let bad = k.build(&["-o", &format!("type=oci,dest={},compression=lz4", path(&out))]).failed();
    assert!(bad.stderr.contains("compression is gzip or zstd"), "{}", bad.stderr);
}
