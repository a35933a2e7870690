//! `kiln build --progress`: the plain lines' shapes, rawjson, quiet, the
//! environment's choice, the live view in a terminal, and the full logs.

use regex::Regex;
use serde_json::Value;
use std::io::Read;

use super::harness::{spawn_in_terminal, Kiln, Run};

/// Two stages, one named and one not, a step that prints, a COPY.
const TWO_STAGES: &str = "FROM busybox AS build\nRUN echo hello from build\nFROM busybox\n\
    COPY --from=build /bin/busybox /copied\nRUN echo done\n";

fn build_with(k: &Kiln, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = k.command();
    cmd.arg("build").args(args).arg(k.ctx());
    for (name, value) in env {
        cmd.env(name, value);
    }
    Run::from(cmd.output().unwrap())
}

/// The step lines of plain progress, each of one of its shapes.
fn plain_lines(stderr: &str) -> Vec<&str> {
    let shapes = [
        r"^#\d+ \[((build|stage-1) )?\d+/\d+\] \S.*$",
        r"^#\d+ \d+\.\d{3} .*$",
        r"^#\d+ CACHED$",
        r"^#\d+ DONE \d+\.\ds$",
        r"^#\d+ ERROR: \S.*$",
    ]
    .map(|r| Regex::new(r).unwrap());
    let steps: Vec<&str> = stderr.lines().filter(|l| l.starts_with('#')).collect();
    for line in &steps {
        assert!(shapes.iter().any(|r| r.is_match(line)), "a line of no known shape: {line:?} in\n{stderr}");
    }
    steps
}

#[test]
fn plain_lines_name_each_step_by_its_stage_and_place_and_have_stable_shapes() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", TWO_STAGES);
    let out = k.build(&["--progress", "plain"]).ok();
    let steps = plain_lines(&out.stderr);
    for want in
        ["[build 2/2] RUN echo hello from build", "[stage-1 2/3] COPY --from=build", "[stage-1 3/3] RUN echo done"]
    {
        assert!(steps.iter().any(|l| l.contains(want)), "no step {want:?}:\n{}", out.stderr);
    }
    let n = steps.iter().find(|l| l.ends_with("RUN echo hello from build")).unwrap().split(' ').next().unwrap();
    assert!(
        steps.iter().any(|l| l.starts_with(&format!("{n} ")) && l.ends_with(" hello from build")),
        "{}",
        out.stderr
    );
    assert!(steps.iter().any(|l| l.starts_with(&format!("{n} DONE "))), "{}", out.stderr);
    let again = k.build(&["--progress", "plain"]).ok();
    assert!(plain_lines(&again.stderr).iter().any(|l| l.ends_with(" CACHED")), "{}", again.stderr);

    k.write("Dockerfile", "FROM busybox\nRUN echo oops; exit 3\n");
    let failed = k.build(&["--progress", "plain"]).failed();
    let steps = plain_lines(&failed.stderr);
    assert!(steps.iter().any(|l| l.starts_with("#2 ERROR: ") && l.contains("exit code: 3")), "{}", failed.stderr);
}

#[test]
fn rawjson_is_one_versioned_object_per_line_with_every_step() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", TWO_STAGES);
    let out = k.build(&["--progress", "rawjson"]).ok();
    let events: Vec<Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}\n{}", out.stderr)))
        .collect();
    assert!(events.iter().all(|e| e["v"] == 1 && e["event"].is_string()), "{}", out.stderr);
    let total = events.iter().find_map(|e| e["steps"].as_u64()).expect("step events");
    for step in 1..=total {
        let of = |kind: &str| events.iter().any(|e| e["step"] == step && e["event"] == kind);
        assert!(of("started") && (of("done") || of("cached")), "step {step}:\n{}", out.stderr);
    }
    let log = events.iter().find(|e| e["event"] == "log").expect("a log event");
    assert_eq!(log["text"], "hello from build");
    assert!(log["digest"].as_str().unwrap().starts_with("sha256:") && log["name"].is_string());
    let image = events.iter().find(|e| e["event"] == "image").expect("an image event");
    assert_eq!(image["id"].as_str().unwrap(), out.stdout.trim());
    assert_eq!(events.last().unwrap()["event"], "finished");
}

#[test]
fn quiet_prints_only_the_image_id_unless_the_build_fails() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN echo noisy\n");
    let id = Regex::new(r"^sha256:[0-9a-f]{64}\n$").unwrap();
    for flag in ["-q", "--quiet", "--progress=quiet"] {
        let out = k.build(&[flag, "-t", "quiet:1"]).ok();
        assert!(id.is_match(&out.stdout), "{flag}: {:?}", out.stdout);
        assert_eq!(out.stderr, "", "{flag}");
    }
    let both = k.build(&["-q", "--progress", "plain"]).failed();
    assert!(both.stderr.contains("--progress"), "{}", both.stderr);
    k.write("Dockerfile", "FROM busybox\nRUN echo why it failed; exit 4\n");
    let failed = k.build(&["-q"]).failed();
    assert_eq!(failed.stdout, "");
    assert!(failed.stderr.contains("exit code: 4") && failed.stderr.contains("| why it failed"), "{}", failed.stderr);
}

#[test]
fn kiln_progress_in_the_environment_is_honoured_and_the_flag_wins() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN echo hi\n");
    let raw = build_with(&k, &[("KILN_PROGRESS", "rawjson")], &[]).ok();
    assert!(raw.stderr.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{}", raw.stderr);
    let plain = build_with(&k, &[("KILN_PROGRESS", "rawjson")], &["--progress", "plain"]).ok();
    assert!(plain.stderr.lines().any(|l| l == "#2 CACHED"), "{}", plain.stderr);
    let quiet = build_with(&k, &[("KILN_PROGRESS", "quiet")], &[]).ok();
    assert_eq!(quiet.stderr, "");
    let bad = build_with(&k, &[("KILN_PROGRESS", "fancy")], &[]).failed();
    assert!(bad.stderr.contains("KILN_PROGRESS=\"fancy\"") && bad.stderr.contains("plain"), "{}", bad.stderr);
    let bad = k.build(&["--progress", "fancy"]).failed();
    assert!(bad.stderr.contains("fancy") && bad.stderr.contains("rawjson"), "{}", bad.stderr);
    // Asked for by name, the live view needs a terminal (a pipe here).
    let tty = k.build(&["--progress", "tty"]).failed();
    assert!(tty.stderr.contains("not a terminal"), "{}", tty.stderr);
}

/// On a terminal, `auto` is the live view: its steps and its summary line.
#[test]
fn on_a_terminal_the_live_view_ends_with_a_summary_line() {
    let summary = Regex::new(r"\[\+\] Building \d+\.\ds \(2/2\) FINISHED").unwrap();
    for k in Kiln::each_mode() {
        k.write("Dockerfile", "FROM busybox\nRUN echo live; sleep 0.3\n");
        let mut cmd = k.command();
        cmd.args(["build", "-t", "live"]).arg(k.ctx()).env("TERM", "xterm").env_remove("KILN_PROGRESS");
        let (mut child, mut master) = spawn_in_terminal(&mut cmd);
        // It holds the terminal's other end too: reads would never end.
        drop(cmd);
        let mut screen = Vec::new();
        let mut buf = [0u8; 4096];
        // Reads end with EIO once kiln, the terminal's last user, is gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            screen.extend_from_slice(&buf[..n]);
        }
        let status = child.wait().unwrap();
        let screen = String::from_utf8_lossy(&screen);
        assert!(status.success(), "{:?}: {screen}", k.mode);
        assert!(summary.is_match(&screen), "{:?}: no summary line in\n{screen}", k.mode);
        assert!(screen.contains("=> [2/2] RUN echo live; sleep 0.3"), "{:?}: {screen}", k.mode);
        assert!(screen.contains("sha256:"), "the ID on stdout: {screen}");
    }
}

/// A step's whole output is on disk, however long; a failure names the file
/// and shows the last lines.
#[test]
fn a_failed_steps_full_output_is_kept_and_its_path_printed_with_its_last_lines() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN seq 1 10000; exit 3\n");
    let out = k.build(&[]).failed();
    let path = Regex::new(r"the step's full output is in (\S+\.log)").unwrap();
    let path = &path.captures(&out.stderr).unwrap_or_else(|| panic!("no log path in\n{}", out.stderr))[1];
    assert!(path.starts_with(k.root().join("logs").to_str().unwrap()), "{path}");
    let log = std::fs::read_to_string(path).unwrap();
    let want: String = (1..=10_000).map(|i| format!("{i}\n")).collect();
    assert!(log == want, "the log holds the whole output ({} lines)", log.lines().count());
    let shown: Vec<&str> = out.stderr.lines().filter_map(|l| l.strip_prefix("  | ")).collect();
    let last: Vec<String> = (9_981..=10_000).map(|i| i.to_string()).collect();
    assert_eq!(shown, last, "the last 20 lines:\n{}", out.stderr);
}
