//! What a Dockerfile or an image must never be able to do to the host.

use std::process::{Command, Stdio};

use super::super::harness::{Kiln, KILN};

#[test]
fn run_cannot_remount_or_write_host_files_and_kernel_knobs() {
    let k = Kiln::with_busybox();
    let hosts = std::fs::read("/etc/hosts").unwrap();
    let out = k.cmd(&[
        "run",
        "busybox",
        "sh",
        "-c",
        "mount -o remount,rw,bind /etc/hosts; echo '# pwned' >> /etc/hosts; \
         echo 5 > /proc/sys/kernel/printk_ratelimit && echo SYSCTL-WRITTEN; \
         mount -t tmpfs none /mnt && echo MOUNTED; \
         mkdir -p /sys/x 2>/dev/null && echo SYS-WRITTEN; true",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read("/etc/hosts").unwrap(), hosts, "the host's /etc/hosts changed");
    for bad in ["SYSCTL-WRITTEN", "MOUNTED", "SYS-WRITTEN"] {
        assert!(!out.stdout.contains(bad), "{bad}: {}", out.stdout);
    }
}

#[test]
fn an_image_whose_etc_is_a_symlink_creates_nothing_on_the_host() {
    let k = Kiln::with_busybox();
    let outside = k.dir.path().join("outside-etc");
    std::fs::create_dir_all(&outside).unwrap();
    k.write(
        "Dockerfile",
        &format!(
            "FROM busybox AS b\nRUN mkdir /r && cp -a /bin /r/ && ln -s {} /r/etc\nFROM scratch\nCOPY --from=b /r /\n",
            outside.display()
        ),
    );
    k.build(&["-t", "evil-etc:v1"]).ok();
    k.cmd(&["run", "evil-etc:v1", "true"]).ok();
    k.write("Dockerfile", "FROM evil-etc:v1\nRUN true\n");
    k.build(&["-t", "evil-etc:v2"]).ok();
    let made: Vec<_> = std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(made.is_empty(), "kiln created {made:?} in {} on the host", outside.display());
}

#[test]
fn a_long_symlink_chain_cannot_copy_host_files() {
    let k = Kiln::with_busybox();
    let secret = k.dir.path().join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("key"), "TOPSECRET").unwrap();
    for i in 0..45 {
        std::os::unix::fs::symlink(format!("l{}", i + 1), k.ctx().join(format!("l{i}"))).unwrap();
    }
    std::os::unix::fs::symlink(&secret, k.ctx().join("l45")).unwrap();
    k.write("Dockerfile", "FROM busybox\nCOPY l0 /out/\n");
    let out = k.build(&["-t", "chain:v1"]);
    if out.code == 0 {
        let run = k.cmd(&["run", "chain:v1", "sh", "-c", "cat /out/key 2>/dev/null; true"]).ok();
        assert!(!run.stdout.contains("TOPSECRET"), "a host file was copied into the image");
    }
}

#[test]
fn kilns_open_descriptors_do_not_reach_run_steps() {
    let k = Kiln::with_busybox();
    let leak = k.dir.path().join("leak.txt");
    k.write("Dockerfile", "FROM busybox\nRUN for fd in 3 4 5 6 7 8 9; do echo leaked >&$fd; done 2>/dev/null; true\n");
    // The shell opens fd 7 on the file and runs kiln with it inherited.
    let script =
        format!("exec 7>>{}; exec {KILN} --root {} build {}", leak.display(), k.root().display(), k.ctx().display());
    let status = Command::new("sh").args(["-c", &script]).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&leak).unwrap(), "", "a RUN step wrote to kiln's inherited fd");
}
