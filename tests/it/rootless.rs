//! Rootless: an unprivileged user builds and runs images, with kiln mapping that
//! user to root in a user namespace of its own.

use std::process::Command;

use super::harness::busybox_tar;

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
    let out = check(as_user(&kiln, &home, &["run", "rootless:v1"]));
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
