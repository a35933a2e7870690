//! Results shared across stages and builds: identical steps of two stages
//! run once, two builds at once on one store run a shared step once, and
//! `--no-cache-filter` runs the named stages again.

use std::process::Stdio;

use super::harness::{Kiln, Run};

/// The `#N` of the step named `name` (its first line), and how it ended.
fn outcome(stderr: &str, name: &str) -> Vec<&'static str> {
    let ids: Vec<String> = stderr
        .lines()
        .filter(|l| l.starts_with('#') && l.ends_with(name))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    ids.iter()
        .map(|id| {
            if stderr.lines().any(|l| l == format!("{id} CACHED")) {
                "CACHED"
            } else if stderr.lines().any(|l| l.starts_with(&format!("{id} DONE "))) {
                "DONE"
            } else {
                "?"
            }
        })
        .collect()
}

#[test]
fn identical_steps_of_two_stages_run_once() {
    let k = Kiln::with_busybox();
    let random = "RUN head -c 16 /dev/urandom | od -x > /r";
    k.write(
        "Dockerfile",
        &format!(
            "FROM busybox AS a\n{random}\nFROM busybox AS b\n{random}\n\
             FROM busybox\nCOPY --from=a /r /ra\nCOPY --from=b /r /rb\nRUN cmp /ra /rb\n"
        ),
    );
    let run = k.build(&[]).ok();
    assert_eq!(outcome(&run.stderr, "RUN head -c 16 /dev/urandom | od -x > /r"), ["DONE"], "{}", run.stderr);
}

#[test]
fn no_cache_filter_runs_the_named_stages_and_what_follows() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox AS a\nRUN echo a > /a\nFROM busybox AS b\nRUN echo b > /b\n\
         FROM busybox AS final\nCOPY --from=b /b /b\nCOPY --from=a /a /a\n",
    );
    k.build(&[]).ok();
    let run = k.build(&["--no-cache-filter", "A"]).ok();
    for (step, want) in [
        ("RUN echo a > /a", "DONE"),
        ("RUN echo b > /b", "CACHED"),
        ("COPY --from=b /b /b", "CACHED"),
        ("COPY --from=a /a /a", "DONE"),
    ] {
        assert_eq!(outcome(&run.stderr, step), [want], "{step}\n{}", run.stderr);
    }
    // Repeated or as a comma list; and the plain build after it hits.
    let run = k.build(&["--no-cache-filter", "b,final", "--no-cache-filter", "a"]).ok();
    assert_eq!(outcome(&run.stderr, "RUN echo b > /b"), ["DONE"], "{}", run.stderr);
    let run = k.build(&[]).ok();
    assert!(!run.stderr.contains(" DONE "), "{}", run.stderr);

    let bad = k.build(&["--no-cache-filter", "nope"]).failed();
    assert!(
        bad.stderr
            .contains("--no-cache-filter nope: the Dockerfile has no stage named \"nope\" (its stages: a, b, final)"),
        "{}",
        bad.stderr
    );
}

#[test]
fn two_builds_at_once_run_a_shared_step_once() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN sleep 2 && date +%s > /t\n");
    let ctx = k.ctx();
    let start = || {
        let mut cmd = k.command();
        cmd.args(["build", ctx.to_str().unwrap()]).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (Run::from(a.wait_with_output().unwrap()).ok(), Run::from(b.wait_with_output().unwrap()).ok());
    let mut seen: Vec<&str> =
        [&a, &b].iter().flat_map(|r| outcome(&r.stderr, "RUN sleep 2 && date +%s > /t")).collect();
    seen.sort();
    assert_eq!(seen, ["CACHED", "DONE"], "{}\n{}", a.stderr, b.stderr);
    // The same result: the same image.
    assert_eq!(a.stdout, b.stdout);
    assert!(std::fs::read_dir(k.root().join("locks")).unwrap().next().is_none(), "a lock file was left");
    assert!(k.cmd(&["run", a.stdout.trim(), "cat", "/t"]).ok().stdout.trim().parse::<u64>().is_ok());
}
