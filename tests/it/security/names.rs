//! Image names are docker references and nothing else: a name is written to
//! the store's index and shown in messages, so `../../etc:1`, `@` or control
//! characters must be refused wherever a name comes in, and nothing tagged.

use super::super::harness::{busybox_tar, Kiln};
use super::archives::{docker_save, raw_tar};

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Names no command may tag an image with.
fn hostile() -> Vec<String> {
    ["@", "../../x@y", "../../etc:1", "a/../b", "/abs", "a\x1b[2Jb:1", "UPPER"]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("app@sha256:{HEX}")])
        .collect()
}

#[test]
fn build_refuses_hostile_tags_before_any_work() {
    for k in Kiln::each_mode() {
        k.write("Dockerfile", "FROM busybox\nRUN echo built\n");
        for name in hostile() {
            let out = k.build(&["-t", &name]).failed();
            assert!(out.stderr.contains("invalid image name"), "-t {name:?}:\n{}", out.stderr);
            assert!(!out.stderr.contains("built"), "-t {name:?} failed only after building:\n{}", out.stderr);
        }
        assert_eq!(k.image_names(), ["busybox:latest"]);
    }
}

#[test]
fn tag_refuses_hostile_names_and_a_digest() {
    for k in Kiln::each_mode() {
        for name in hostile() {
            let out = k.cmd(&["tag", "busybox", &name]).failed();
            assert!(out.stderr.contains("invalid image name"), "tag {name:?}:\n{}", out.stderr);
        }
        let out = k.cmd(&["tag", "busybox", &format!("app@sha256:{HEX}")]).failed();
        assert!(out.stderr.contains("refusing to create a tag with a digest reference"), "{}", out.stderr);
        assert_eq!(k.image_names(), ["busybox:latest"]);
    }
}

#[test]
fn lookups_check_the_name_and_may_name_a_digest() {
    for k in Kiln::each_mode() {
        for args in [&["inspect", "../../etc:1"][..], &["rmi", "../../etc:1"], &["run", "../../x@y", "true"]] {
            let out = k.cmd(args).failed();
            assert!(out.stderr.contains("invalid image name"), "{args:?}:\n{}", out.stderr);
        }
        let digest = k.inspect("busybox")["Digest"].as_str().unwrap().to_owned();
        assert_eq!(k.inspect(&format!("busybox@{digest}"))["Name"], "busybox:latest");
        assert_eq!(k.inspect(&format!("docker.io/library/busybox:latest@{digest}"))["Name"], "busybox:latest");
        k.cmd(&["inspect", &format!("busybox@sha256:{HEX}")]).failed();
        k.cmd(&["tag", &format!("busybox@{digest}"), "copy:1"]).ok();
        let out = k.cmd(&["rmi", &format!("busybox@{digest}")]).ok();
        assert_eq!(out.stdout, "Untagged: busybox:latest\n");
        assert_eq!(k.image_names(), ["copy:1"]);
    }
}

#[test]
fn import_refuses_hostile_names() {
    for k in Kiln::each_mode_empty() {
        let tar = busybox_tar().to_str().unwrap();
        for name in hostile() {
            let out = k.cmd(&["import", tar, &name]).failed();
            assert!(out.stderr.contains("invalid image name"), "import {name:?}:\n{}", out.stderr);
        }
        assert!(k.image_names().is_empty());
    }
}

#[test]
fn load_refuses_an_archive_with_a_hostile_repo_tag_and_tags_nothing() {
    for k in Kiln::each_mode_empty() {
        let layer = raw_tar(&[("hello.txt", b"hello")]);
        for bad in ["../../etc:1", "../../x@y", "@"] {
            let archive = k.dir.path().join("names.tar");
            docker_save(&archive, &["good:1", bad], &layer);
            let out = k.cmd(&["load", "-i", archive.to_str().unwrap()]).failed();
            assert!(out.stderr.contains("invalid image name"), "RepoTags {bad:?}:\n{}", out.stderr);
            assert!(out.stderr.contains("manifest.json"), "RepoTags {bad:?}:\n{}", out.stderr);
            assert!(k.image_names().is_empty(), "RepoTags {bad:?} tagged {:?}", k.image_names());
        }
    }
}
