//! Rootless: an unprivileged user builds and runs images, with kiln mapping that
//! user to root in a user namespace of its own.

use std::process::Command;

use super::harness::{busybox_tar, Kiln, Mode};

const USER: &str = super::harness::ROOTLESS_USER;

fn ensure_user() {
    super::harness::ensure_rootless_user();
}

/// A copy of the kiln binary the test user can run.
fn user_visible_kiln(_dir: &std::path::Path) -> String {
    super::harness::shared_kiln().to_owned()
}

fn as_user(kiln: &str, home: &str, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", USER, "--", "env", &format!("HOME={home}"), "XDG_DATA_HOME=", kiln])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn an_unprivileged_user_builds_and_runs_an_image() {
    ensure_user();
    let home = format!("/home/{USER}");
    let work = tempfile::Builder::new().prefix("kiln-rootless-").tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("msg.txt"), "rootless\n").unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY msg.txt /msg.txt\nRUN id -u > /uid && cat /msg.txt > /copy\nCMD [\"cat\", \"/copy\", \"/uid\"]\n").unwrap();
    let tar = work.path().join("busybox.tar");
    std::fs::copy(busybox_tar(), &tar).unwrap();
    let kiln = user_visible_kiln(work.path());
    // Let the user read what the test (root) wrote.
    Command::new("chmod").args(["-R", "a+rX", work.path().to_str().unwrap()]).status().unwrap();

    let check = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    check(as_user(&kiln, &home, &["import", tar.to_str().unwrap(), "busybox"]));
    check(as_user(&kiln, &home, &["build", "-t", "rootless:v1", ctx.to_str().unwrap()]));
    let out = check(as_user(&kiln, &home, &["run", "--rm", "rootless:v1"]));
    assert_eq!(out, "rootless\n0\n");
    // The default store of an unprivileged user is under its home.
    assert!(std::path::Path::new(&home).join(".local/share/kiln/oci/index.json").is_file());
    let _ = as_user(&kiln, &home, &["rmi", "rootless:v1"]);
}

#[test]
fn a_user_without_subordinate_ids_builds_and_runs_with_a_single_id_map() {
    // nobody has no /etc/subuid range: kiln maps it alone to root.
    let work = tempfile::Builder::new().prefix("kiln-nosub-").tempdir().unwrap();
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN echo made > /made && id -u > /uid\nCMD [\"cat\", \"/made\", \"/uid\"]\n",
    )
    .unwrap();
    let tar = work.path().join("busybox.tar");
    std::fs::copy(busybox_tar(), &tar).unwrap();
    let exe = user_visible_kiln(work.path());
    Command::new("chown").args(["-R", "65534:65534", work.path().to_str().unwrap()]).status().unwrap();
    let root = work.path().join("root");
    let kiln = |args: &[&str]| {
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "env",
                &format!("HOME={}", work.path().display()),
                &exe,
                "--root",
            ])
            .arg(&root)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "kiln {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    kiln(&["import", tar.to_str().unwrap(), "busybox"]);
    kiln(&["build", "-t", "nosub:v1", ctx.to_str().unwrap()]);
    assert_eq!(kiln(&["run", "nosub:v1"]), "made\n0\n");
}

/// `(path, uid, gid)` of every entry of every layer of `image` above its base.
fn owners(k: &Kiln, image: &str) -> Vec<(String, u64, u64)> {
    let v = k.inspect(image);
    let mut all = Vec::new();
    for l in v["Manifest"]["layers"].as_array().unwrap().iter().skip(1) {
        let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
        let blob = std::fs::File::open(k.root().join("oci/blobs/sha256").join(hex)).unwrap();
        let mut archive = tar::Archive::new(blob);
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().trim_end_matches('/').to_owned();
            all.push((path, e.header().uid().unwrap(), e.header().gid().unwrap()));
        }
    }
    all
}

/// A build that adds, changes and deletes files, replaces a folder with
/// another, and makes hard links — within a step and to a base's file.
const CHANGES: &str = "FROM busybox
RUN mkdir -p /d/sub /gone-dir /olddir && echo a > /d/sub/f && echo x > /x && echo y > /gone && \
    echo 1 > /gone-dir/in && echo 1 > /olddir/in && echo k > /keep && ln /keep /keep2
RUN echo changed > /x && rm /gone && rm -rf /gone-dir /olddir && mkdir /olddir && echo 2 > /olddir/new && \
    ln /bin/busybox /bb && touch /d/sub/g && rm /d/sub/f && chmod 700 /d && echo extra >> /etc/passwd
RUN rm -rf /d && echo 3 > /olddir/new3 && ln /olddir/new3 /olddir/new3-link && rm /x && mkdir /x
";

/// Each layer above the base as `kind path [-> link]` lines.
fn listing(k: &Kiln, image: &str) -> Vec<Vec<String>> {
    k.layer_entries(image)
        .into_iter()
        .skip(1)
        .map(|l| l.into_iter().map(|e| format!("{:?} {} {}", e.kind, e.path, e.link.unwrap_or_default())).collect())
        .collect()
}

/// Build [`CHANGES`] with `snapshotter` forced, in a fresh store of `mode`.
fn build_with(mode: Mode, snapshotter: &str) -> (Kiln, Vec<Vec<String>>) {
    let k = Kiln::in_mode(mode);
    k.write("Dockerfile", CHANGES);
    let info = Run::of(k.command().env("KILN_SNAPSHOTTER", snapshotter).args(["info", "--format", "json"]));
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["snapshotter"]["name"], snapshotter, "{info}");
    let ctx = k.ctx();
    let out = k.command().env("KILN_SNAPSHOTTER", snapshotter).args(["build", "-t", "changes"]).arg(&ctx).output();
    let out = Run::of_output(out.unwrap());
    assert_eq!(out.code, 0, "{mode:?}, {snapshotter}:\n{}", out.stderr);
    let list = listing(&k, "changes");
    k.assert_clean();
    (k, list)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn of(cmd: &mut Command) -> Self {
        Self::of_output(cmd.output().unwrap())
    }
    fn of_output(out: std::process::Output) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[test]
fn every_snapshotter_makes_the_same_layers() {
    // fuse-overlayfs needs /dev/fuse, which only root can open on machines
    // that keep it 0600 (Debian makes it 0666): rootless, it is tested where
    // the user can open it.
    let fuse_for_user = std::fs::metadata("/dev/fuse").is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o006 == 0o006
    });
    for mode in [Mode::Root, Mode::Rootless] {
        let (_k, overlay) = build_with(mode, "overlay");
        let want = [
            "Regular .wh.gone ",
            "Regular .wh.gone-dir ",
            "Regular olddir/.wh..wh..opq ",
            "Link bin/busybox bb",
            "Regular d/sub/.wh.f ",
        ];
        let second = &overlay[1];
        for w in want {
            assert!(second.iter().any(|e| e == w), "{mode:?}: {w:?} missing from {second:#?}");
        }
        let third = &overlay[2];
        for w in ["Regular .wh.d ", "Link olddir/new3-link olddir/new3", "Directory x ", "Regular x/.wh..wh..opq "] {
            assert!(third.iter().any(|e| e == w), "{mode:?}: {w:?} missing from {third:#?}");
        }
        let mut others = vec!["copy"];
        if mode == Mode::Root || fuse_for_user {
            others.push("fuse-overlayfs");
        }
        for s in others {
            let (_k, list) = build_with(mode, s);
            assert_eq!(list, overlay, "{mode:?}: {s} made other layers than overlay");
        }
    }
}

#[test]
fn an_unknown_snapshotter_is_a_clear_error() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN true\n");
    let out = Run::of(k.command().env("KILN_SNAPSHOTTER", "vfs").arg("build").arg(k.ctx()));
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("unknown snapshotter \"vfs\"") && out.stderr.contains("copy"), "{}", out.stderr);
}

#[test]
fn fuse_overlayfs_dies_with_kiln() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN sleep 60\n");
    let mut child = k
        .command()
        .env("KILN_SNAPSHOTTER", "fuse-overlayfs")
        .arg("build")
        .arg(k.ctx())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let root = k.root().to_string_lossy().into_owned();
    let daemons = || {
        let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        String::from_utf8_lossy(&ps.stdout)
            .lines()
            .filter(|l| l.contains("fuse-overlayfs") && l.contains(&root))
            .count()
    };
    let start = std::time::Instant::now();
    while daemons() == 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(30), "fuse-overlayfs never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let start = std::time::Instant::now();
    while daemons() > 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "fuse-overlayfs outlived kiln");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mounts: String = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| std::fs::read_to_string(p.path().join("mountinfo")).ok())
        .collect();
    assert!(!mounts.contains(&root), "a mount under {root} outlived kiln");
}

/// Steps that chown to other users and switch to them.
const OTHER_USERS: &str = "FROM busybox
RUN mkdir /owned && touch /owned/f && chown -R 1234:5678 /owned
USER nobody
RUN touch /tmp/by-nobody
USER root
RUN echo 'app:x:4321:8765::/tmp:/bin/sh' >> /etc/passwd && su -s /bin/sh -c 'touch /tmp/by-su' nobody && \
    su -c 'touch /tmp/by-app' app
";

#[test]
fn steps_chown_to_other_users_and_switch_to_them_with_their_ids_in_the_layer() {
    for mode in [Mode::Root, Mode::Rootless] {
        for snapshotter in ["overlay", "copy"] {
            let k = Kiln::in_mode(mode);
            k.write("Dockerfile", OTHER_USERS);
            let out =
                Run::of(k.command().env("KILN_SNAPSHOTTER", snapshotter).args(["build", "-t", "users"]).arg(k.ctx()));
            assert_eq!(out.code, 0, "{mode:?} {snapshotter}:\n{}", out.stderr);
            let owners = owners(&k, "users");
            for (path, uid, gid) in [
                ("owned", 1234, 5678),
                ("owned/f", 1234, 5678),
                ("tmp/by-nobody", 65534, 65534),
                ("tmp/by-su", 65534, 65534),
                ("tmp/by-app", 4321, 8765),
            ] {
                let found = owners.iter().find(|(p, _, _)| p == path);
                assert_eq!(found, Some(&(path.to_owned(), uid, gid)), "{mode:?} {snapshotter}: {owners:?}");
            }
        }
    }
}

/// A `docker save` archive of busybox plus a layer with `/etc/owned` owned
/// by `uid:gid`, named `owned:1`.
fn image_with_owner(k: &Kiln, uid: u64, gid: u64) -> std::path::PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind) in [("etc/", tar::EntryType::Directory), ("etc/owned", tar::EntryType::Regular)] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(0);
        let (u, g) = if kind == tar::EntryType::Directory { (0, 0) } else { (uid, gid) };
        h.set_uid(u);
        h.set_gid(g);
        b.append_data(&mut h, name, std::io::empty()).unwrap();
    }
    let layer = b.into_inner().unwrap();
    let path = k.dir.path().join("owned.tar");
    super::harness::write_docker_save(&path, serde_json::json!({"config": {}}), &["owned:1"], &layer);
    k.give(&path);
    path
}

#[test]
fn without_a_range_a_single_id_map_builds_and_says_what_needs_more_ids() {
    let k = Kiln::in_mode(Mode::SingleId);
    let info: serde_json::Value = serde_json::from_str(&k.cmd(&["info", "--format", "json"]).ok().stdout).unwrap();
    assert_eq!(info["rootless"], true, "{info}");
    assert_eq!(info["idMapping"]["kind"], "single", "{info}");

    k.write("Dockerfile", "FROM busybox\nRUN echo made > /made && id -u > /uid\n");
    k.build(&["-t", "single:v1"]).ok();
    assert_eq!(k.file_in_top_layer("single:v1", "made").as_deref(), Some("made\n"));

    // Never a silent chown to root: a RUN that needs another id fails, and says why.
    for step in ["RUN touch /f && chown 1234:5678 /f", "USER nobody\nRUN touch /tmp/f"] {
        k.write("Dockerfile", &format!("FROM busybox\n{step}\n"));
        let out = k.build(&[]).failed();
        assert!(
            out.stderr.contains("hint:") && out.stderr.contains("usermod --add-subuids 100000-165535"),
            "{step}:\n{}",
            out.stderr
        );
    }

    // A context tar's owners do not matter (COPY sets its own): one made by
    // the user's own host id, unmapped here, is fine.
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in [("Dockerfile", "FROM busybox\nCOPY f /f\n"), ("f", "from a tar\n")] {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        h.set_uid(1234);
        h.set_gid(5678);
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    let mut child = k
        .command()
        .args(["build", "-t", "fromtar", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &b.into_inner().unwrap()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A base image with a file of another owner cannot be used, and the error
    // names the file, the ids and the fix.
    let tar = image_with_owner(&k, 1234, 5678);
    let out = k.cmd(&["load", "-i", tar.to_str().unwrap()]).failed();
    for want in ["/etc/owned", "uid 1234", "gid 5678", "usermod --add-subuids", super::harness::SINGLE_ID_USER] {
        assert!(out.stderr.contains(want), "{want:?} missing:\n{}", out.stderr);
    }
    assert!(!k.image_names().iter().any(|n| n.starts_with("owned")), "the image was loaded anyway");
}

#[test]
fn an_id_beyond_the_subordinate_range_is_a_clear_error() {
    let k = Kiln::in_mode(Mode::Rootless);
    let tar = image_with_owner(&k, 70000, 70000);
    let out = k.cmd(&["load", "-i", tar.to_str().unwrap()]).failed();
    for want in ["/etc/owned", "uid 70000", "uids 0-65536", "--add-subuids"] {
        assert!(out.stderr.contains(want), "{want:?} missing:\n{}", out.stderr);
    }
    // Within the range, the owner is kept.
    let tar = image_with_owner(&k, 1234, 5678);
    k.cmd(&["load", "-i", tar.to_str().unwrap()]).ok();
    assert!(k.image_names().contains(&"owned:1".to_owned()), "{:?}", k.image_names());
}

#[test]
fn kiln_info_reports_the_store_snapshotter_cgroups_and_ids() {
    for k in Kiln::each_mode_empty() {
        let text = k.cmd(&["info"]).ok().stdout;
        for field in ["root:", "rootless:", "snapshotter:", "cgroup:", "ids:", "pasta:", "slirp4netns:", "seccomp:"] {
            assert!(text.contains(field), "{field} missing:\n{text}");
        }
        let v: serde_json::Value = serde_json::from_str(&k.cmd(&["info", "--format", "json"]).ok().stdout).unwrap();
        assert_eq!(v["root"], k.root().to_str().unwrap(), "{v}");
        assert_eq!(v["rootless"], k.mode == Mode::Rootless, "{v}");
        let kind = if k.mode == Mode::Rootless { "range" } else { "host" };
        assert_eq!(v["idMapping"]["kind"], kind, "{v}");
        assert!(["overlay", "fuse-overlayfs", "copy"].contains(&v["snapshotter"]["name"].as_str().unwrap()), "{v}");
        assert!(!v["snapshotter"]["why"].as_str().unwrap().is_empty(), "{v}");
        assert!(["v1", "v2", "hybrid", "none"].contains(&v["cgroup"].as_str().unwrap()), "{v}");
        // What this machine has, read independently.
        let hybrid = std::path::Path::new("/sys/fs/cgroup/unified").is_dir()
            && std::fs::read_to_string("/proc/self/cgroup").unwrap().lines().any(|l| l.starts_with("0::"));
        if hybrid {
            assert_eq!(v["cgroup"], "hybrid", "{v}");
        }
        let pasta = ["/usr/bin/pasta", "/usr/sbin/pasta"].iter().any(|p| std::path::Path::new(p).exists());
        assert_eq!(v["network"]["pasta"].is_string(), pasta, "{v}");
        assert!(v["seccomp"].is_boolean(), "{v}");
    }
}

#[test]
fn the_config_file_chooses_a_snapshotter_and_the_environment_wins() {
    let k = Kiln::empty();
    let config = k.dir.path().join("config.toml");
    std::fs::write(&config, "snapshotter = \"copy\"\n").unwrap();
    let info = |env: &[(&str, &str)]| {
        let out = Run::of(
            k.command().env("KILN_CONFIG", &config).envs(env.iter().copied()).args(["info", "--format", "json"]),
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = info(&[]);
    assert_eq!(v["snapshotter"]["name"], "copy", "{v}");
    assert!(v["snapshotter"]["why"].as_str().unwrap().contains("config"), "{v}");
    let v = info(&[("KILN_SNAPSHOTTER", "overlay")]);
    assert_eq!(v["snapshotter"]["name"], "overlay", "{v}");
}
