//! The store is its owner's alone: snapshots hold image files with the modes
//! the layers gave them (setuid binaries, world-writable folders), so nobody
//! else may reach anything under the store root.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::super::harness::{Kiln, Mode};

/// Run `args` as `nobody`, another local user.
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_store_root_is_private_and_an_existing_one_is_tightened() {
    for k in Kiln::each_mode() {
        let mode = std::fs::metadata(k.root()).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{:?}: a new store root is {mode:o}", k.mode);
        std::fs::set_permissions(k.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
        k.cmd(&["images"]).ok();
        let mode = std::fs::metadata(k.root()).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{:?}: an existing store root stayed {mode:o}", k.mode);
    }
}

#[test]
fn another_user_cannot_reach_extracted_files() {
    for k in Kiln::each_mode() {
        // A setuid copy of busybox in a layer, extracted by `run`.
        k.write("Dockerfile", "FROM busybox\nRUN cp /bin/busybox /suid && chmod 4755 /suid && chmod 777 /\n");
        k.build(&["-t", "suid:v1"]).ok();
        k.cmd(&["run", "suid:v1", "true"]).ok();
        let snapshots = k.root().join("snapshots");
        let suid: Vec<_> = std::fs::read_dir(&snapshots)
            .unwrap()
            .map(|e| e.unwrap().path().join("suid"))
            .filter(|p| p.is_file())
            .collect();
        assert_eq!(suid.len(), 1, "{:?}: the RUN layer's snapshot was not found", k.mode);
        if k.mode == Mode::Rootless {
            // The store's owner is the rootless user; nobody is someone else.
            assert_ne!(std::fs::metadata(k.root()).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap(), 65534);
        }
        let out = as_nobody(&[suid[0].to_str().unwrap(), "id", "-u"]);
        assert!(!out.status.success(), "{:?}: another user ran a setuid binary out of the store", k.mode);
        let out = as_nobody(&["ls", snapshots.to_str().unwrap()]);
        assert!(!out.status.success(), "{:?}: another user listed the snapshots", k.mode);
    }
}
