//! The tools that look into a running container: `pause`, `top`, `stats`,
//! `cp`, `commit`, `exec -it`, `attach`, for root and rootless kiln alike.

use std::time::Duration;

use super::containers::{eventually, ps_line, read_all};
use super::harness::{Kiln, Mode};

/// Whether process `pid` is in a cgroup of kiln's that its freezer holds
/// frozen (v1 `freezer.state`, or v2 `cgroup.freeze`).
fn frozen_by_cgroup(pid: u32) -> bool {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let path = |prefix: &str| cgroups.lines().find_map(|l| l.split_once(prefix).map(|(_, p)| p.to_owned()));
    let read = |file: String| std::fs::read_to_string(file).unwrap_or_default().trim().to_owned();
    let v1 = path(":freezer:").filter(|p| p.contains("/kiln-"));
    if let Some(p) = v1 {
        return read(format!("/sys/fs/cgroup/freezer{p}/freezer.state")) == "FROZEN";
    }
    let p = path("0::").unwrap_or_default();
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].iter().any(|m| read(format!("{m}{p}/cgroup.freeze")) == "1")
}

#[test]
fn pause_top_prune_and_system_df_see_the_containers() {
    for k in Kiln::each_mode() {
        let script = "while true; do date +%s%N >> /tmp/ticks; sleep 0.05; done";
        k.cmd(&["run", "-d", "--name", "ticker", "busybox", "sh", "-c", script]).ok();
        let ticks = || k.cmd(&["exec", "ticker", "wc", "-l", "/tmp/ticks"]).stdout;
        eventually("it ticks", || ticks().split_whitespace().next().is_some_and(|n| n != "0"));
        let top = k.cmd(&["top", "ticker"]).ok().stdout;
        assert!(top.lines().next().unwrap().contains("PID") && top.contains("sh -c while true"), "{top}");
        k.cmd(&["pause", "ticker"]).ok();
        assert!(ps_line(&k, "ticker").unwrap().contains("(Paused)"));
        // Frozen by its cgroup's freezer, not stopped by a signal it could see.
        let sh: u32 = top
            .lines()
            .find(|l| l.contains("sh -c while true"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        // Rootless without a delegated tree there is no cgroup: SIGSTOP instead.
        if k.mode == Mode::Root {
            assert!(frozen_by_cgroup(sh), "{top}");
        }
        let state = std::fs::read_to_string(format!("/proc/{sh}/status")).unwrap();
        let stopped = state.lines().any(|l| l.starts_with("State:") && l.contains("stopped"));
        assert_eq!(stopped, k.mode != Mode::Root, "{state}");
        let out = k.cmd(&["exec", "ticker", "true"]);
        assert!(out.code == 125 && out.stderr.contains("paused"), "{}", out.stderr);
        // Nothing ticks while paused: the file does not grow.
        let dir = k.root().join("containers");
        let id = k.cmd(&["ps", "-q", "--no-trunc"]).ok().stdout.trim().to_owned();
        let upper = dir.join(&id).join("fs/upper/tmp/ticks");
        let before = std::fs::metadata(&upper).map(|m| m.len()).unwrap_or(0);
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(std::fs::metadata(&upper).map(|m| m.len()).unwrap_or(0), before, "it ran while paused");
        k.cmd(&["unpause", "ticker"]).ok();
        eventually("it ticks again", || std::fs::metadata(&upper).map(|m| m.len()).unwrap_or(0) > before);
        let df = k.cmd(&["system", "df"]).ok().stdout;
        let row = |name: &str| {
            df.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(&row("Containers")[1..3], ["1", "1"], "{df}");
        k.cmd(&["run", "--name", "done", "busybox", "true"]).ok();
        let out = k.cmd(&["container", "prune", "-f"]).ok().stdout;
        assert_eq!(out.lines().count(), 2, "only the stopped one: {out}");
        assert!(ps_line(&k, "done").is_none() && ps_line(&k, "ticker").is_some());
        k.cmd(&["stop", "-t", "1", "ticker"]).ok();
        k.cmd(&["rm", "ticker"]).ok();
        k.assert_clean();
    }
}

#[test]
fn commit_makes_an_image_of_a_containers_changes_deletions_included() {
    for k in Kiln::each_mode() {
        let script = "echo committed > /made; rm /etc/group; mkdir -p /srv/app && echo x > /srv/app/f";
        k.cmd(&["run", "--name", "changed", "-e", "FROM_CONTAINER=1", "busybox", "sh", "-c", script]).ok();
        k.cmd(&["commit", "-m", "by the test", "changed", "snapshot:v1"]).ok();
        let out = k
            .cmd(&[
                "run",
                "--rm",
                "snapshot:v1",
                "sh",
                "-c",
                "cat /made /srv/app/f; test -e /etc/group || echo gone; echo $FROM_CONTAINER",
            ])
            .ok();
        assert_eq!(out.stdout, "committed\nx\ngone\n1\n");
        let history = k.cmd(&["history", "snapshot:v1"]).ok().stdout;
        assert!(history.contains("kiln commit changed"), "{history}");
        // A running container is paused for it, then goes on.
        k.cmd(&["run", "-d", "--name", "live", "busybox", "sh", "-c", "echo live > /live; sleep 4714"]).ok();
        eventually("it wrote", || k.cmd(&["exec", "live", "cat", "/live"]).stdout == "live\n");
        k.cmd(&["commit", "live", "snapshot:v2"]).ok();
        assert!(ps_line(&k, "live").unwrap().contains("Up ") && !ps_line(&k, "live").unwrap().contains("Paused"));
        assert_eq!(k.cmd(&["run", "--rm", "snapshot:v2", "cat", "/live"]).ok().stdout, "live\n");
        let out = k.cmd(&["commit", "nope", "x:1"]).failed();
        assert!(out.stderr.contains("no such container"), "{}", out.stderr);
        // --change: Dockerfile lines on the new image's config, as docker's.
        let changes = ["-c", "CMD [\"cat\", \"/made\"]", "--change", "ENV GREETING=hi", "-c", "WORKDIR /srv"];
        k.cmd(&[&["commit"][..], &changes, &["changed", "snapshot:v3"]].concat()).ok();
        assert_eq!(k.cmd(&["run", "--rm", "snapshot:v3"]).ok().stdout, "committed\n");
        let out = k.cmd(&["run", "--rm", "snapshot:v3", "sh", "-c", "echo $GREETING $PWD"]).ok();
        assert_eq!(out.stdout, "hi /srv\n");
        let out = k.cmd(&["commit", "-c", "RUN rm -rf /", "changed", "x:2"]).failed();
        assert!(out.stderr.contains("only CMD, ENTRYPOINT"), "{}", out.stderr);
        assert!(!k.cmd(&["images"]).ok().stdout.lines().any(|l| l.starts_with("x ")), "nothing is made");
        k.cmd(&["rm", "-f", "changed", "live"]).ok();
        k.assert_clean();
    }
}

#[test]
fn cp_copies_both_ways_and_never_follows_a_symlink_out_of_the_container() {
    for k in Kiln::each_mode() {
        let host = k.dir.path().join("host");
        std::fs::create_dir_all(host.join("tree/sub")).unwrap();
        std::fs::write(host.join("tree/sub/f"), "from host\n").unwrap();
        std::fs::write(host.join("secret"), "host secret\n").unwrap();
        k.give(&host);
        // A hostile container: links that point at the host's files, were they followed from outside.
        let outside = host.join("secret");
        let script = format!(
            "mkdir -p /data && echo inside > /data/file && ln -s {0} /data/abs && ln -s ../../../../../../..{0} /data/rel && ln -s {1} /escape && sleep 4715",
            outside.display(),
            host.display()
        );
        k.cmd(&["run", "-d", "--name", "box", "busybox", "sh", "-c", &script]).ok();
        eventually("it made its files", || k.cmd(&["exec", "box", "cat", "/data/file"]).stdout == "inside\n");
        let out_dir = k.dir.path().join("out");
        std::fs::create_dir(&out_dir).unwrap();
        k.give(&out_dir);
        k.cmd(&["cp", "box:/data", out_dir.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read_to_string(out_dir.join("data/file")).unwrap(), "inside\n");
        // Links come out as links, their targets untouched.
        assert_eq!(std::fs::read_link(out_dir.join("data/abs")).unwrap(), outside);
        // Reading through a link resolves inside the container: no host file there.
        let out = k.cmd(&["cp", "box:/data/abs/..", out_dir.join("x").to_str().unwrap()]);
        assert!(!out_dir.join("x").join("secret").exists(), "{}", out.stderr);
        // In: a tree, and a write through /escape lands in the container, not on the host.
        k.cmd(&["cp", host.join("tree").to_str().unwrap(), "box:/srv"]).ok();
        assert_eq!(k.cmd(&["exec", "box", "cat", "/srv/sub/f"]).ok().stdout, "from host\n");
        let note = k.dir.path().join("note");
        std::fs::write(&note, "planted\n").unwrap();
        k.give(&note);
        // Resolved inside the container, /escape leads nowhere: an error, and nothing written on the host.
        let out = k.cmd(&["cp", note.to_str().unwrap(), "box:/escape/secret"]).failed();
        assert!(out.stderr.contains("/escape/secret in container box"), "{}", out.stderr);
        assert_eq!(
            std::fs::read_to_string(&outside).unwrap(),
            "host secret\n",
            "the host file was written through a link"
        );
        // A stopped container's files too.
        k.cmd(&["stop", "-t", "0", "box"]).ok();
        let back = k.dir.path().join("back");
        k.cmd(&["cp", "box:/srv/sub/f", back.to_str().unwrap()]).ok();
        assert_eq!(std::fs::read_to_string(&back).unwrap(), "from host\n");
        let out = k.cmd(&["cp", "/etc/hostname", "/tmp/x"]).failed();
        assert!(out.stderr.contains("exactly one side"), "{}", out.stderr);
        k.cmd(&["rm", "box"]).ok();
        k.assert_clean();
    }
}

#[test]
fn stats_show_a_busy_containers_cpu_memory_and_processes() {
    for k in Kiln::each_mode() {
        // A memory limit needs a cgroup, which rootless kiln gets only where the tree is delegated.
        let limit: &[&str] = if k.mode == Mode::Root { &["-m", "256m"] } else { &[] };
        let busy =
            [&["run", "-d", "--name", "busy"][..], limit, &["busybox", "sh", "-c", "while true; do :; done"]].concat();
        k.cmd(&busy).ok();
        k.cmd(&["run", "-d", "--name", "idle", "busybox", "sleep", "4716"]).ok();
        // Its shell writes 1 MiB itself (echo is a builtin), and wget sends through its network.
        let kib = "0123456789abcdef".repeat(64);
        let script = format!(
            "i=0; while [ $i -lt 1024 ]; do echo {kib} >> /written; i=$((i+1)); done; \
             wget -q -T 2 -O /dev/null http://10.0.2.2:9/; sleep 4718"
        );
        k.cmd(&["run", "-d", "--name", "writer", "busybox", "sh", "-c", &script]).ok();
        let row = |out: &str, name: &str| out.lines().find(|l| l.contains(name)).unwrap_or_default().to_owned();
        let cpu = |line: &str| {
            line.split_whitespace().find(|w| w.ends_with('%')).and_then(|w| w.trim_end_matches('%').parse::<f64>().ok())
        };
        // Sampled until both commands run (a container's PID 1 forks its command a moment after `run -d`).
        let mut out = String::new();
        eventually("the busy one is busy and the idle one has its sleep", || {
            out = k.cmd(&["stats", "--no-stream"]).ok().stdout;
            cpu(&row(&out, "busy")).is_some_and(|c| c > 30.0) && row(&out, "idle").trim_end().ends_with(" 2")
        });
        assert!(cpu(&row(&out, "idle")).is_some_and(|c| c < 30.0), "{out}");
        let header: Vec<&str> =
            out.lines().next().unwrap().split("  ").map(str::trim).filter(|h| !h.is_empty()).collect();
        assert_eq!(
            header,
            ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
        );
        // ID NAME CPU% USAGE / LIMIT MEM% RX / TX READ / WRITTEN PIDS
        eventually("the writer wrote and sent", || {
            let out = k.cmd(&["stats", "--no-stream", "writer"]).ok().stdout;
            let fields: Vec<String> = row(&out, "writer").split_whitespace().map(str::to_owned).collect();
            fields.len() == 14 && fields[9] != "0B" && fields[12] != "0B"
        });
        if k.mode == Mode::Root {
            assert!(row(&out, "busy").contains("/ 268.4MB"), "the memory limit: {out}");
        }
        let out = k.cmd(&["stats", "--no-stream", "nope"]).failed();
        assert!(out.stderr.contains("no such container"), "{}", out.stderr);
        k.cmd(&["rm", "-f", "busy", "idle", "writer"]).ok();
        k.assert_clean();
    }
}

#[test]
fn exec_it_is_a_shell_on_a_terminal_of_its_own_in_the_container() {
    use std::io::Write as _;
    for k in Kiln::each_mode() {
        k.cmd(&["run", "-d", "--name", "box", "busybox", "sleep", "4717"]).ok();
        let mut cmd = k.command();
        cmd.args(["exec", "-it", "box", "sh"]);
        let (mut child, mut master) = super::harness::spawn_in_terminal(&mut cmd);
        let seen = read_all(&master);
        master.write_all(b"[ -t 0 ] && echo on-a-tty-$((2*21)); ps -o args | grep -c 'sleep 4717'; exit 4\n").unwrap();
        let status = child.wait().unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(status.code(), Some(4), "{:?}: {seen}", k.mode);
        assert!(seen.contains("on-a-tty-42"), "{:?}: {seen}", k.mode);
        k.cmd(&["rm", "-f", "box"]).ok();
        k.assert_clean();
    }
}

#[test]
fn attach_drives_a_detached_interactive_container_and_follows_its_output() {
    use std::io::Write as _;
    for k in Kiln::each_mode() {
        k.cmd(&["run", "-d", "-i", "-t", "--name", "shell", "busybox", "sh"]).ok();
        let mut cmd = k.command();
        cmd.args(["attach", "shell"]);
        let (mut child, mut master) = super::harness::spawn_in_terminal(&mut cmd);
        let seen = read_all(&master);
        std::thread::sleep(Duration::from_millis(300));
        master.write_all(b"echo attached-$((40+2)); exit 6\n").unwrap();
        let status = child.wait().unwrap();
        let seen = seen.lock().unwrap().clone();
        assert!(seen.contains("attached-42"), "{seen}");
        assert_eq!(status.code(), Some(6), "{seen}");
        assert_eq!(k.cmd(&["wait", "shell"]).ok().stdout, "6\n");
        // Output only, without -i: a detached container's lines as they come.
        k.cmd(&["run", "-d", "--name", "talker", "busybox", "sh", "-c", "sleep 0.5; echo late-line"]).ok();
        let out = k.cmd(&["attach", "--no-stdin", "talker"]).ok();
        assert_eq!(out.stdout, "late-line\n");
        let out = k.cmd(&["attach", "talker"]).failed();
        assert!(out.stderr.contains("not running"), "{}", out.stderr);
        // ctrl-p ctrl-q detaches: attach ends at once, the container runs on.
        k.cmd(&["run", "-d", "-i", "-t", "--name", "stay", "busybox", "sh"]).ok();
        let mut cmd = k.command();
        cmd.args(["attach", "stay"]);
        let (mut child, mut master) = super::harness::spawn_in_terminal(&mut cmd);
        let seen = read_all(&master);
        std::thread::sleep(Duration::from_millis(300));
        master.write_all(b"echo still-$((6*7))\n").unwrap();
        eventually("the shell answered", || seen.lock().unwrap().contains("still-42"));
        master.write_all(b"\x10\x11").unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(0), "{}", seen.lock().unwrap());
        assert!(ps_line(&k, "stay").unwrap().contains("Up "), "{:?}", k.mode);
        let out = k.cmd(&["attach", "--detach-keys", "meta-x", "stay"]).failed();
        assert!(out.stderr.contains("--detach-keys"), "{}", out.stderr);
        k.cmd(&["rm", "-f", "shell", "talker", "stay"]).ok();
        k.assert_clean();
    }
}

#[test]
fn attach_passes_signals_on_to_the_command_unless_sig_proxy_is_false() {
    use std::process::{Command, Stdio};
    for k in Kiln::each_mode() {
        let script = "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done";
        for name in ["proxied", "kept"] {
            k.cmd(&["run", "-d", "--name", name, "busybox", "sh", "-c", script]).ok();
            eventually("the trap is set", || k.cmd(&["logs", name]).stdout.contains("ready"));
        }
        let attach = |args: &[&str]| {
            let child = k.command().args(["attach"]).args(args).stdout(Stdio::piped()).spawn().unwrap();
            std::thread::sleep(Duration::from_millis(500));
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            child.wait_with_output().unwrap()
        };
        // The command gets the signal, and attach ends with its exit code
        // (which, rootless, `runuser` hides: it dies of the signal it passed on).
        let out = attach(&["proxied"]);
        if k.mode == Mode::Root {
            assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stdout));
        }
        assert_eq!(String::from_utf8_lossy(&out.stdout), "got-term\n", "{:?}", k.mode);
        assert!(ps_line(&k, "proxied").unwrap().contains("Exited (7)"));
        // --sig-proxy=false: the signal ends attach only; the container runs on.
        let out = attach(&["--sig-proxy=false", "kept"]);
        assert_ne!(out.status.code(), Some(7), "{:?}", k.mode);
        assert!(ps_line(&k, "kept").unwrap().contains("Up "), "{:?}", k.mode);
        assert!(!k.cmd(&["logs", "kept"]).stdout.contains("got-term"));
        k.cmd(&["rm", "-f", "proxied", "kept"]).ok();
        k.assert_clean();
    }
}
