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
    assert_eq!(out.code, 1, "kiln did not fail cleanly (134 is an abort, -1 a signal):\n{}", out.stderr);
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
