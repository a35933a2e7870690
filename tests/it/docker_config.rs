//! docker's image config fields beyond OCI's (Healthcheck, Shell, OnBuild,
//! author): written into kiln's images as BuildKit writes them, and read back
//! from base images.

use serde_json::{json, Value};

use super::harness::Kiln;
use super::interop::tool;

/// A `docker save` archive of busybox, named `dockerbase:1`, whose config
/// sets docker's fields, and `extra` merged into its `config`.
fn docker_base(k: &Kiln, extra: Value) -> std::path::PathBuf {
    let mut config = json!({
        "author": "Jane <jane@example.com>",
        "config": {
            "Env": ["PATH=/bin"],
            "Cmd": ["sh"],
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64, "Retries": 2},
            "Shell": ["/bin/sh", "-ec"],
            "StopSignal": "SIGQUIT",
            "Volumes": {"/data": {}},
            "OnBuild": null,
        },
    });
    if let (Some(c), Value::Object(extra)) = (config["config"].as_object_mut(), extra) {
        c.extend(extra);
    }
    let path = k.dir.path().join("dockerbase.tar");
    let layer = std::fs::read(super::harness::busybox_tar()).unwrap();
    super::harness::write_docker_save(&path, config, &["dockerbase:1"], &layer);
    path
}

#[test]
fn a_base_images_docker_fields_are_inherited_and_written_back() {
    let k = Kiln::empty();
    let archive = docker_base(&k, json!({}));
    k.cmd(&["load", "-i", archive.to_str().unwrap()]).ok();
    k.write("Dockerfile", "FROM dockerbase:1\nENV X=1\n");
    k.build(&["-t", "inherits:v1"]).ok();

    let v = k.inspect("inherits:v1");
    let c = &v["Config"]["config"];
    assert_eq!(c["Healthcheck"], json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64, "Retries": 2}));
    assert_eq!(c["Shell"], json!(["/bin/sh", "-ec"]));
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert!(c["Volumes"].get("/data").is_some(), "{c}");
    assert!(c.get("OnBuild").is_none(), "{c}");
    assert_eq!(v["Config"]["author"], "Jane <jane@example.com>");

    // The stored config itself carries them, as other tools read it.
    let layout = format!("oci:{}:inherits:v1", k.root().join("oci").display());
    let raw: Value = serde_json::from_str(&tool("skopeo", &["inspect", "--config", &layout])).unwrap();
    assert_eq!(raw["config"]["Healthcheck"], c["Healthcheck"]);
    assert_eq!(raw["config"]["Shell"], c["Shell"]);
    assert_eq!(raw["author"], "Jane <jane@example.com>");
}
