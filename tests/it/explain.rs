//! `kiln build --explain`, and the one line plain progress prints: why the
//! first step that missed the cache missed.

use super::harness::Kiln;

/// The `#N cache miss: …` lines of a build's progress.
fn misses(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with('#') && l.contains(" cache miss: ")).collect()
}

#[test]
fn a_first_build_and_a_full_hit_say_nothing() {
    let k = Kiln::with_busybox();
    k.write("a.txt", "a\n").write("Dockerfile", "FROM busybox\nCOPY a.txt /a\nRUN cat /a\n");
    for _ in 0..2 {
        let run = k.build(&[]).ok();
        assert_eq!(misses(&run.stderr), Vec::<&str>::new(), "{}", run.stderr);
    }
    let run = k.build(&["--explain", "--no-cache"]).ok();
    assert!(run.stderr.contains("#1 cache miss: FROM busybox\n#1   --no-cache\n"), "{}", run.stderr);
}

#[test]
fn a_changed_file_is_named() {
    let k = Kiln::with_busybox();
    k.write("a.txt", "a\n").write("b.txt", "b\n").write("gone.txt", "x\n");
    k.write("Dockerfile", "FROM busybox\nRUN true\nCOPY . /app\nRUN cat /app/a.txt\n");
    k.build(&[]).ok();
    k.write("a.txt", "a changed\n").write("new.txt", "n\n");
    std::fs::remove_file(k.ctx().join("gone.txt")).unwrap();
    let run = k.build(&[]).ok();
    let want = "#3 cache miss: COPY . /app — 1 file changed, 1 added, 1 removed: a.txt, new.txt, gone.txt";
    assert_eq!(misses(&run.stderr), [want], "{}", run.stderr);
    // The next build hits, and the one after an edit says so in full.
    k.build(&[]).ok();
    k.write("b.txt", "b changed\n");
    let run = k.build(&["--explain"]).ok();
    assert!(run.stderr.contains("#3 cache miss: COPY . /app\n#3   changed: b.txt\n"), "{}", run.stderr);
}

#[test]
fn a_changed_build_arg_is_named_and_a_secret_one_is_not_shown() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nARG VERSION=1\nARG API_TOKEN\nRUN echo $VERSION\n");
    k.build(&["--build-arg", "API_TOKEN=first-secret-value"]).ok();
    let run = k.build(&["--build-arg", "VERSION=2", "--build-arg", "API_TOKEN=first-secret-value"]).ok();
    assert_eq!(misses(&run.stderr), ["#2 cache miss: RUN echo $VERSION — build arg VERSION changed: \"1\" → \"2\""]);
    let run = k.build(&["--build-arg", "VERSION=2", "--build-arg", "API_TOKEN=second-secret-value"]).ok();
    assert_eq!(
        misses(&run.stderr),
        ["#2 cache miss: RUN echo $VERSION — build arg API_TOKEN changed: (hidden) → (hidden)"]
    );
    // Neither value is kept in the records.
    for entry in std::fs::read_dir(k.root().join("explain")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("secret-value"), "{text}");
    }
}

#[test]
fn an_edited_instruction_is_named_and_not_the_steps_after_it() {
    let k = Kiln::with_busybox();
    k.write("a.txt", "a\n");
    k.write("Dockerfile", "FROM busybox\nRUN echo one > /f\nCOPY a.txt /a\n");
    k.build(&[]).ok();
    k.write("Dockerfile", "FROM busybox\nRUN echo two > /f\nCOPY a.txt /a\n");
    let run = k.build(&[]).ok();
    assert_eq!(
        misses(&run.stderr),
        ["#2 cache miss: RUN echo two > /f — instruction changed: RUN echo one > /f → RUN echo two > /f"]
    );
}

#[test]
fn a_step_that_missed_because_its_input_changed_blames_the_input() {
    // The RUN hits a result of an older build, but the COPY after it was last
    // built on another RUN: the COPY misses, and the RUN's change is why.
    let k = Kiln::with_busybox();
    k.write("a.txt", "a\n");
    k.write("Dockerfile", "FROM busybox\nRUN echo one > /f\n");
    k.build(&[]).ok();
    k.write("Dockerfile", "FROM busybox\nRUN echo two > /f\nCOPY a.txt /a\n");
    k.build(&[]).ok();
    k.write("Dockerfile", "FROM busybox\nRUN echo one > /f\nCOPY a.txt /a\n");
    let run = k.build(&["--explain"]).ok();
    let want = "#3 cache miss: COPY a.txt /a\n#3   because its input #2 RUN echo one > /f changed:\n#3     instruction changed: RUN echo two > /f → RUN echo one > /f\n";
    assert!(run.stderr.contains(want), "{}", run.stderr);
}

#[test]
fn a_moved_base_image_is_named() {
    let k = Kiln::with_busybox();
    k.cmd(&["tag", "busybox", "base"]).ok();
    k.write("Dockerfile", "FROM base\nRUN true\n");
    k.build(&[]).ok();
    // `base` now names another image.
    k.write("other.Dockerfile", "FROM busybox\nRUN touch /moved\n");
    let other = k.ctx().join("other.Dockerfile");
    k.build(&["-f", other.to_str().unwrap(), "-t", "base"]).ok();
    let run = k.build(&[]).ok();
    let lines = misses(&run.stderr);
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].starts_with("#1 cache miss: FROM base — base image "), "{}", lines[0]);
    assert!(lines[0].contains(" changed: sha256:"), "{}", lines[0]);
}
