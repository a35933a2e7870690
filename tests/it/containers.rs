//! Containers that live on: `run -d`, `ps`, `logs`, `stop`, `kill`, `rm`,
//! `start`, `wait`, for root and rootless kiln alike.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::harness::{Kiln, Mode};

/// Poll `check` until it holds, for at most 20 s.
#[track_caller]
pub(super) fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Everything read from a pty's master, as it comes, on a thread of its own.
pub(super) fn read_all(master: &std::fs::File) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::Read as _;
    let mut reader = master.try_clone().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    seen
}

/// `ps -a`'s line for the container named `name`.
pub(super) fn ps_line(k: &Kiln, name: &str) -> Option<String> {
    let out = k.cmd(&["ps", "-a"]).ok();
    out.stdout.lines().find(|l| l.split_whitespace().last() == Some(name)).map(str::to_owned)
}

/// Processes whose command line names this store (monitors, sandboxes).
pub(super) fn processes_of(k: &Kiln) -> Vec<String> {
    let out = Command::new("ps").args(["-eo", "pid,args"]).output().unwrap();
    let root = k.root().to_string_lossy().into_owned();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&root) && (l.contains("__monitor") || l.contains("__sandbox")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_detached_container_outlives_the_cli_logs_and_stops_cleanly() {
    for k in Kiln::each_mode() {
        // The trap first: a stop before it would find no trap to run.
        let script = "trap 'echo bye; exit 3' TERM; echo hello; echo oops >&2; while true; do sleep 0.1; done";
        let out = k.cmd(&["run", "-d", "--name", "web", "busybox", "sh", "-c", script]).ok();
        let id = out.stdout.trim().to_owned();
        assert!(id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{:?}: {}", k.mode, out.stdout);
        // The command that started it has ended; the container runs on.
        let line = ps_line(&k, "web").expect("ps lists it");
        assert!(line.starts_with(&id[..12]) && line.contains("Up "), "{:?}: {line}", k.mode);
        assert!(k.cmd(&["ps", "-q"]).ok().stdout.contains(&id[..12]));
        eventually("its output is logged", || k.cmd(&["logs", "web"]).stdout == "hello\n");
        let logs = k.cmd(&["logs", "web"]).ok();
        assert_eq!((logs.stdout.as_str(), logs.stderr.as_str()), ("hello\n", "oops\n"), "{:?}", k.mode);
        // By a unique start of its ID, as well as by name.
        assert_eq!(k.cmd(&["stop", &id[..8]]).ok().stdout, format!("{}\n", &id[..8]));
        let line = ps_line(&k, "web").expect("an exited container stays");
        assert!(line.contains("Exited (3)"), "{:?}: {line}", k.mode);
        assert!(!k.cmd(&["ps"]).ok().stdout.contains("web"), "ps without -a lists running ones only");
        assert_eq!(k.cmd(&["logs", "web"]).stdout, "hello\nbye\n");
        assert_eq!(k.cmd(&["wait", "web"]).ok().stdout, "3\n");
        assert!(processes_of(&k).is_empty(), "{:?}", processes_of(&k));
        k.cmd(&["rm", "web"]).ok();
        assert_eq!(ps_line(&k, "web"), None);
        k.assert_clean();
    }
}

#[test]
fn stop_kills_a_command_that_ignores_the_stop_signal_after_the_timeout() {
    for k in Kiln::each_mode() {
        let script = "trap '' TERM; echo ready; while true; do sleep 0.1; done";
        k.cmd(&["run", "-d", "--name", "stubborn", "busybox", "sh", "-c", script]).ok();
        eventually("the trap is set", || k.cmd(&["logs", "stubborn"]).stdout == "ready\n");
        let started = Instant::now();
        k.cmd(&["stop", "-t", "1", "stubborn"]).ok();
        assert!(started.elapsed() >= Duration::from_millis(900), "SIGKILL came before the timeout");
        let line = ps_line(&k, "stubborn").unwrap();
        assert!(line.contains("Exited (137)"), "{line}");
        k.cmd(&["rm", "stubborn"]).ok();
        k.assert_clean();
    }
}

#[test]
fn kill_sends_the_signal_asked_and_refuses_one_it_cannot_pass_on() {
    for k in Kiln::each_mode() {
        let script = "trap 'exit 10' USR1; echo ready; while true; do sleep 0.1; done";
        k.cmd(&["run", "-d", "--name", "kk", "busybox", "sh", "-c", script]).ok();
        eventually("the trap is set", || k.cmd(&["logs", "kk"]).stdout == "ready\n");
        let out = k.cmd(&["kill", "-s", "SIGSTOP", "kk"]).failed();
        assert!(out.stderr.contains("SIGSTOP") && out.stderr.contains("SIGKILL"), "{}", out.stderr);
        k.cmd(&["kill", "-s", "usr1", "kk"]).ok();
        assert_eq!(k.cmd(&["wait", "kk"]).ok().stdout, "10\n");
        let out = k.cmd(&["kill", "kk"]).failed();
        assert!(out.stderr.contains("not running"), "{}", out.stderr);
        k.cmd(&["run", "-d", "--name", "k2", "busybox", "sleep", "1000"]).ok();
        k.cmd(&["kill", "k2"]).ok();
        assert_eq!(k.cmd(&["wait", "k2"]).ok().stdout, "137\n");
        k.cmd(&["rm", "kk", "k2"]).ok();
        k.assert_clean();
    }
}

#[test]
fn killing_the_monitor_marks_the_container_exited_with_the_reason_and_leaves_nothing() {
    for k in Kiln::each_mode() {
        let id = k.cmd(&["run", "-d", "--name", "victim", "busybox", "sleep", "1000"]).ok().stdout.trim().to_owned();
        let monitor: Vec<String> = processes_of(&k).into_iter().filter(|l| l.contains("__monitor")).collect();
        assert_eq!(monitor.len(), 1, "{monitor:?}");
        assert!(monitor[0].contains(&id));
        let pid = monitor[0].split_whitespace().next().unwrap();
        assert!(Command::new("kill").args(["-9", pid]).status().unwrap().success());
        // Reaped, not only dead: what it left in the store is swept by the next kiln.
        eventually("the monitor is reaped", || !std::path::Path::new(&format!("/proc/{pid}")).exists());
        eventually("the container's processes are gone", || processes_of(&k).is_empty());
        let line = ps_line(&k, "victim").unwrap();
        assert!(line.contains("Exited (255)"), "{:?}: {line}", k.mode);
        let state = std::fs::read_to_string(k.root().join("containers").join(&id).join("state.json")).unwrap();
        assert!(state.contains("monitor") && state.contains("died"), "{state}");
        k.cmd(&["rm", "victim"]).ok();
        k.assert_clean();
    }
}

#[test]
fn logs_follow_until_the_container_ends_and_take_tail_and_timestamps() {
    for k in Kiln::each_mode() {
        k.cmd(&[
            "run",
            "-d",
            "--name",
            "talk",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3; do echo line$i; sleep 0.4; done",
        ])
        .ok();
        // Started before the last lines exist; it ends by itself when the container does.
        let follow = k.command().args(["logs", "-f", "talk"]).stdout(Stdio::piped()).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&follow.stdout), "line1\nline2\nline3\n");
        assert_eq!(k.cmd(&["logs", "--tail", "1", "talk"]).ok().stdout, "line3\n");
        let stamped = k.cmd(&["logs", "-t", "--tail", "2", "talk"]).ok().stdout;
        let lines: Vec<&str> = stamped.lines().collect();
        assert_eq!(lines.len(), 2, "{stamped}");
        for (line, want) in lines.iter().zip(["line2", "line3"]) {
            let (time, text) = line.split_once(' ').unwrap();
            assert_eq!(text, want);
            assert!(time.len() == 30 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        }
        k.cmd(&["rm", "talk"]).ok();
    }
}

#[test]
fn an_attached_run_is_recorded_unless_rm_and_start_runs_it_again_with_its_files() {
    for k in Kiln::each_mode() {
        let out = k.cmd(&["run", "--name", "keep", "busybox", "sh", "-c", "echo x >> /f; cat /f"]).ok();
        assert_eq!(out.stdout, "x\n");
        assert!(ps_line(&k, "keep").unwrap().contains("Exited (0)"));
        assert_eq!(k.cmd(&["start", "keep"]).ok().stdout, "keep\n");
        assert_eq!(k.cmd(&["wait", "keep"]).ok().stdout, "0\n");
        // The second run saw the first one's file: the container keeps its changes.
        assert_eq!(k.cmd(&["logs", "keep"]).ok().stdout, "x\nx\nx\n");
        // restart: stopped (it is already), then started again.
        assert_eq!(k.cmd(&["restart", "keep"]).ok().stdout, "keep\n");
        assert_eq!(k.cmd(&["wait", "keep"]).ok().stdout, "0\n");
        assert_eq!(k.cmd(&["logs", "--tail", "3", "keep"]).ok().stdout, "x\nx\nx\n");
        assert_eq!(k.cmd(&["logs", "keep"]).ok().stdout.lines().count(), 6);
        k.cmd(&["run", "--rm", "--name", "gone", "busybox", "true"]).ok();
        assert_eq!(ps_line(&k, "gone"), None);
        k.cmd(&["run", "-d", "--rm", "--name", "gone-too", "busybox", "true"]).ok();
        eventually("a --rm container is removed when it exits", || ps_line(&k, "gone-too").is_none());
        k.cmd(&["rm", "keep"]).ok();
        let left: Vec<_> = std::fs::read_dir(k.root().join("containers"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "names")
            .collect();
        assert!(left.is_empty(), "{left:?}");
        k.assert_clean();
    }
}

#[test]
fn bad_names_and_references_are_clear_errors_that_leave_nothing() {
    for k in Kiln::each_mode() {
        k.cmd(&["run", "-d", "--name", "taken", "busybox", "sleep", "1000"]).ok();
        let out = k.cmd(&["run", "-d", "--name", "taken", "busybox", "true"]);
        assert_eq!(out.code, 125);
        assert!(out.stderr.contains("\"taken\" is already in use"), "{}", out.stderr);
        let out = k.cmd(&["run", "--name=-bad", "busybox", "true"]);
        assert!(out.code == 125 && out.stderr.contains("invalid container name"), "{}", out.stderr);
        assert_eq!(k.cmd(&["ps", "-a", "-q"]).ok().stdout.lines().count(), 1);
        let out = k.cmd(&["rm", "taken"]).failed();
        assert!(out.stderr.contains("is running") && out.stderr.contains("rm -f"), "{}", out.stderr);
        let out = k.cmd(&["logs", "nope"]).failed();
        assert!(out.stderr.contains("no such container: nope"), "{}", out.stderr);
        let out = k.cmd(&["stop", "nope", "taken"]).failed();
        assert_eq!(out.stdout, "taken\n", "the others are still done");
        k.cmd(&["rm", "-f", "taken"]).ok();
        assert!(processes_of(&k).is_empty());
        assert_eq!(k.cmd(&["ps", "-a", "-q"]).ok().stdout, "");
        k.assert_clean();
    }
}

#[test]
fn rmi_refuses_the_last_name_of_an_image_a_container_uses_unless_forced() {
    for k in Kiln::each_mode() {
        k.cmd(&["tag", "busybox", "other:name"]).ok();
        k.cmd(&["run", "-d", "--name", "holder", "busybox", "sleep", "1000"]).ok();
        // Another name stays on the image: that one can go.
        assert_eq!(k.cmd(&["rmi", "other:name"]).ok().stdout, "Untagged: other:name\n");
        let out = k.cmd(&["rmi", "busybox"]).failed();
        assert!(
            out.stderr.contains("running container holder uses it") && out.stderr.contains("rmi -f"),
            "{}",
            out.stderr
        );
        assert!(k.cmd(&["images"]).ok().stdout.contains("busybox"), "nothing is removed");
        // Never its ID while it runs, forced or not.
        let images = k.cmd(&["images"]).ok().stdout;
        let line = images.lines().find(|l| l.starts_with("busybox ")).unwrap();
        let id = line.split_whitespace().nth(2).unwrap().to_owned();
        let out = k.cmd(&["rmi", "-f", &id]).failed();
        assert!(out.stderr.contains("kiln stop holder"), "{}", out.stderr);
        k.cmd(&["stop", "-t", "0", "holder"]).ok();
        let out = k.cmd(&["rmi", "busybox"]).failed();
        assert!(out.stderr.contains("the container holder uses it"), "{}", out.stderr);
        // Forced, the name goes; the container keeps its layers and starts again.
        assert_eq!(k.cmd(&["rmi", "-f", "busybox"]).ok().stdout, "Untagged: busybox:latest\n");
        k.cmd(&["start", "holder"]).ok();
        assert!(ps_line(&k, "holder").unwrap().contains("Up "));
        k.cmd(&["rm", "-f", "holder"]).ok();
    }
}

#[test]
fn rm_f_of_a_running_container_leaves_no_process_mount_or_cgroup() {
    for k in Kiln::each_mode() {
        // A number no other test sleeps for.
        k.cmd(&["run", "-d", "--name", "busy", "busybox", "sh", "-c", "sleep 4711 & sleep 4711"]).ok();
        let monitor = processes_of(&k).into_iter().find(|l| l.contains("__monitor")).unwrap();
        let pid = monitor.split_whitespace().next().unwrap().to_owned();
        k.cmd(&["rm", "-f", "busy"]).ok();
        assert!(processes_of(&k).is_empty(), "{:?}: {:?}", k.mode, processes_of(&k));
        let sleeps = Command::new("pgrep").args(["-f", "sleep 4711"]).output().unwrap();
        assert!(sleeps.stdout.is_empty(), "left running: {}", String::from_utf8_lossy(&sleeps.stdout));
        // The sandbox's cgroups are named after the process that made them: the monitor.
        let cgroups = Command::new("find")
            .args(["/sys/fs/cgroup", "-maxdepth", "8", "-name", &format!("kiln-{pid}-*")])
            .output()
            .unwrap();
        assert!(cgroups.stdout.is_empty(), "cgroups left: {}", String::from_utf8_lossy(&cgroups.stdout));
        k.assert_clean();
    }
}

#[test]
fn a_container_over_its_memory_limit_is_oom_killed_and_inspect_says_so() {
    let k = Kiln::with_busybox();
    let out = k.cmd(&[
        "run",
        "--name",
        "hog",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sh",
        "-c",
        "echo start; dd if=/dev/zero of=/dev/null bs=200M count=1",
    ]);
    assert_eq!(out.code, 137, "{}{}", out.stdout, out.stderr);
    let state: serde_json::Value = serde_json::from_str(&k.cmd(&["inspect", "hog"]).ok().stdout).unwrap();
    assert_eq!(state["State"]["OOMKilled"], true, "{state}");
    assert_eq!(state["State"]["ExitCode"], 137);
    assert_eq!(state["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(state["HostConfig"]["PidsLimit"], 50);
    // The same command within its limit is not.
    k.cmd(&[
        "run",
        "--name",
        "fits",
        "-m",
        "512m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=200M",
        "count=1",
    ])
    .ok();
    let state: serde_json::Value = serde_json::from_str(&k.cmd(&["inspect", "fits"]).ok().stdout).unwrap();
    assert_eq!(state["State"]["OOMKilled"], false, "{state}");
    // Below the kernel's minimum: refused before anything is made.
    let out = k.cmd(&["run", "-m", "1m", "busybox", "true"]);
    assert!(out.code == 125 && out.stderr.contains("below the minimum"), "{}", out.stderr);
    assert_eq!(k.cmd(&["ps", "-aq"]).ok().stdout.lines().count(), 2);
    k.cmd(&["rm", "hog", "fits"]).ok();
    k.assert_clean();
    // Rootless where the cgroup tree is not delegated (CI's machines and
    // this one): the limit is refused, never ignored, and nothing is made.
    let k = Kiln::in_mode(Mode::Rootless);
    let out = k.cmd(&["run", "--name", "hog", "-m", "64m", "busybox", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out.stderr.contains("--memory needs a cgroup") && out.stderr.contains("not delegated"), "{}", out.stderr);
    assert_eq!(k.cmd(&["ps", "-aq"]).ok().stdout, "");
    k.assert_clean();
}

#[test]
fn the_network_is_the_containers_own_unless_host_and_none_has_only_loopback() {
    for k in Kiln::each_mode() {
        // Interface names, as /proc/net/dev lists them.
        let interfaces = |network: &str| {
            let script = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' '";
            k.cmd(&["run", "--rm", "--network", network, "busybox", "sh", "-c", script]).ok().stdout
        };
        assert_eq!(interfaces("none"), "lo ");
        let own = interfaces("default");
        assert!(own.contains("lo ") && own.split(' ').filter(|s| !s.is_empty()).count() == 2, "{own}");
        let host = std::fs::read_to_string("/proc/net/dev").unwrap();
        let host_count = host.lines().skip(2).count();
        assert_eq!(interfaces("host").split(' ').filter(|s| !s.is_empty()).count(), host_count);
        let out = k.cmd(&["run", "--network", "bogus", "busybox", "true"]);
        assert!(out.code == 125 && out.stderr.contains("expected default, none or host"), "{}", out.stderr);
    }
}

#[test]
fn env_files_then_e_flags_set_the_environment_and_a_bad_line_is_named() {
    for k in Kiln::each_mode() {
        let file = k.dir.path().join("app.env");
        std::fs::write(&file, "# settings\nA=from-file\nB=file b\n").unwrap();
        k.give(&file);
        let file = file.to_str().unwrap();
        let out =
            k.cmd(&["run", "--rm", "--env-file", file, "-e", "A=from-flag", "busybox", "sh", "-c", "echo $A/$B"]).ok();
        assert_eq!(out.stdout, "from-flag/file b\n");
        std::fs::write(file, "A=1\nNOT A NAME=2\n").unwrap();
        let out = k.cmd(&["run", "--rm", "--env-file", file, "busybox", "true"]);
        assert!(out.code == 125 && out.stderr.contains("line 2"), "{}", out.stderr);
    }
}

#[test]
fn exec_runs_in_the_containers_namespaces_as_confined_as_its_command() {
    for k in Kiln::each_mode() {
        let script = "echo made > /tmp/file; exec sleep 4712";
        k.cmd(&["run", "-d", "--name", "target", "-e", "FROM_RUN=1", "busybox", "sh", "-c", script]).ok();
        eventually("the container wrote its file", || {
            k.cmd(&["exec", "target", "cat", "/tmp/file"]).stdout == "made\n"
        });
        // Its processes (the pid namespace), its hostname, its environment.
        let out = k.cmd(&["exec", "-e", "X=2", "target", "sh", "-c", "ps -o args; hostname; echo $FROM_RUN$X"]).ok();
        assert!(out.stdout.contains("sleep 4712"), "{:?}: {}", k.mode, out.stdout);
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[lines.len() - 1], "12", "{:?}", k.mode);
        let id = k.cmd(&["ps", "-q", "--no-trunc"]).ok().stdout.trim().to_owned();
        assert_eq!(lines[lines.len() - 2], &id[..12]);
        // The same capabilities as the container's command: docker's set, no CAP_SYS_ADMIN.
        let caps = |args: &[&str]| {
            let out = k.cmd(args).ok().stdout;
            out.lines().find(|l| l.starts_with("CapBnd:")).unwrap().to_owned()
        };
        assert_eq!(
            caps(&["exec", "target", "cat", "/proc/self/status"]),
            caps(&["run", "--rm", "busybox", "cat", "/proc/self/status"])
        );
        let out = k.cmd(&["exec", "-u", "nobody", "-w", "/tmp", "target", "sh", "-c", "id -u; pwd"]).ok();
        assert_eq!(out.stdout, "65534\n/tmp\n");
        assert_eq!(k.cmd(&["exec", "target", "no-such-command"]).code, 127);
        assert_eq!(k.cmd(&["exec", "target", "sh", "-c", "exit 7"]).code, 7);
        let piped = k
            .command()
            .args(["exec", "-i", "target", "tr", "a-z", "A-Z"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        piped.stdin.as_ref().unwrap().write_all(b"piped\n").unwrap();
        let out = piped.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "PIPED\n");
        k.cmd(&["stop", "-t", "0", "target"]).ok();
        let out = k.cmd(&["exec", "target", "true"]);
        assert!(out.code == 125 && out.stderr.contains("is not running"), "{}", out.stderr);
        k.cmd(&["rm", "target"]).ok();
        k.assert_clean();
    }
}

#[test]
fn run_it_is_an_interactive_shell_on_a_terminal_of_its_own_that_follows_the_window() {
    use std::io::Write as _;
    use std::os::fd::AsRawFd;
    for k in Kiln::each_mode() {
        let mut cmd = k.command();
        cmd.args(["run", "-it", "--rm", "busybox", "sh"]);
        let (mut child, mut master) = super::harness::spawn_in_sized_terminal(&mut cmd, Some((33, 101)));
        let seen = read_all(&master);
        let saw = |what: &str| seen.lock().unwrap().contains(what);
        // Typed as a person types: a line, read by the shell on its own terminal.
        master.write_all(b"stty size; [ -t 0 ] && echo on-a-$((6*7))-tty\n").unwrap();
        eventually("the shell answers on its terminal", || saw("33 101") && saw("on-a-42-tty"));
        let resized = nix::pty::Winsize { ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
        // SAFETY: TIOCSWINSZ reads one winsize.
        assert_eq!(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &resized) }, 0);
        master.write_all(b"stty size; exit 5\n").unwrap();
        eventually("the new size reaches the container", || saw("40 120"));
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(5), "{:?}: {}", k.mode, seen.lock().unwrap());
        // kiln's terminal is as it was: cooked, echoing (a pty's two ends share its modes).
        let modes = nix::sys::termios::tcgetattr(&master).unwrap();
        use nix::sys::termios::LocalFlags;
        assert!(modes.local_flags.contains(LocalFlags::ECHO | LocalFlags::ICANON), "{:?}", k.mode);
        k.assert_clean();
    }
}

#[test]
fn a_published_port_answers_on_loopback_and_a_port_in_use_is_a_clear_error() {
    use std::io::{Read as _, Write as _};
    for k in Kiln::each_mode() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let publish = format!("{port}:8080");
        let script = "echo hello-from-the-container > /tmp/index.html; exec httpd -f -p 8080 -h /tmp";
        k.cmd(&["run", "-d", "--name", "web", "-p", &publish, "busybox", "sh", "-c", script]).ok();
        let mut answer = String::new();
        eventually("the published port answers", || {
            let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            answer.clear();
            conn.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").is_ok()
                && conn.read_to_string(&mut answer).is_ok()
                && answer.contains("hello-from-the-container")
        });
        let line = ps_line(&k, "web").unwrap();
        assert!(line.contains(&format!("0.0.0.0:{port}->8080/tcp")), "{line}");
        // The host port is taken now: the second container cannot have it.
        let out = k.cmd(&["run", "-d", "--name", "second", "-p", &publish, "busybox", "sleep", "10"]);
        assert_eq!(out.code, 125, "{:?}: {}", k.mode, out.stderr);
        assert!(out.stderr.contains(&port.to_string()) && out.stderr.contains("pasta"), "{}", out.stderr);
        let out = k.cmd(&["run", "--network", "none", "-p", "8081:80", "busybox", "true"]);
        assert!(out.code == 125 && out.stderr.contains("--network host or none"), "{}", out.stderr);
        let out = k.cmd(&["run", "-p", "99999:80", "busybox", "true"]);
        assert!(out.code == 125 && out.stderr.contains("ports are 1 to 65535"), "{}", out.stderr);
        k.cmd(&["rm", "-f", "web", "second"]).ok();
        let listening = || Command::new("ss").args(["-Hltnp", &format!("sport = :{port}")]).output().unwrap().stdout;
        assert!(
            listening().is_empty(),
            "{:?}: the port is let go with the container: {}",
            k.mode,
            String::from_utf8_lossy(&listening())
        );
        k.assert_clean();
    }
}

#[test]
fn volume_data_outlives_its_containers_and_an_empty_volume_is_filled_from_the_image() {
    for k in Kiln::each_mode() {
        // /etc holds the image's files: a new volume there starts with them.
        k.cmd(&[
            "run",
            "--rm",
            "-v",
            "data:/etc",
            "busybox",
            "sh",
            "-c",
            "test -f /etc/passwd && echo kept > /etc/mine",
        ])
        .ok();
        let out = k.cmd(&["run", "--rm", "-v", "data:/srv", "busybox", "cat", "/srv/mine"]).ok();
        assert_eq!(out.stdout, "kept\n", "{:?}", k.mode);
        assert!(k.cmd(&["volume", "ls", "-q"]).ok().stdout.lines().any(|l| l == "data"));
        let inspect: serde_json::Value =
            serde_json::from_str(&k.cmd(&["volume", "inspect", "data"]).ok().stdout).unwrap();
        let data = std::path::PathBuf::from(inspect[0]["Mountpoint"].as_str().unwrap());
        assert_eq!(std::fs::read_to_string(data.join("mine")).unwrap(), "kept\n");
        // In use: refused; unused: removed.
        k.cmd(&["run", "-d", "--name", "user", "-v", "data:/srv", "busybox", "sleep", "4713"]).ok();
        let out = k.cmd(&["volume", "rm", "data"]).failed();
        assert!(out.stderr.contains("in use by container user"), "{}", out.stderr);
        k.cmd(&["rm", "-f", "user"]).ok();
        k.cmd(&["volume", "rm", "data"]).ok();
        assert!(!data.exists());
        k.assert_clean();
    }
}

#[test]
fn binds_tmpfs_and_anonymous_volumes_mount_as_asked_and_bad_ones_are_clear_errors() {
    for k in Kiln::each_mode() {
        let host = k.dir.path().join("shared");
        std::fs::create_dir(&host).unwrap();
        std::fs::write(host.join("from-host"), "hi\n").unwrap();
        k.give(&host);
        let bind = format!("{}:/shared:ro", host.display());
        let out = k.cmd(&["run", "--rm", "-v", &bind, "--mount", "type=tmpfs,target=/scratch", "busybox", "sh", "-c",
            "cat /shared/from-host; touch /shared/x 2>/dev/null || echo read-only; grep -c ' /scratch tmpfs' /proc/mounts"]).ok();
        assert_eq!(out.stdout, "hi\nread-only\n1\n");
        let rw = format!("{}:/shared", host.display());
        k.cmd(&["run", "--rm", "-v", &rw, "busybox", "sh", "-c", "echo back > /shared/from-container"]).ok();
        assert_eq!(std::fs::read_to_string(host.join("from-container")).unwrap(), "back\n");
        // An anonymous volume, removed with its container by rm -v.
        k.cmd(&["run", "--name", "anon", "-v", "/cache", "busybox", "sh", "-c", "echo x > /cache/f"]).ok();
        assert_eq!(k.cmd(&["volume", "ls", "-q"]).ok().stdout.lines().count(), 1);
        k.cmd(&["rm", "-v", "anon"]).ok();
        assert_eq!(k.cmd(&["volume", "ls", "-q"]).ok().stdout, "");
        // An image's VOLUME gets one too, pruned once unused.
        k.write("Dockerfile", "FROM busybox\nVOLUME /state\n");
        k.build(&["-t", "withvol"]).ok();
        k.cmd(&["run", "--rm", "withvol", "sh", "-c", "grep -c ' /state ' /proc/mounts"]).ok();
        k.cmd(&["run", "--name", "keeps", "withvol", "true"]).ok();
        assert_eq!(k.cmd(&["volume", "ls", "-q"]).ok().stdout.lines().count(), 1, "--rm took its own, keeps has one");
        k.cmd(&["rm", "keeps"]).ok();
        assert_eq!(k.cmd(&["volume", "prune", "-f"]).ok().stdout.lines().count(), 1);
        for (args, want) in [
            (&["run", "-v", "/no/such/dir:/x", "busybox", "true"][..], "/no/such/dir does not exist"),
            (
                &["run", "--mount", "type=volume,source=v,target=/v,volume-driver=nfs", "busybox", "true"],
                "unknown volume driver \"nfs\"",
            ),
            (&["run", "-v", "vol:relative", "busybox", "true"], "absolute path"),
        ] {
            let out = k.cmd(args);
            assert!(out.code == 125 && out.stderr.contains(want), "{args:?}: {}", out.stderr);
        }
        let out = k.cmd(&["volume", "create", "-d", "nfs", "x"]).failed();
        assert!(out.stderr.contains("unknown volume driver"), "{}", out.stderr);
        assert_eq!(k.cmd(&["ps", "-aq"]).ok().stdout, "", "a refused run leaves no container");
        k.assert_clean();
    }
}

#[test]
fn restart_read_only_and_sig_proxy_do_as_docker() {
    for k in Kiln::each_mode() {
        // on-failure:2: three runs in all, then it stays exited.
        k.cmd(&[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "echo run; exit 3",
        ])
        .ok();
        eventually("it ran three times", || k.cmd(&["logs", "flaky"]).stdout == "run\nrun\nrun\n");
        assert_eq!(k.cmd(&["wait", "flaky"]).ok().stdout, "3\n");
        let state: serde_json::Value = serde_json::from_str(&k.cmd(&["inspect", "flaky"]).ok().stdout).unwrap();
        assert_eq!(state["RestartCount"], 2, "{state}");
        // always: only stop ends it.
        k.cmd(&["run", "-d", "--name", "again", "--restart", "always", "busybox", "sh", "-c", "echo up; sleep 0.2"])
            .ok();
        eventually("it came back", || k.cmd(&["logs", "again"]).stdout.lines().count() >= 2);
        k.cmd(&["stop", "again"]).ok();
        let logged = k.cmd(&["logs", "again"]).stdout;
        std::thread::sleep(Duration::from_millis(800));
        assert_eq!(k.cmd(&["logs", "again"]).stdout, logged, "stopped means stopped");
        assert!(ps_line(&k, "again").unwrap().contains("Exited"));
        let out = k.cmd(&["run", "--rm", "--restart", "always", "busybox", "true"]);
        assert!(out.code == 125 && out.stderr.contains("--restart and --rm"), "{}", out.stderr);
        // --read-only: the root is, a tmpfs on it is not.
        let script = "touch /file 2>/dev/null || echo root-ro; touch /scratch/f && echo tmpfs-rw";
        let out = k.cmd(&[
            "run",
            "--rm",
            "--read-only",
            "--mount",
            "type=tmpfs,target=/scratch",
            "busybox",
            "sh",
            "-c",
            script,
        ]);
        assert_eq!(out.ok().stdout, "root-ro\ntmpfs-rw\n");
        // --sig-proxy=false: a SIGTERM to kiln is not the container's.
        let child = k
            .command()
            .args([
                "run",
                "--rm",
                "--sig-proxy=false",
                "busybox",
                "sh",
                "-c",
                "trap 'echo got; exit 9' TERM; echo ready; sleep 2; echo slept",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let out = child.wait_with_output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stdout).contains("got"), "{}", String::from_utf8_lossy(&out.stdout));
        k.cmd(&["rm", "-f", "flaky", "again"]).ok();
        k.assert_clean();
    }
}

#[test]
fn run_d_of_a_command_that_cannot_run_fails_the_run_with_its_code() {
    for k in Kiln::each_mode() {
        let out = k.cmd(&["run", "-d", "--name", "typo", "busybox", "no-such-command"]);
        assert_eq!(out.code, 127, "{:?}: {}", k.mode, out.stderr);
        assert!(out.stderr.contains("executable file not found"), "{}", out.stderr);
        assert_eq!(out.stdout, "", "no ID for a container whose command never ran");
        // Kept, as docker keeps it, with the reason in its log.
        assert!(ps_line(&k, "typo").unwrap().contains("Exited (127)"));
        assert!(k.cmd(&["logs", "typo"]).stderr.contains("no-such-command"));
        let out = k.cmd(&["run", "-d", "--rm", "--restart", "no", "busybox", "/etc/passwd"]);
        assert_eq!(out.code, 126, "{}", out.stderr);
        // A command that runs, then fails, is the container's business: run -d succeeds.
        k.cmd(&["run", "-d", "--name", "fails-later", "busybox", "sh", "-c", "exit 3"]).ok();
        assert_eq!(k.cmd(&["wait", "fails-later"]).ok().stdout, "3\n");
        k.cmd(&["rm", "typo", "fails-later"]).ok();
        assert_eq!(k.cmd(&["ps", "-aq"]).ok().stdout, "", "--rm left nothing");
        k.assert_clean();
    }
}

#[test]
fn a_run_d_killed_midway_leaves_the_container_running_and_exec_into_a_stopped_one_is_refused() {
    for k in Kiln::each_mode() {
        let mut cli = k
            .command()
            .args(["run", "-d", "--name", "orphan", "busybox", "sleep", "4719"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // Killed once its monitor exists (most often while it waits for the monitor's word).
        eventually("its monitor started", || processes_of(&k).iter().any(|l| l.contains("__monitor")));
        let _ = cli.kill();
        let _ = cli.wait();
        eventually("it runs", || ps_line(&k, "orphan").is_some_and(|l| l.contains("Up ")));
        std::thread::sleep(Duration::from_millis(300));
        assert!(ps_line(&k, "orphan").unwrap().contains("Up "), "{:?}", k.mode);
        k.cmd(&["stop", "-t", "0", "orphan"]).ok();
        let out = k.cmd(&["exec", "orphan", "true"]).failed();
        assert!(out.stderr.contains("orphan is not running"), "{:?}: {}", k.mode, out.stderr);
        k.cmd(&["rm", "orphan"]).ok();
        k.assert_clean();
    }
}
