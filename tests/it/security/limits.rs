//! Resource limits: input built to exhaust kiln's stack or memory, or to
//! overflow a number, gets a clear error naming the Dockerfile line (or a cost
//! proportional to its size), never a crash or a silently wrong result.

use super::super::harness::{Kiln, Run};

/// Build `dockerfile` and expect kiln itself to refuse it: exit code 1 (its
/// error path), not an abort (134) or a signal, with every one of `expect` in
/// the error, and nothing tagged.
#[track_caller]
fn refused(k: &Kiln, dockerfile: &str, args: &[&str], expect: &[&str]) -> Run {
    k.write("Dockerfile", dockerfile);
    let mut all = vec!["-t", "limits:v1"];
    all.extend_from_slice(args);
    let out = k.build(&all);
    // 1 is kiln's own error exit; 134 would be an abort, -1 a signal.
    assert_eq!(out.code, 1, "expected kiln to refuse the build with exit code 1:\n{}", out.stderr);
    for e in expect {
        assert!(out.stderr.contains(e), "expected {e:?} in:\n{}", out.stderr);
    }
    assert!(!k.image_names().contains(&"limits:v1".to_string()), "a refused build tagged its image");
    out
}

#[test]
fn deeply_nested_variable_expansion_is_an_error_not_a_stack_overflow() {
    let k = Kiln::with_busybox();
    let deep = 20_000;
    let word: String = (0..deep).map(|i| format!("${{a{i}:-")).collect::<String>() + "x" + &"}".repeat(deep);
    refused(
        &k,
        &format!("FROM busybox\n\nLABEL deep={word}\n"),
        &[],
        &["Dockerfile:3:", "variable expansion nests deeper than 100 levels"],
    );
}

#[test]
fn a_long_chain_of_stages_builds_without_a_stack_overflow() {
    let k = Kiln::empty();
    let mut text = String::from("FROM scratch AS s0\n");
    for i in 1..3_000 {
        text += &format!("FROM s{} AS s{i}\nLABEL n={i}\n", i - 1);
    }
    k.write("Dockerfile", &text);
    k.build(&["-t", "chain:v1"]).ok();
}

#[test]
fn chown_ids_that_do_not_fit_in_32_bits_are_refused() {
    let k = Kiln::with_busybox();
    k.write("a.txt", "a");
    for (spec, what) in [
        // Truncated to 32 bits this was uid 1215752191: another user, silently.
        ("99999999999:1", "uid 99999999999 is out of range"),
        ("1:4294967296", "gid 4294967296 is out of range"),
        // (uid_t)-1: "leave the owner unchanged" to chown(2).
        ("4294967295", "uid 4294967295 is out of range"),
    ] {
        let dockerfile = format!("FROM busybox\nCOPY --chown={spec} a.txt /a\n");
        refused(&k, &dockerfile, &[], &["Dockerfile:2:", &format!("--chown \"{spec}\""), what]);
    }
    k.assert_clean();
}

#[test]
fn an_empty_build_arg_name_is_refused() {
    let k = Kiln::with_busybox();
    for arg in ["=x", "=", ""] {
        let out = refused(&k, "FROM busybox\nRUN touch /x\n", &["--build-arg", arg], &["--build-arg", "name is empty"]);
        assert!(!out.stderr.contains("RUN touch"), "nothing should have run:\n{}", out.stderr);
    }
}
