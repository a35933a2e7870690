//! The history of a built image: every entry has its time (docker shows a
//! missing one as "292 years ago"), and a base image's entries keep theirs.

use super::harness::Kiln;

/// A `docker save` archive of busybox whose two history entries have a time
/// and a comment of their own.
fn dated_base(dir: &std::path::Path) -> std::path::PathBuf {
    let config = serde_json::json!({
        "created": "2001-02-03T04:05:06Z",
        "config": {"Env": ["PATH=/bin"]},
        "history": [
            {"created": "2001-02-03T04:05:06Z", "created_by": "ADD rootfs", "comment": "imported"},
            {"created": "2001-02-03T04:05:07Z", "created_by": "CMD [\"sh\"]", "empty_layer": true},
        ],
    });
    let path = dir.join("dated.tar");
    let layer = std::fs::read(super::harness::busybox_tar()).unwrap();
    super::harness::write_docker_save(&path, config, &["dated:1"], &layer);
    path
}

#[test]
fn every_history_entry_has_its_time_and_base_entries_keep_theirs() {
    let k = Kiln::empty();
    let archive = dated_base(k.dir.path());
    k.cmd(&["load", "-i", archive.to_str().unwrap()]).ok();
    k.write("f.txt", "f\n");
    k.write("Dockerfile", "FROM dated:1\nENV A=1\nRUN echo x > /x\nCOPY f.txt /f.txt\nCMD [\"sh\"]\n");
    k.build(&["-t", "dated:built"]).ok();
    let config = k.inspect("dated:built")["Config"].clone();
    let history = config["history"].as_array().unwrap();
    let field = |i: usize, key: &str| history[i][key].as_str().map(str::to_owned);
    assert_eq!(history.len(), 6, "{history:?}");
    assert_eq!(
        (field(0, "created"), field(0, "comment")),
        (Some("2001-02-03T04:05:06Z".into()), Some("imported".into()))
    );
    assert_eq!(field(1, "created").as_deref(), Some("2001-02-03T04:05:07Z"));
    let image_created = config["created"].as_str().unwrap();
    for (i, entry) in history.iter().enumerate().skip(2) {
        assert_eq!(entry["created"].as_str(), Some(image_created), "entry {i}: {entry}");
    }
}
