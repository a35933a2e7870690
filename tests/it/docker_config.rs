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
            "ArgsEscaped": true,
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
    assert_eq!(c["ArgsEscaped"], true);
    assert_eq!(v["Config"]["author"], "Jane <jane@example.com>");

    // The stored config itself carries them, as other tools read it.
    let layout = format!("oci:{}:inherits:v1", k.root().join("oci").display());
    let raw: Value = serde_json::from_str(&tool("skopeo", &["inspect", "--config", "--raw", &layout])).unwrap();
    assert_eq!(raw["config"]["Healthcheck"], c["Healthcheck"]);
    assert_eq!(raw["config"]["Shell"], c["Shell"]);
    assert_eq!(raw["config"]["ArgsEscaped"], true);
    assert_eq!(raw["author"], "Jane <jane@example.com>");
}

#[test]
fn dockerfile_instructions_write_dockers_fields() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\n\
         MAINTAINER Jane <jane@example.com>\n\
         HEALTHCHECK --interval=30s --timeout=5s --start-period=1m --start-interval=2s --retries=4 CMD [\"true\"]\n\
         SHELL [\"/bin/sh\", \"-xc\"]\n\
         STOPSIGNAL SIGUSR1\n\
         VOLUME /data /cache\n\
         ONBUILD RUN echo child > /child\n\
         ONBUILD ENV CHILD=1\n",
    );
    k.build(&["-t", "fields:v1"]).ok();
    let v = k.inspect("fields:v1");
    let c = &v["Config"]["config"];
    assert_eq!(
        c["Healthcheck"],
        json!({
            "Test": ["CMD", "true"],
            "Interval": 30_000_000_000u64,
            "Timeout": 5_000_000_000u64,
            "StartPeriod": 60_000_000_000u64,
            "StartInterval": 2_000_000_000u64,
            "Retries": 4,
        })
    );
    assert_eq!(c["Shell"], json!(["/bin/sh", "-xc"]));
    assert_eq!(c["StopSignal"], "SIGUSR1");
    assert_eq!(c["OnBuild"], json!(["RUN echo child > /child", "ENV CHILD=1"]));
    let volumes: Vec<&String> = c["Volumes"].as_object().unwrap().keys().collect();
    assert_eq!(volumes, ["/cache", "/data"]);
    assert_eq!(v["Config"]["author"], "Jane <jane@example.com>");
    let layout = format!("oci:{}:fields:v1", k.root().join("oci").display());
    let raw: Value = serde_json::from_str(&tool("skopeo", &["inspect", "--config", "--raw", &layout])).unwrap();
    assert_eq!(raw["config"]["OnBuild"], c["OnBuild"]);
    assert_eq!(raw["config"]["Healthcheck"], c["Healthcheck"]);
    // BuildKit sets ArgsEscaped with CMD only; there is none here.
    assert!(raw["config"].get("ArgsEscaped").is_none(), "{raw}");

    // Built on, the image runs its triggers first, and its child has none.
    k.write("Dockerfile", "FROM fields:v1\nRUN echo \"own $CHILD\" > /own\nCMD [\"cat\", \"/own\"]\n");
    let out = k.build(&["-t", "child:v1"]).ok();
    assert!(out.stderr.contains("RUN echo child > /child"), "{}", out.stderr);
    assert_eq!(k.cmd(&["run", "child:v1", "cat", "/child", "/own"]).ok().stdout, "child\nown 1\n");
    let c = k.inspect("child:v1")["Config"]["config"].clone();
    assert!(c.get("OnBuild").is_none(), "{c}");
    assert_eq!(c["Shell"], json!(["/bin/sh", "-xc"]));
    let layout = format!("oci:{}:child:v1", k.root().join("oci").display());
    let raw: Value = serde_json::from_str(&tool("skopeo", &["inspect", "--config", "--raw", &layout])).unwrap();
    assert_eq!(raw["config"]["ArgsEscaped"], true);
    // Its history rows as BuildKit writes them: marked with the frontend's
    // comment, and ` # buildkit` after a step that ran.
    let rows: Vec<(&str, &str)> = raw["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(2)
        .map(|h| (h["created_by"].as_str().unwrap(), h["comment"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        rows,
        [
            (r#"CMD ["cat" "/own"]"#, "buildkit.dockerfile.v0"),
            (r#"RUN /bin/sh -xc echo "own $CHILD" > /own # buildkit"#, "buildkit.dockerfile.v0"),
        ]
    );
}

#[test]
fn a_base_images_triggers_run_and_a_bad_one_is_named() {
    let k = Kiln::empty();
    let archive = docker_base(&k, json!({"OnBuild": ["RUN echo from-base > /t", "WORKDIR /w"]}));
    k.cmd(&["load", "-i", archive.to_str().unwrap()]).ok();
    k.write("Dockerfile", "FROM dockerbase:1\nRUN pwd > /pwd\n");
    k.build(&["-t", "trig:v1"]).ok();
    assert_eq!(k.cmd(&["run", "trig:v1", "cat", "/t", "/pwd"]).ok().stdout, "from-base\n/w\n");

    let archive = docker_base(&k, json!({"OnBuild": ["EXPOSE not-a-port"]}));
    k.cmd(&["load", "-i", archive.to_str().unwrap()]).ok();
    k.write("Dockerfile", "# base with a broken trigger\nFROM dockerbase:1\n");
    let err = k.build(&[]).failed();
    assert!(
        err.stderr.contains(
            "Dockerfile:2:1: ONBUILD trigger \"EXPOSE not-a-port\" inherited from dockerbase:1: invalid port"
        ),
        "{}",
        err.stderr
    );
}

#[test]
fn run_after_volume_keeps_its_changes_as_buildkit_does() {
    // The legacy builder threw away what RUN wrote below a VOLUME; BuildKit
    // mounts no volume while building, so the files stay in the image.
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN mkdir /data && echo before > /data/a\nVOLUME /data\nRUN echo after > /data/b && echo changed > /data/a\nRUN cat /data/a /data/b > /seen\n");
    k.build(&["-t", "vol:v1"]).ok();
    assert_eq!(
        k.cmd(&["run", "vol:v1", "cat", "/data/a", "/data/b", "/seen"]).ok().stdout,
        "changed\nafter\nchanged\nafter\n"
    );
    assert!(k.inspect("vol:v1")["Config"]["config"]["Volumes"].get("/data").is_some());
}
