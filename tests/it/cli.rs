//! The command line as docker users expect it: the container's arguments are
//! the container's, a closed stdout is no crash, and an image ID is a name.

use std::process::{Command, Stdio};

use super::harness::{Kiln, Run};

/// `kiln ARGS` with its stdout a pipe whose reader has already gone, as in
/// `kiln images | head -0`.
fn with_closed_stdout(k: &Kiln, args: &[&str]) -> Run {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = k.command().args(args).stdout(writer).stderr(Stdio::piped()).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[test]
fn arguments_after_the_image_belong_to_the_container() {
    let k = Kiln::with_busybox();
    // An image whose ENTRYPOINT takes flags, as `curl` or `git` images do.
    k.write("Dockerfile", "FROM busybox\nENTRYPOINT [\"printf\", \"[%s]\"]\n");
    k.build(&["-t", "args:v1"]).ok();
    assert_eq!(k.cmd(&["run", "args:v1", "-e", "x"]).ok().stdout, "[-e][x]");
    assert_eq!(
        k.cmd(&["run", "-e", "A=1", "args:v1", "-w", "/x", "--rm", "--help"]).ok().stdout,
        "[-w][/x][--rm][--help]"
    );
    let out = k.cmd(&["run", "busybox", "sh", "-c", "printf '[%s]' \"$@\"", "_", "-e", "x"]).ok();
    assert_eq!(out.stdout, "[-e][x]");
    let out = k.cmd(&["run", "-e", "A=1", "busybox", "sh", "-c", "echo $A"]).ok();
    assert_eq!(out.stdout, "1\n");
}

#[test]
fn a_closed_stdout_ends_kiln_quietly() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN echo built > /f\n");
    let ctx = k.ctx();
    for args in
        [&["images"][..], &["inspect", "busybox"], &["build", "-t", "x:1", ctx.to_str().unwrap()], &["rmi", "x:1"]]
    {
        let out = with_closed_stdout(&k, args);
        assert_eq!((out.code, out.stderr.contains("panicked")), (0, false), "{args:?}:\n{}", out.stderr);
    }
    // `kiln run`'s stdout is the container's: the copy stops, the container gets
    // its SIGPIPE as in a shell pipeline, and kiln reports its status.
    let out = with_closed_stdout(&k, &["run", "busybox", "yes"]);
    assert_eq!(out.code, 128 + 13, "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    k.assert_clean();
}

#[test]
fn an_image_id_names_the_image_everywhere() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN echo unnamed > /f\nCMD [\"cat\", \"/f\"]\n");
    // Built without -t: kept, listed as <none>, and named by what build printed.
    let id = k.build(&[]).ok().stdout.trim().to_owned();
    let hex = id.strip_prefix("sha256:").unwrap_or_else(|| panic!("build printed {id:?}"));
    let images = k.cmd(&["images"]).ok().stdout;
    let unnamed: Vec<&str> = images.lines().filter(|l| l.starts_with("<none> ")).collect();
    assert_eq!(unnamed.len(), 1, "{images}");
    assert_eq!(unnamed[0].split_whitespace().take(3).collect::<Vec<_>>(), ["<none>", "<none>", &hex[..12]]);
    assert_eq!(k.inspect(&id)["Id"], id.as_str());
    for name in [id.as_str(), hex, &hex[..12], &hex[..4], &format!("sha256:{}", &hex[..8])] {
        assert_eq!(k.cmd(&["run", "--rm", name]).ok().stdout, "unnamed\n", "run {name}");
    }
    // FROM takes an ID too.
    k.write("Dockerfile", &format!("FROM {}\nRUN cat /f > /g\nCMD [\"cat\", \"/g\"]\n", &hex[..12]));
    k.build(&["-t", "child:v1"]).ok();
    assert_eq!(k.cmd(&["run", "child:v1"]).ok().stdout, "unnamed\n");
    // So does inspect; tag names the unnamed image, which is then no longer <none>.
    let busybox_id = k.inspect("busybox")["Id"].as_str().unwrap().to_owned();
    assert_eq!(k.inspect(&busybox_id[7..19])["Name"], "busybox:latest");
    k.cmd(&["tag", &hex[..12], "named:v1"]).ok();
    assert!(!k.cmd(&["images"]).ok().stdout.contains("<none>"));
    assert_eq!(k.cmd(&["rmi", &hex[..12]]).ok().stdout, "Untagged: named:v1\n");
    k.cmd(&["inspect", &id]).failed();
    // A prefix too short to be an ID is a name, and none matches it.
    let out = k.cmd(&["inspect", &hex[..3]]).failed();
    assert!(out.stderr.contains("no image named"), "{}", out.stderr);

    // An unnamed image goes by ID alone; rmi by ID removes it. Tools reading the
    // layout by name are not disturbed by the entry without one.
    k.write("Dockerfile", "FROM busybox\nRUN echo again > /f\n");
    let id = k.build(&[]).ok().stdout.trim().to_owned();
    let layout = format!("oci:{}:child:v1", k.root().join("oci").display());
    let skopeo =
        Command::new("skopeo").args(["inspect", &layout]).output().expect("skopeo is needed (apt-get install skopeo)");
    assert!(skopeo.status.success(), "{}", String::from_utf8_lossy(&skopeo.stderr));
    assert_eq!(k.cmd(&["rmi", &id]).ok().stdout, format!("Removed: {id}\n"));
    assert!(!k.cmd(&["images"]).ok().stdout.contains("<none>"));
}

#[test]
fn the_store_root_comes_from_the_config_file_for_root_and_rootless_users() {
    let k = Kiln::empty();
    let config = k.dir.path().join("config.toml");
    let configured = k.dir.path().join("configured");
    std::fs::write(&config, format!("# kiln's settings\nroot = {:?}\n", configured.to_str().unwrap())).unwrap();
    let kiln = || {
        let mut c = Command::new(super::harness::kiln_bin());
        c.env_remove("KILN_ROOT").env("KILN_CONFIG", &config);
        c
    };
    let out = kiln().arg("images").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(configured.join("oci/index.json").is_file());
    // The flag and the environment come first.
    let flagged = k.dir.path().join("flagged");
    assert!(kiln().arg("--root").arg(&flagged).arg("images").status().unwrap().success());
    assert!(kiln().env("KILN_ROOT", &flagged).arg("images").status().unwrap().success());
    assert!(flagged.join("oci/index.json").is_file());
    // A config file that is named must exist, and hold only what kiln knows.
    std::fs::write(&config, "rooot = \"/typo\"\n").unwrap();
    let out = kiln().arg("images").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not valid"), "{}", String::from_utf8_lossy(&out.stderr));

    // Rootless: the user's own config file applies in kiln's user namespace too.
    let r = Kiln::each_mode_empty().into_iter().nth(1).unwrap();
    let home = r.dir.path().join("home");
    let user_root = r.dir.path().join("user-root");
    std::fs::create_dir_all(home.join(".config/kiln")).unwrap();
    std::fs::write(home.join(".config/kiln/config.toml"), format!("root = {:?}\n", user_root.to_str().unwrap()))
        .unwrap();
    r.give(r.dir.path());
    let out = Command::new("runuser")
        .args(["-u", super::harness::ROOTLESS_USER, "--", "env", &format!("HOME={}", home.display())])
        .args(["XDG_CONFIG_HOME=", "XDG_DATA_HOME=", super::harness::shared_kiln(), "images"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(user_root.join("oci/index.json").is_file(), "the rootless store is not where the user's config puts it");
}
