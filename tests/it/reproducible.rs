//! Deterministic output (issue 10): with `SOURCE_DATE_EPOCH`, two clean
//! builds of the same input — two stores, two copies of the context with
//! other mtimes, RUN steps run at other times — give the same image ID and
//! manifest digest; every file time in every layer is clamped to the epoch,
//! and the config and its new history entries are dated by it, even where
//! the store holds the steps built without it.

use std::fs;
use std::io::Read;
use std::process::Command;

use serde_json::Value;

use super::harness::{busybox_tar, Kiln};

const EPOCH: u64 = 1_700_000_000;
const EPOCH_RFC3339: &str = "2023-11-14T22:13:20Z";

const DOCKERFILE: &str = "FROM busybox\n\
    ENV A=1\n\
    WORKDIR /app\n\
    COPY . /app/\n\
    ADD archive.tar /unpacked/\n\
    RUN sleep 1 && echo ran > /app/run.txt && mkdir -p /app/made/deep && touch /app/made/deep/f\n";

/// A store with busybox imported at a fixed time (an import is dated by the
/// epoch too), and a context written now.
fn store_with_context(archive: &[u8]) -> Kiln {
    let k = Kiln::empty();
    let tar = k.dir.path().join("busybox.tar");
    fs::copy(busybox_tar(), &tar).unwrap();
    let out = k.command().env("SOURCE_DATE_EPOCH", "0").args(["import", tar.to_str().unwrap(), "busybox"]).output();
    assert!(out.unwrap().status.success());
    k.write("Dockerfile", DOCKERFILE).write("a.txt", "a\n").write("dir/b.txt", "b\n");
    fs::write(k.ctx().join("archive.tar"), archive).unwrap();
    k
}

/// A tar of one folder and one file, dated now (after the epoch).
fn archive() -> Vec<u8> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in [("in/", &b""[..]), ("in/file", &b"archived\n"[..])] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(if data.is_empty() { tar::EntryType::Directory } else { tar::EntryType::Regular });
        h.set_mode(0o644);
        h.set_mtime(now);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// `kiln build` of the context, with `SOURCE_DATE_EPOCH` set or unset in its
/// environment: the image ID from `--iidfile` and the image as inspected.
fn build(k: &Kiln, epoch: Option<u64>) -> (String, Value) {
    build_with(k, epoch, None)
}

/// [`build`] with the snapshotter `KILN_SNAPSHOTTER` names, when given.
fn build_with(k: &Kiln, epoch: Option<u64>, snapshotter: Option<&str>) -> (String, Value) {
    let iid = k.dir.path().join("iid");
    let mut cmd = k.command();
    if let Some(s) = snapshotter {
        cmd.env("KILN_SNAPSHOTTER", s);
    }
    match epoch {
        Some(e) => cmd.env("SOURCE_DATE_EPOCH", e.to_string()),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    let out = cmd.args(["build", "-t", "repro", "--iidfile"]).arg(&iid).arg(k.ctx()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let id = fs::read_to_string(&iid).unwrap();
    let image = k.inspect("repro");
    assert_eq!(image["Id"].as_str(), Some(id.as_str()), "--iidfile holds the image ID");
    (id, image)
}

/// Every entry of every layer of `image` as (path, mtime), read from the
/// store's blobs (gzip-compressed or not).
fn layer_times(k: &Kiln, image: &Value) -> Vec<Vec<(String, u64)>> {
    let layers = image["Manifest"]["layers"].as_array().unwrap();
    layers
        .iter()
        .map(|l| {
            let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            let blob = fs::read(k.root().join("oci/blobs/sha256").join(hex)).unwrap();
            let tar: Box<dyn Read> = match blob.starts_with(&[0x1f, 0x8b]) {
                true => Box::new(flate2::read::GzDecoder::new(&blob[..])),
                false => Box::new(&blob[..]),
            };
            let mut archive = tar::Archive::new(tar);
            let entries = archive.entries().unwrap().map(|e| e.unwrap());
            entries.map(|e| (e.path().unwrap().display().to_string(), e.header().mtime().unwrap())).collect()
        })
        .collect()
}

fn diff_ids(image: &Value) -> Vec<String> {
    let ids = image["Config"]["rootfs"]["diff_ids"].as_array().unwrap();
    ids.iter().map(|d| d.as_str().unwrap().to_owned()).collect()
}

#[test]
fn two_clean_builds_with_source_date_epoch_give_the_same_image() {
    let archive = archive();
    let (one, two) = (store_with_context(&archive), store_with_context(&archive));
    // The second copy of the context has other mtimes (still after the epoch).
    for rel in ["a.txt", "dir/b.txt", "dir", "Dockerfile", "archive.tar", "."] {
        let ok = Command::new("touch").args(["-d", "2024-06-01 12:00:00"]).arg(two.ctx().join(rel)).status();
        assert!(ok.unwrap().success());
    }

    // The first store built the same input without the epoch before: its
    // cached steps (dated when they ran) must not be reused with it.
    let (_, plain_one) = build(&one, None);
    let (id_one, image_one) = build(&one, Some(EPOCH));
    let (id_two, image_two) = build(&two, Some(EPOCH));
    assert_eq!(id_one, id_two, "the image IDs (config digests) differ");
    assert_eq!(image_one["Digest"], image_two["Digest"], "the manifest digests differ");

    // Every file time in the build's layers is the epoch or earlier, and the
    // RUN's, COPY's and ADD's files (made or dated after it) are the epoch.
    let times = layer_times(&one, &image_one);
    let built = &times[1..];
    assert_eq!(built.len(), 4, "WORKDIR, COPY, ADD, RUN: {built:?}");
    for (path, mtime) in built.iter().flatten() {
        assert!(*mtime <= EPOCH, "{path} is dated {mtime}, after the epoch");
    }
    for want in ["app/a.txt", "app/dir/b.txt", "unpacked/in/file", "app/run.txt", "app/made/deep/f"] {
        let found = built.iter().flatten().find(|(p, _)| p == want);
        assert_eq!(found.map(|(_, t)| *t), Some(EPOCH), "{want} in {built:?}");
    }
    // The config and the build's history are dated by the epoch; busybox's
    // own entry keeps its import's date.
    let config = &image_one["Config"];
    assert_eq!(config["created"], EPOCH_RFC3339);
    let history = config["history"].as_array().unwrap();
    assert!(history.len() >= 6, "{history:?}");
    assert!(history[1..].iter().all(|h| h["created"] == EPOCH_RFC3339), "{history:?}");

    // Without the epoch the RUN's files keep the time it ran, which differs
    // between the two builds (each RUN writes a second or more after the
    // other build ended): the same check would fail.
    let (_, plain_two) = build(&two, None);
    let (run_one, run_two) = (diff_ids(&plain_one), diff_ids(&plain_two));
    assert_ne!(run_one.last(), run_two.last(), "RUN's layers are equal without the epoch");
    let times = layer_times(&one, &plain_one);
    let run_txt = times.last().unwrap().iter().find(|(p, _)| p == "app/run.txt").unwrap().1;
    assert!(run_txt > EPOCH, "without the epoch the RUN's file has its real time, not {run_txt}");
}

#[test]
fn an_epoch_given_as_a_build_arg_is_used_and_a_bad_one_is_a_clear_error() {
    let archive = archive();
    let k = store_with_context(&archive);
    let iid = k.dir.path().join("iid");
    let arg = format!("SOURCE_DATE_EPOCH={EPOCH}");
    let out = k.build(&["-t", "repro", "--build-arg", &arg, "--iidfile", iid.to_str().unwrap()]).ok();
    assert!(!out.stderr.contains("not consumed"), "the builder reads it: {}", out.stderr);
    assert_eq!(k.inspect("repro")["Config"]["created"], EPOCH_RFC3339);

    // From the environment it is a build arg too, as buildx passes it; a
    // --build-arg wins.
    k.write("Dockerfile", "FROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo epoch=$SOURCE_DATE_EPOCH\n");
    let out = k.command().env("SOURCE_DATE_EPOCH", "1600000000").args(["build", "--no-cache"]).arg(k.ctx()).output();
    let stderr = String::from_utf8_lossy(&out.unwrap().stderr).into_owned();
    assert!(stderr.contains("epoch=1600000000"), "{stderr}");
    let mut cmd = k.command();
    cmd.env("SOURCE_DATE_EPOCH", "1600000000").args(["build", "--no-cache", "--build-arg", &arg]);
    let stderr = String::from_utf8_lossy(&cmd.arg(k.ctx()).output().unwrap().stderr).into_owned();
    assert!(stderr.contains(&format!("epoch={EPOCH}")), "{stderr}");

    let out = k.build(&["--build-arg", "SOURCE_DATE_EPOCH=yesterday"]).failed();
    assert!(out.stderr.contains("SOURCE_DATE_EPOCH=\"yesterday\""), "{}", out.stderr);
    assert!(out.stderr.contains("seconds since 1970"), "{}", out.stderr);
    assert!(!out.stderr.contains("#1 "), "refused before any step: {}", out.stderr);
}

#[test]
fn every_snapshotter_clamps_a_run_s_changes_to_the_same_image() {
    // RUN's diff is written by a different walker for each snapshotter: an
    // overlay's upper folder (kernel or fuse-overlayfs) or a copy against its
    // baseline. Changed base files (copied up), new ones and a removal.
    let archive = archive();
    let mut snapshotters = vec!["overlay", "copy"];
    if fs::metadata("/dev/fuse").is_ok() && Command::new("fuse-overlayfs").arg("--version").output().is_ok() {
        snapshotters.push("fuse-overlayfs");
    }
    let mut ids = Vec::new();
    for s in &snapshotters {
        let k = store_with_context(&archive);
        k.write("Dockerfile", "FROM busybox\nRUN sleep 1; echo x >> /etc/passwd; rm /etc/group; mkdir -p /new/d\n");
        let (id, image) = build_with(&k, Some(EPOCH), Some(s));
        let times = layer_times(&k, &image);
        let run = times.last().unwrap();
        assert!(run.iter().any(|(p, _)| p == "etc/.wh.group"), "{s}: {run:?}");
        for (path, mtime) in run {
            assert!(*mtime <= EPOCH, "{s}: {path} is dated {mtime}, after the epoch");
        }
        ids.push(id);
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{snapshotters:?} gave {ids:?}");
}
