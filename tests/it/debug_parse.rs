//! `kiln debug parse`: the raw parse tree as JSON, from a file or stdin; a
//! file that does not parse fails with its place; no store is touched.

use std::io::Write;
use std::process::Stdio;

use serde_json::{json, Value};

use super::harness::Kiln;

const DOCKERFILE: &str = "# syntax=docker/dockerfile:1\n\
FROM --platform=linux/amd64 alpine AS build\n\
ENV A=1 B\\ C=2\n\
RUN <<-EOF\n\
\techo $A\n\
\tEOF\n\
CMD [\"run\", \"x\"]\n\
ONBUILD COPY --chown=1 a b\n";

#[track_caller]
fn tree(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

#[test]
fn prints_the_tree_of_a_file_and_of_stdin() {
    let k = Kiln::empty();
    k.write("Dockerfile", DOCKERFILE);
    let path = k.ctx().join("Dockerfile");
    let from_file = tree(&k.cmd(&["debug", "parse", path.to_str().unwrap()]).ok().stdout);

    let mut child =
        k.command().args(["debug", "parse", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(DOCKERFILE.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let from_stdin = tree(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(from_file, from_stdin);

    let i = &from_file["instructions"];
    assert_eq!(from_file["directives"]["syntax"], "docker/dockerfile:1");
    assert_eq!(i[0]["cmd"], "from");
    assert_eq!(i[0]["flags"], json!(["--platform=linux/amd64"]));
    assert_eq!(i[0]["args"], json!(["alpine", "AS", "build"]));
    assert_eq!(i[1]["args"], json!(["A", "1", "=", "B\\ C", "2", "="]));
    assert_eq!(i[2]["args"], json!(["<<-EOF"]));
    assert_eq!(i[2]["heredocs"], json!([{"name": "EOF", "content": "\techo $A\n", "expand": true, "chomp": true}]));
    assert_eq!((i[2]["start_line"].clone(), i[2]["end_line"].clone()), (json!(4), json!(6)));
    assert_eq!((i[3]["json"].clone(), i[3]["args"].clone()), (json!(true), json!(["run", "x"])));
    assert_eq!(i[4]["args"][0]["cmd"], "copy");
    assert_eq!(i[4]["args"][0]["flags"], json!(["--chown=1"]));
    assert!(!k.root().exists(), "debug parse made a store");
}

#[test]
fn the_default_file_is_the_dockerfile_here() {
    let k = Kiln::empty();
    k.write("Dockerfile", "FROM scratch\n");
    let out = k.command().args(["debug", "parse"]).current_dir(k.ctx()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tree(&String::from_utf8(out.stdout).unwrap())["instructions"][0]["args"], json!(["scratch"]));
}

#[test]
fn a_file_that_does_not_parse_fails_with_its_place() {
    let k = Kiln::empty();
    k.write("Dockerfile", "FROM scratch\nRUN <<EOF\nnever ends\n");
    let path = k.ctx().join("Dockerfile");
    let out = k.cmd(&["debug", "parse", path.to_str().unwrap()]).failed();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    let want = format!("{}:2:1: unterminated heredoc <<EOF", path.display());
    assert!(out.stderr.contains(&want), "{want} not in:\n{}", out.stderr);
}

#[test]
fn help_documents_the_subcommands() {
    let k = Kiln::empty();
    let out = k.cmd(&["debug", "--help"]).ok().stdout;
    for want in ["parse", "JSON"] {
        assert!(out.contains(want), "{want} not in:\n{out}");
    }
}
