//! The store is a real OCI layout: other tools read what kiln writes, and kiln
//! reads what they write.

use std::process::Command;

use super::harness::Kiln;

pub(super) fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} is needed for this test (apt-get install {name}): {e}"));
    assert!(out.status.success(), "{name} {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn skopeo_and_umoci_read_the_store_and_docker_save_archives_load() {
    let k = Kiln::with_busybox();
    k.write("hello.txt", "hello\n");
    k.write(
        "Dockerfile",
        "FROM busybox\nCOPY hello.txt /hello.txt\nRUN cp /hello.txt /copy.txt\nCMD [\"cat\", \"/copy.txt\"]\n",
    );
    k.build(&["-t", "interop:v1"]).ok();
    let layout = format!("oci:{}:interop:v1", k.root().join("oci").display());

    let inspect: serde_json::Value = serde_json::from_str(&tool("skopeo", &["inspect", &layout])).unwrap();
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 3, "{inspect}");
    assert_eq!(inspect["Digest"], k.inspect("interop:v1")["Digest"]);
    // Local layers are plain tars (digest == diffID), named so: valid OCI.
    let raw: serde_json::Value = serde_json::from_str(&tool("skopeo", &["inspect", "--raw", &layout])).unwrap();
    let types: Vec<&str> = raw["layers"].as_array().unwrap().iter().map(|l| l["mediaType"].as_str().unwrap()).collect();
    assert_eq!(types, ["application/vnd.oci.image.layer.v1.tar"; 3], "{raw}");

    // skopeo copies (and so verifies) every blob.
    let out = k.dir.path().join("copied");
    tool("skopeo", &["copy", &layout, &format!("dir:{}", out.display())]);
    assert!(out.join("manifest.json").is_file());

    // umoci unpacks the layers into a runtime bundle.
    let bundle = k.dir.path().join("bundle");
    let image = format!("{}:interop:v1", k.root().join("oci").display());
    tool("umoci", &["unpack", "--rootless", "--image", &image, bundle.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(bundle.join("rootfs/copy.txt")).unwrap(), "hello\n");

    // A docker-save archive of the image loads back (into another store) and runs.
    let archive = k.dir.path().join("saved.tar");
    tool("skopeo", &["copy", &layout, &format!("docker-archive:{}:saved:v1", archive.display())]);
    let other = Kiln::empty();
    let loaded = other.cmd(&["load", "-i", archive.to_str().unwrap()]).ok();
    assert!(loaded.stdout.contains("saved:v1"), "{}", loaded.stdout);
    assert_eq!(other.cmd(&["run", "saved:v1"]).ok().stdout, "hello\n");

    // And so does an OCI layout archive, from standard input.
    let oci_tar = k.dir.path().join("oci.tar");
    tool("skopeo", &["copy", &layout, &format!("oci-archive:{}:ociname:v2", oci_tar.display())]);
    let third = Kiln::empty();
    let status = Command::new(super::harness::KILN)
        .args(["--root", third.root().to_str().unwrap(), "load"])
        .stdin(std::fs::File::open(&oci_tar).unwrap())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert_eq!(third.cmd(&["run", "ociname:v2"]).ok().stdout, "hello\n");
}

/// A `docker save` archive of busybox whose config sets what no kiln
/// instruction sets yet (Volumes, StopSignal), written by hand.
fn rich_docker_save(dir: &std::path::Path) -> std::path::PathBuf {
    let config = serde_json::json!({
        "config": {"Env": ["PATH=/bin"], "Volumes": {"/data": {}}, "StopSignal": "SIGINT", "Cmd": ["sh"]},
    });
    let path = dir.join("rich.tar");
    let layer = std::fs::read(super::harness::busybox_tar()).unwrap();
    super::harness::write_docker_save(&path, config, &["richbase:1"], &layer);
    path
}

#[test]
fn a_base_images_volumes_and_stop_signal_are_inherited_and_ports_expand() {
    let k = Kiln::empty();
    let archive = rich_docker_save(k.dir.path());
    k.cmd(&["load", "-i", archive.to_str().unwrap()]).ok();
    k.write("Dockerfile", "FROM richbase:1\nEXPOSE 8000-8001 9090:80/udp\nENV X=1\n");
    k.build(&["-t", "rich:v1"]).ok();
    let c = k.inspect("rich:v1")["Config"]["config"].clone();
    assert!(c["Volumes"].get("/data").is_some(), "{c}");
    assert_eq!(c["StopSignal"], "SIGINT");
    let ports: Vec<&String> = c["ExposedPorts"].as_object().unwrap().keys().collect();
    assert_eq!(ports, ["80/udp", "8000/tcp", "8001/tcp"]);
    assert_eq!(c["Env"], serde_json::json!(["PATH=/bin", "X=1"]));
}
