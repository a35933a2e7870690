//! Images of many layers: overlayfs takes its lower dirs in one page of mount
//! options, so snapshots are mounted through short links (see `src/snapshot.rs`).

use std::path::Path;
use std::process::Command;

use super::harness::{busybox_tar, Kiln, KILN};

#[test]
fn sixty_run_steps_make_sixty_one_layers() {
    let k = Kiln::with_busybox();
    let mut dockerfile = String::from("FROM busybox\n");
    for i in 1..=60 {
        dockerfile.push_str(&format!("RUN echo {i} > /f{i}\n"));
    }
    k.write("Dockerfile", &dockerfile);
    k.build(&["-t", "x:v1"]).ok();
    let layers = k.layers("x:v1");
    assert_eq!(layers.len(), 61);
    assert_eq!(layers[60], ["f60"]);
    // Every layer mounted at once: the top one and the bottom ones are all there.
    assert_eq!(k.cmd(&["run", "x:v1", "cat", "/f60", "/f1"]).ok().stdout, "60\n1\n");
    // A mount of the store's snapshots again (cached steps, a second build) still works.
    k.write("Dockerfile", &format!("{dockerfile}RUN cat /f60 /f59 > /g\n"));
    k.build(&["-t", "x:v2"]).ok();
    assert_eq!(k.cmd(&["run", "x:v2", "cat", "/g"]).ok().stdout, "60\n59\n");
    k.assert_clean();
}

#[test]
fn a_stack_too_long_for_one_page_is_refused_with_a_clear_error() {
    // A store root of ~700 bytes: each lower dir takes ~730 bytes of the 4095
    // the kernel takes, so the third RUN (a mount of three layers plus the upper
    // and work dirs) no longer fits.
    let k = Kiln::empty();
    let mut root = k.dir.path().to_owned();
    for _ in 0..7 {
        root.push("d".repeat(100));
    }
    let kiln = |args: &[&str]| Command::new(KILN).arg("--root").arg(&root).args(args).output().unwrap();
    let import = kiln(&["import", busybox_tar().to_str().unwrap(), "busybox"]);
    assert!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    k.write("Dockerfile", "FROM busybox\nRUN echo 1 > /a\nRUN echo 2 > /b\nRUN echo 3 > /c\n");
    let out = kiln(&["build", "-t", "long:v1", k.ctx().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("cannot mount 3 layers"), "{stderr}");
    assert!(stderr.contains(&format!("limit of {}", page_size() - 1)), "{stderr}");
    assert!(!stderr.contains("Invalid argument"), "{stderr}");
    assert!(!Path::new(&root).join("work").read_dir().unwrap().any(|_| true), "work left dirty");
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}
