//! Bad input: a clear error, a non-zero exit, nothing tagged, nothing left behind.

use super::harness::Kiln;

/// Build the context with `dockerfile` and expect a failure whose message holds every one of `expect`.
#[track_caller]
fn fails_with(k: &Kiln, dockerfile: Option<&str>, expect: &[&str]) {
    if let Some(text) = dockerfile {
        k.write("Dockerfile", text);
    }
    let out = k.build(&["-t", "bad:v1"]).failed();
    for e in expect {
        assert!(out.stderr.contains(e), "expected {e:?} in:\n{}", out.stderr);
    }
    assert!(!k.image_names().contains(&"bad:v1".to_string()), "a failed build tagged its image");
    k.assert_clean();
}

#[test]
fn missing_dockerfile() {
    let k = Kiln::with_busybox();
    fails_with(&k, None, &["Dockerfile", "-f"]);
}

#[test]
fn syntax_errors_name_line_and_column() {
    let k = Kiln::with_busybox();
    fails_with(&k, Some("FROM busybox\n\nCMD [\"a\", 1]\n"), &["Dockerfile:3:", "must hold strings only"]);
}

#[test]
fn a_dockerfile_that_is_not_utf8_is_named_with_its_place() {
    let k = Kiln::with_busybox();
    // "é" in Latin-1, as an old editor would have saved it.
    std::fs::write(k.ctx().join("Dockerfile"), b"FROM busybox\nLABEL author=Ren\xe9\n").unwrap();
    fails_with(&k, None, &["Dockerfile:2:17: the Dockerfile is not UTF-8 (byte 0xe9): save it as UTF-8"]);
}

#[test]
fn unknown_instruction_suggests_the_right_one() {
    let k = Kiln::with_busybox();
    fails_with(&k, Some("FROM busybox\nRUNN echo hi\n"), &["Dockerfile:2:", "RUNN", "did you mean", "RUN"]);
}

#[test]
fn copy_source_missing_or_outside_the_context() {
    let k = Kiln::with_busybox();
    fails_with(&k, Some("FROM busybox\nCOPY nope.txt /x\n"), &["Dockerfile:2:", "nope.txt", "not found"]);
    fails_with(
        &k,
        Some("FROM busybox\nCOPY ../escape /x\n"),
        &["Dockerfile:2:", "../escape", "outside the build context"],
    );
}

#[test]
fn unknown_base_image_or_stage() {
    let k = Kiln::with_busybox();
    fails_with(&k, Some("FROM nosuchimage:1\n"), &["Dockerfile:1:", "nosuchimage"]);
    fails_with(&k, Some("FROM busybox\nCOPY --from=nostage /a /b\n"), &["Dockerfile:2:", "nostage"]);
}

#[test]
fn failing_run_leaves_nothing_behind_even_with_a_background_process() {
    let k = Kiln::with_busybox();
    // The sleeper outlives the shell: the pid namespace must take it down.
    fails_with(&k, Some("FROM busybox\nRUN (sleep 600 &) ; echo bye; exit 7\n"), &["exit code: 7", "| bye"]);
}

#[test]
fn bad_tag_fails_before_building() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN touch /x\n");
    let out = k.build(&["-t", "Bad Name"]).failed();
    assert!(out.stderr.contains("invalid image name"), "{}", out.stderr);
    assert!(!out.stderr.contains("RUN touch"), "nothing should have run:\n{}", out.stderr);
}
