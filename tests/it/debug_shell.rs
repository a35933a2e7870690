//! `kiln build --debug-shell`: a failed RUN opens the image's /bin/sh in that
//! step's filesystem, environment, working directory and user, on kiln's own
//! standard streams; the build fails when the shell exits.

use std::io::Write;
use std::process::Stdio;

use super::harness::{Kiln, Run};

/// `kiln build --debug-shell` of the context, `input` written to its stdin.
fn build_with_shell(k: &Kiln, extra: &[&str], input: &str) -> Run {
    let mut cmd = k.command();
    cmd.arg("build").arg("--debug-shell").args(extra).arg(k.ctx());
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_failed_step_opens_a_shell_in_what_it_left_then_the_build_fails() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\nENV GREETING=hello\nWORKDIR /work\nUSER nobody\n\
             RUN echo half-done > /tmp/made && exit 3\n",
        );
        let input = "echo \"in=$(pwd) uid=$(id -u) env=$GREETING file=$(cat /tmp/made)\"; ls /; exit\n";
        let out = build_with_shell(&k, &[], input);
        let mode = k.mode;
        assert_ne!(out.code, 0, "the build must still fail ({mode:?}): {}", out.stderr);
        assert!(out.stderr.contains("exit code: 3"), "the step's own error ({mode:?}): {}", out.stderr);
        // The shell's output reaches kiln's stdout.
        assert!(
            out.stdout.contains("in=/work uid=65534 env=hello file=half-done"),
            "({mode:?}) stdout: {}\nstderr: {}",
            out.stdout,
            out.stderr
        );
        assert!(out.stdout.lines().any(|l| l == "bin"), "`ls /` ({mode:?}): {}", out.stdout);
        // The user is told where they are and how to leave.
        assert!(out.stderr.contains("debug shell:") && out.stderr.contains("exit"), "({mode:?}) {}", out.stderr);
    }
}

#[test]
fn without_the_flag_or_when_the_step_succeeds_no_shell_opens() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN false\n");
    let out = k.build(&[]).failed();
    assert!(!out.stderr.contains("debug shell"), "{}", out.stderr);
    k.write("Dockerfile", "FROM busybox\nRUN true\n");
    let out = build_with_shell(&k, &["--no-cache"], "echo SHELL-RAN; exit\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains("SHELL-RAN") && !out.stderr.contains("debug shell"), "{}", out.stderr);
}

#[test]
fn failed_steps_in_parallel_get_one_shell_after_the_other() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox AS a\nRUN echo a > /who && echo failing-a && false\n\
         FROM busybox AS b\nRUN echo b > /who && echo failing-b && false\n\
         FROM busybox\nCOPY --from=a /who /a\nCOPY --from=b /who /b\n",
    );
    let mut cmd = k.command();
    cmd.args(["build", "--debug-shell", "--jobs", "2"]).arg(k.ctx());
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (stdout, stderr) = (collect(child.stdout.take().unwrap()), collect(child.stderr.take().unwrap()));
    let mut stdin = child.stdin.take().unwrap();
    // Both steps have failed and one shell is open: the other waits for it.
    wait_for(&stderr, |e| e.contains("failing-a") && e.contains("failing-b") && e.contains("debug shell:"));
    assert_eq!(text(&stderr).matches("debug shell: /bin/sh").count(), 1, "{}", text(&stderr));
    stdin.write_all(b"echo shell-$(cat /who); exit\n").unwrap();
    wait_for(&stdout, |o| o.contains("shell-"));
    // Only now the second opens, and what is typed next goes to it alone.
    wait_for(&stderr, |e| e.matches("debug shell: /bin/sh").count() == 2);
    stdin.write_all(b"echo second-shell-$(cat /who); exit\n").unwrap();
    drop(stdin);
    assert!(!child.wait().unwrap().success());
    let out = text(&stdout);
    let first = out.lines().find_map(|l| l.strip_prefix("shell-")).unwrap();
    let second = out.lines().find_map(|l| l.strip_prefix("second-shell-"));
    let want = if first == "a" { "b" } else { "a" };
    assert_eq!(second, Some(want), "stdout: {out}\nstderr: {}", text(&stderr));
}

type Shared = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;

/// Everything `from` says, gathered by a thread as it comes.
fn collect(mut from: impl std::io::Read + Send + 'static) -> Shared {
    let buf = Shared::default();
    let out = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = from.read(&mut chunk) {
            out.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    buf
}

fn text(buf: &Shared) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

/// Wait until `done` holds for what `buf` gathered (a minute at most).
#[track_caller]
fn wait_for(buf: &Shared, done: impl Fn(&str) -> bool) {
    let start = std::time::Instant::now();
    while !done(&text(buf)) {
        assert!(start.elapsed().as_secs() < 60, "gave up waiting; so far:\n{}", text(buf));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
