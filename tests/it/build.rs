//! What a build produces: layers that are exactly the changes, RUN's sandbox,
//! multi-stage builds, .dockerignore.

use super::harness::Kiln;

#[test]
fn run_layers_hold_exactly_the_changeset() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN mkdir -p /data/sub && echo one > /data/keep && echo two > /data/gone && echo x > /data/sub/f\n\
         RUN echo changed > /data/keep && rm /data/gone && rm -r /data/sub && echo new > /data/added\n",
    );
    k.build(&["-t", "change:v1"]).ok();
    let layers = k.layers("change:v1");
    assert_eq!(layers.len(), 3, "{layers:?}");
    let sorted = |l: &[String]| {
        let mut l = l.to_vec();
        l.sort();
        l
    };
    assert_eq!(sorted(&layers[1]), ["data/", "data/gone", "data/keep", "data/sub/", "data/sub/f"]);
    assert_eq!(sorted(&layers[2]), ["data/", "data/.wh.gone", "data/.wh.sub", "data/added", "data/keep"]);
    assert_eq!(k.file_in_top_layer("change:v1", "data/keep").as_deref(), Some("changed\n"));

    let out = k.cmd(&["run", "change:v1", "sh", "-c", "ls /data; cat /data/keep"]).ok();
    assert_eq!(out.stdout, "added\nkeep\nchanged\n");
    k.assert_clean();
}

#[test]
fn run_sees_its_own_pid_namespace_hostname_env_workdir_and_user() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\n\
         ENV GREETING=hello\n\
         WORKDIR /work/dir\n\
         RUN echo \"pid=$$ procs=$(ls /proc | grep -c '^[0-9]')\" > /pids && hostname > /host && echo \"$GREETING\" > /env && pwd > /cwd\n\
         USER nobody\n\
         RUN id -u > /tmp/uid\n",
    );
    k.build(&["-t", "iso:v1"]).ok();
    let out = k.cmd(&["run", "iso:v1", "cat", "/pids", "/host", "/env", "/cwd", "/tmp/uid"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    // PID 1 is kiln's init; the shell is its child (pid 2), and of the host's
    // processes none is visible: only the shell's own children.
    let procs: usize = lines[0].split("procs=").nth(1).unwrap().parse().unwrap();
    assert!(lines[0].starts_with("pid=2 "), "{}", lines[0]);
    assert!(procs <= 8, "saw {procs} processes: {}", lines[0]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(lines[1], host.trim());
    assert_eq!(&lines[2..], ["hello", "/work/dir", "65534"]);
}

#[test]
fn a_failing_run_fails_the_build_and_names_the_command() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN echo first line && echo oops >&2 && exit 3\nRUN echo never\n");
    let out = k.build(&["-t", "fail:v1"]).failed();
    assert!(out.stderr.contains("echo first line && echo oops >&2 && exit 3"), "{}", out.stderr);
    assert!(out.stderr.contains("exit code: 3"), "{}", out.stderr);
    assert!(out.stderr.contains("Dockerfile:2: build failed"), "the step's line is named: {}", out.stderr);
    assert!(out.stderr.contains("| oops"), "the output tail is shown: {}", out.stderr);
    assert!(!out.stderr.contains("never"), "{}", out.stderr);
    assert!(!k.image_names().contains(&"fail:v1".to_string()));
    k.assert_clean();
}

#[test]
fn two_stage_build_keeps_only_the_target_stage_layers() {
    let k = Kiln::with_busybox();
    k.write("src/main.txt", "source\n");
    k.write(
        "Dockerfile",
        "FROM busybox AS builder\n\
         COPY src /src\n\
         RUN mkdir /out && tr a-z A-Z < /src/main.txt > /out/app && echo junk > /junk\n\
         \n\
         FROM busybox\n\
         COPY --from=builder /out/app /usr/local/bin/app\n\
         CMD [\"cat\", \"/usr/local/bin/app\"]\n",
    );
    k.build(&["-t", "multi:v1"]).ok();
    let layers = k.layers("multi:v1");
    assert_eq!(layers.len(), 2, "base + one COPY: {layers:?}");
    // The busybox base has no /usr: COPY creates the missing parents.
    assert_eq!(layers[1], ["usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/app"]);
    let out = k.cmd(&["run", "multi:v1"]).ok();
    assert_eq!(out.stdout, "SOURCE\n");

    // --target builds the first stage instead.
    k.build(&["-t", "multi:builder", "--target", "builder"]).ok();
    assert_eq!(k.layers("multi:builder").len(), 3);
}

#[test]
fn dockerignore_keeps_files_out_of_copy() {
    let k = Kiln::with_busybox();
    k.write("app/a.txt", "a").write("app/b.log", "b").write("app/keep.log", "k").write("secret.env", "s");
    k.write(".dockerignore", "# comment\n**/*.log\n!app/keep.log\nsecret.env\n");
    k.write("Dockerfile", "FROM busybox\nCOPY . /ctx/\n");
    k.build(&["-t", "ign:v1"]).ok();
    let layers = k.layers("ign:v1");
    let top = &layers[1];
    assert!(top.contains(&"ctx/app/a.txt".to_string()), "{top:?}");
    assert!(top.contains(&"ctx/app/keep.log".to_string()), "{top:?}");
    assert!(top.contains(&"ctx/Dockerfile".to_string()), "{top:?}");
    assert!(!top.iter().any(|p| p.contains("b.log") || p.contains("secret")), "{top:?}");
}

#[test]
fn image_config_carries_the_stage_metadata() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\nARG V=1\nENV A=x B=\"y z\"\nWORKDIR /srv\nUSER nobody\nLABEL version=$V\nEXPOSE 8080 53/udp\nENTRYPOINT [\"/bin/echo\"]\nCMD [\"hi\"]\n",
    );
    k.build(&["-t", "meta:v1", "--build-arg", "V=2"]).ok();
    let v = k.inspect("meta:v1");
    let c = &v["Config"]["config"];
    // The imported base sets no PATH: the stage gets docker's default first.
    assert_eq!(
        c["Env"],
        serde_json::json!(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=x", "B=y z"])
    );
    assert_eq!(c["WorkingDir"], "/srv");
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["Labels"]["version"], "2");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/echo"]));
    assert_eq!(c["Cmd"], serde_json::json!(["hi"]));
    assert!(c["ExposedPorts"].get("8080/tcp").is_some() && c["ExposedPorts"].get("53/udp").is_some(), "{c}");
    let history = v["Config"]["history"].as_array().unwrap();
    assert!(history.iter().any(|h| h["created_by"].as_str().unwrap_or("").starts_with("ENV")), "{history:?}");
    assert_eq!(k.cmd(&["run", "meta:v1"]).ok().stdout, "hi\n");
    assert_eq!(k.cmd(&["run", "meta:v1", "a", "b"]).ok().stdout, "a b\n");
}

#[test]
fn steps_that_make_the_same_layer_stack_fine() {
    // Two RUNs that change nothing make equal (empty) layers; so do the two
    // writes of the same content: the overlay must not list a snapshot twice.
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\nRUN true\nRUN true\nRUN echo 1 > /f\nRUN echo 2 > /f\nRUN echo 1 > /f\nRUN cat /f > /g\n",
    );
    k.build(&["-t", "same:v1"]).ok();
    assert_eq!(k.cmd(&["run", "same:v1", "cat", "/f", "/g"]).ok().stdout, "1\n1\n");
}

#[test]
fn platform_args_reach_run() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\nARG TARGETARCH\nARG TARGETPLATFORM\nRUN echo $TARGETPLATFORM $TARGETARCH > /p\n",
    );
    k.build(&["-t", "plat:v1"]).ok();
    let out = k.cmd(&["run", "plat:v1", "cat", "/p"]).ok().stdout;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(out, format!("linux/{arch} {arch}\n"));
}
