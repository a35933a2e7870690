//! No step or container shares the caller's terminal: it runs in a session
//! of its own with no controlling terminal, and its standard streams are
//! pipes kiln copies, so TIOCSTI cannot push keystrokes into the user's
//! shell.

use std::io::Read;
use std::process::Stdio;

use super::super::harness::{spawn_in_terminal, Kiln};

/// Run kiln with a new pseudo-terminal as its controlling terminal and all
/// three streams, as in an interactive shell; return what it printed there.
fn in_terminal(k: &Kiln, args: &[&str]) -> (i32, String) {
    let mut cmd = k.command();
    cmd.args(args);
    let (mut child, master) = spawn_in_terminal(&mut cmd);
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        // EIO once every holder of the terminal's other end is gone.
        let _ = { master }.read_to_end(&mut out);
        String::from_utf8_lossy(&out).replace("\r\n", "\n")
    });
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, reader.join().unwrap())
}

/// Prints the controlling terminal (field 7 of /proc/self/stat, 0 for none)
/// and whether any standard stream or /dev/tty is a terminal.
/// Markers are put together at run time, so the command line that progress
/// output echoes never holds them.
const PROBE: &str = "T=TTY; echo C$T=$(cut -d' ' -f7 /proc/self/stat); \
                     for fd in 0 1 2; do [ -t $fd ] && echo $T-ON-$fd; done; \
                     (: </dev/tty) 2>/dev/null && echo DEV-$T-OPENS; true";

#[test]
fn run_and_run_steps_have_no_controlling_terminal_and_no_tty_fd() {
    for k in Kiln::each_mode() {
        let (code, out) = in_terminal(&k, &["run", "busybox", "sh", "-c", PROBE]);
        assert_eq!(code, 0, "{:?}: {out}", k.mode);
        assert!(out.contains("CTTY=0"), "{:?}: the container has a controlling terminal:\n{out}", k.mode);
        for bad in ["TTY-ON-", "DEV-TTY-OPENS"] {
            assert!(!out.contains(bad), "{:?}: {bad}\n{out}", k.mode);
        }

        k.write("Dockerfile", &format!("FROM busybox\nRUN {PROBE}\n"));
        let ctx = k.ctx();
        let (code, out) = in_terminal(&k, &["build", "--no-cache", ctx.to_str().unwrap()]);
        assert_eq!(code, 0, "{:?}: {out}", k.mode);
        assert!(out.contains("CTTY=0"), "{:?}: a RUN step has a controlling terminal:\n{out}", k.mode);
        for bad in ["TTY-ON-", "DEV-TTY-OPENS"] {
            assert!(!out.contains(bad), "{:?}: {bad}\n{out}", k.mode);
        }
    }
}

#[test]
fn run_still_passes_piped_input_and_output_through() {
    for k in Kiln::each_mode() {
        let mut child = k
            .command()
            .args(["run", "busybox", "sh", "-c", "tr a-z A-Z; echo err >&2"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"piped\n").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{:?}: {}", k.mode, String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED\n", "{:?}", k.mode);
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n", "{:?}", k.mode);
    }
}
