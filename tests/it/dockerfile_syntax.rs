//! Dockerfile syntax the parser and lowering handle end to end, on a real
//! build: RUN heredocs, SHELL for later shell-form commands, JSON look-alikes
//! as shell form, and instructions kiln cannot run yet only failing the
//! builds that need them.

use super::harness::Kiln;

#[test]
fn run_heredocs_reach_the_shell_as_written() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\n\
         ENV WHO=world\n\
         RUN <<EOF\n\
         echo \"hello $WHO\" > /a\n\
         echo second >> /a\n\
         EOF\n\
         RUN cat <<-A > /b && cat <<'B' > /c\n\
         \ttabbed $WHO\n\
         \tA\n\
         raw $WHO\n\
         B\n\
         CMD [\"cat\", \"no quote!]\n",
    );
    k.build(&["-t", "heredoc:v1"]).ok();
    let out = k.cmd(&["run", "--rm", "heredoc:v1", "cat", "/a", "/b", "/c"]).ok();
    assert_eq!(out.stdout, "hello world\nsecond\ntabbed world\nraw $WHO\n");
    // `["cat", "no quote!]` is not JSON: the shell runs it (and fails on the quote).
    let cmd = &k.inspect("heredoc:v1")["Config"]["config"]["Cmd"];
    assert_eq!(cmd, &serde_json::json!(["/bin/sh", "-c", "[\"cat\", \"no quote!]"]), "{cmd}");
}

#[test]
fn shell_changes_the_shell_of_later_shell_form_commands() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN echo $0 > /before\n\
         SHELL [\"/bin/sh\", \"-e\", \"-u\", \"-c\"]\n\
         RUN echo $0 \"$-\" > /after\n\
         CMD echo from cmd\n",
    );
    k.build(&["-t", "shell:v1"]).ok();
    let out = k.cmd(&["run", "--rm", "shell:v1", "cat", "/before", "/after"]).ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "/bin/sh");
    assert!(
        lines[1].starts_with("/bin/sh ") && lines[1].contains('e') && lines[1].contains('u'),
        "{out:?}",
        out = out.stdout
    );
    assert_eq!(k.cmd(&["run", "--rm", "shell:v1"]).ok().stdout, "from cmd\n");
}

#[test]
fn a_bad_mount_fails_only_the_builds_that_need_it() {
    let k = Kiln::with_busybox();
    // Judged when its stage is lowered (its values may hold variables).
    k.write(
        "Dockerfile",
        "FROM busybox AS cached\n\
         RUN --mount=type=cache,id=a/b,target=/root/.cache true\n\
         FROM busybox\n\
         RUN echo ok > /ok\n",
    );
    k.build(&["-t", "unused:v1"]).ok();
    let out = k.build(&["--target", "cached", "-t", "cached:v1"]).failed();
    assert!(
        out.stderr.contains("Dockerfile:2:5: invalid --mount=type=cache,id=a/b,target=/root/.cache: cache id \"a/b\""),
        "{}",
        out.stderr
    );
    // A typo in a stage nobody builds still fails: it is checked, not run.
    k.write("Dockerfile", "FROM busybox AS x\nRUN --mount=type=cahce,target=/c true\nFROM busybox\n");
    let out = k.build(&["-t", "typo:v1"]).failed();
    assert!(out.stderr.contains("Dockerfile:2:5:") && out.stderr.contains("\"cahce\""), "{}", out.stderr);
}

#[test]
fn arg_names_buildkit_accepts_reach_run_and_a_namesake_stage_is_the_nearest() {
    let k = Kiln::with_busybox();
    // `env` straight (a shell would leave out names it cannot hold).
    k.write(
        "Dockerfile",
        "FROM busybox AS b\n\
         RUN echo first > /which\n\
         FROM b AS b\n\
         ARG a/b=1 x:y\n\
         RUN [\"env\"]\n\
         FROM b\n\
         RUN echo third >> /which\n",
    );
    let build = k.build(&["-t", "names:v1", "--build-arg", "x:y=2"]).ok();
    let shown = format!("{}{}", build.stdout, build.stderr);
    for var in ["a/b=1", "x:y=2"] {
        assert!(shown.lines().any(|l| l.ends_with(&format!(" {var}"))), "{var} not printed by env: {shown}");
    }
    let out = k.cmd(&["run", "--rm", "names:v1", "cat", "/which"]).ok();
    assert_eq!(out.stdout, "first\nthird\n");
}

#[test]
fn from_pins_a_base_by_its_manifest_digest() {
    let k = Kiln::with_busybox();
    let digest = k.inspect("busybox")["Digest"].as_str().expect("busybox has a digest").to_owned();
    k.write("Dockerfile", &format!("FROM busybox@{digest}\nRUN echo pinned > /p\n"));
    k.build(&["--pull=never", "-t", "pinned:v1"]).ok();
    assert_eq!(k.cmd(&["run", "--rm", "pinned:v1", "cat", "/p"]).ok().stdout, "pinned\n");
    // Another digest is another image, which this store does not have.
    let other = format!("sha256:{}", "0".repeat(64));
    k.write("Dockerfile", &format!("FROM busybox@{other}\n"));
    let out = k.build(&["--pull=never", "-t", "pinned:v2"]).failed();
    assert!(out.stderr.contains("Dockerfile:1:6") && out.stderr.contains("not found"), "{}", out.stderr);
}
