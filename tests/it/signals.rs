//! Signals sent to `kiln run` reach the container's command, as docker's
//! default `--sig-proxy` does, and kiln exits with the command's status
//! (issue 6, fix 4). In rootless mode the signal goes to the outer kiln,
//! which re-executed itself in a user namespace and must pass it on too.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::harness::{Kiln, Mode};

/// A command that reports each signal it traps and exits with a code of its own.
const TRAPPER: &str = "trap 'echo got-term; exit 3' TERM; trap 'echo got-int; exit 4' INT; \
                       trap 'echo got-hup; exit 5' HUP; trap 'echo got-usr1; exit 6' USR1; \
                       trap 'echo got-usr2; exit 7' USR2; \
                       echo ready; while true; do sleep 0.1; done";

/// The kiln process a user would signal: the command the test started, or in
/// rootless mode the child of runuser (which would turn SIGTERM into a
/// SIGKILL of its own after two seconds).
fn kiln_pid(k: &Kiln, child: &Child) -> Pid {
    if k.mode == Mode::Root {
        return Pid::from_raw(child.id() as i32);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return Pid::from_raw(pid.parse().unwrap());
        }
        assert!(Instant::now() < deadline, "runuser started no kiln");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run the trapping command, wait for it to be ready, send `signal` to kiln;
/// return kiln's exit code and everything the command printed.
fn signal_run(k: &Kiln, signal: Signal) -> (i32, String) {
    let mut child = k
        .command()
        .args(["run", "--rm", "busybox", "sh", "-c", TRAPPER])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("ready") {
        let mut line = String::new();
        assert_ne!(stdout.read_line(&mut line).unwrap(), 0, "{:?}: kiln ended before the command was ready", k.mode);
        seen.push_str(&line);
    }
    kill(kiln_pid(k, &child), signal).unwrap();
    let waited = Instant::now();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(waited.elapsed() < Duration::from_secs(20), "{:?}: kiln took {:?} to end", k.mode, waited.elapsed());
    (status.code().unwrap_or(-1), seen + &rest)
}

#[test]
fn issue6_fix4_signals_sent_to_kiln_run_reach_the_command_and_its_status_is_kilns() {
    for k in Kiln::each_mode() {
        for (signal, said, code) in [
            (Signal::SIGTERM, "got-term", 3),
            (Signal::SIGINT, "got-int", 4),
            (Signal::SIGHUP, "got-hup", 5),
            (Signal::SIGUSR1, "got-usr1", 6),
            (Signal::SIGUSR2, "got-usr2", 7),
        ] {
            let (got, out) = signal_run(&k, signal);
            assert!(out.contains(said), "{:?} {signal}: the command's trap did not run:\n{out}", k.mode);
            assert_eq!(got, code, "{:?} {signal}: kiln's exit code is not the command's", k.mode);
        }
        k.assert_clean();
    }
}
