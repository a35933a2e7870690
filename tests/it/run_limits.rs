//! RUN's limits (issue 9): `--memory`, `--pids-limit`, `--cpus` in a cgroup
//! per step, `--step-timeout`, the default pids limit that stops a fork
//! bomb, and no process or cgroup of a step left once it has ended, however
//! it ended.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;

use super::harness::{Kiln, Mode, Run};

/// The command lines of every process on the host that contain `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
        let line = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if line.contains(needle) {
            found.push(format!("{}: {line}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

/// Every cgroup mount of the host: its mount point and its controllers
/// (none for the unified tree).
fn cgroup_mounts() -> Vec<(PathBuf, Vec<String>)> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mountpoint = PathBuf::from(left.split(' ').nth(4)?);
            let right: Vec<&str> = right.split(' ').collect();
            match right[0] {
                "cgroup2" => Some((mountpoint, vec![])),
                "cgroup" => Some((mountpoint, right[2].split(',').map(str::to_owned).collect())),
                _ => None,
            }
        })
        .collect()
}

/// The cgroup directories on the host whose name starts with `prefix`.
fn cgroups_named(prefix: &str) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, prefix: &str, depth: usize, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                found.push(entry.path());
            } else if depth > 0 {
                walk(&entry.path(), prefix, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    for (mountpoint, _) in cgroup_mounts() {
        walk(&mountpoint, prefix, 6, &mut found);
    }
    found
}

/// `kiln build` of the context; its pid (kiln's cgroups are named after it
/// in root mode) and its result.
fn build_with_pid(k: &Kiln, args: &[&str]) -> (u32, Run) {
    let child =
        k.command().arg("build").args(args).arg(k.ctx()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (pid, Run { code: out.status.code().unwrap_or(-1), stdout: text(&out.stdout), stderr: text(&out.stderr) })
}

/// Nothing of a finished build is left: no process whose command line holds
/// `marker`, no cgroup of kiln `pid` (root mode: rootless kiln here gets none).
#[track_caller]
fn nothing_left(k: &Kiln, pid: u32, marker: &str) {
    let left = processes_with(marker);
    assert!(left.is_empty(), "{:?}: processes of the step are still running: {left:?}", k.mode);
    let left = cgroups_named(&format!("kiln-{pid}-"));
    assert!(left.is_empty(), "{:?}: cgroups of the build are left: {left:?}", k.mode);
    k.assert_clean();
}

#[test]
fn a_step_over_its_memory_limit_fails_as_out_of_memory_and_leaves_nothing() {
    let k = Kiln::with_busybox();
    // dd allocates its whole block: 200 MiB in a 64 MiB cgroup.
    k.write("Dockerfile", "FROM busybox\nRUN echo start; dd if=/dev/zero of=/dev/null bs=200M count=1 # 86400-oom\n");
    let (pid, out) = build_with_pid(&k, &["--memory", "64m"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for want in ["Dockerfile:2", "out of memory (the limit is 64 MiB)", "dd if=/dev/zero", "| start"] {
        assert!(out.stderr.contains(want), "expected {want:?} in:\n{}", out.stderr);
    }
    nothing_left(&k, pid, "86400-oom");
    // The same step within its limit builds: the error was the limit's.
    k.build(&["--memory", "512m"]).ok();
}

#[test]
fn a_step_over_its_timeout_is_killed_with_everything_it_started() {
    for k in Kiln::each_mode() {
        // Numbers no other test of this file sleeps (they run at once).
        k.write("Dockerfile", "FROM busybox\nRUN echo start; sleep 86431 & sleep 86432\n");
        let (pid, out) = build_with_pid(&k, &["--step-timeout", "2s"]);
        assert_eq!(out.code, 1, "{:?}: {}", k.mode, out.stderr);
        for want in ["Dockerfile:2", "timed out after 2s", "sleep 86432", "raise --step-timeout", "| start"] {
            assert!(out.stderr.contains(want), "{:?}: expected {want:?} in:\n{}", k.mode, out.stderr);
        }
        nothing_left(&k, pid, "sleep 8643");
    }
}

#[test]
fn a_fork_bomb_is_stopped_by_the_default_pids_limit() {
    // Bounded, so that without the limit the test fails instead of the
    // machine: 6000 sleeping processes, above the default of 4096.
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\nRUN i=0; while [ $i -lt 6000 ]; do sleep 86403 & i=$((i+1)); done; echo all-started\n",
        );
        let (pid, out) = build_with_pid(&k, &[]);
        assert_eq!(out.code, 1, "{:?}: the fork bomb ran to its end:\n{}", k.mode, out.stderr);
        assert!(out.stderr.contains("can't fork"), "{:?}: {}", k.mode, out.stderr);
        assert!(!out.stderr.contains("| all-started"), "{:?}: {}", k.mode, out.stderr);
        nothing_left(&k, pid, "sleep 86403");
        // And a build goes on working afterwards.
        k.write("Dockerfile", "FROM busybox\nRUN echo fine\n");
        k.build(&[]).ok();
    }
}

#[test]
fn an_explicit_pids_limit_replaces_the_default_and_minus_one_lifts_it() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN for i in 1 2 3 4 5 6 7 8 9 10; do sleep 86407 & done; echo ten\n");
    let out = k.build(&["--pids-limit", "5"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("can't fork"), "{}", out.stderr);
    k.build(&["--pids-limit", "-1", "--no-cache"]).ok();
    k.build(&["--pids-limit", "0", "--no-cache"]).ok();
    assert!(processes_with("sleep 86407").is_empty());
}

#[test]
fn a_process_a_step_leaves_in_the_background_is_killed_when_it_ends() {
    for k in Kiln::each_mode() {
        k.write("Dockerfile", "FROM busybox\nRUN sleep 86405 & echo started\n");
        let (pid, out) = build_with_pid(&k, &[]);
        assert_eq!(out.code, 0, "{:?}: {}", k.mode, out.stderr);
        assert!(out.stderr.contains("started"), "{}", out.stderr);
        nothing_left(&k, pid, "sleep 86405");
    }
}

#[test]
fn the_limits_land_in_the_step_s_cgroup_which_is_gone_afterwards() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN cat /proc/self/cgroup; echo ready; sleep 86404 || true\n");
    let mut child = k
        .command()
        .args(["build", "--memory", "64m", "--cpus", "1.5", "--pids-limit", "300"])
        .arg(k.ctx())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "the build ended before the step was ready:\n{seen}");
        seen.push_str(&line);
        if line.trim_end().ends_with(" ready") {
            break;
        }
        // `#2 0.037 4:memory:/…/kiln-PID-N`, /proc/self/cgroup as the step sees it.
        let Some(entry) = line.split_whitespace().nth(2) else { continue };
        let mut f = entry.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else { continue };
        if !path.contains("/kiln-") {
            continue;
        }
        let wanted: Vec<String> = controllers.split(',').filter(|c| !c.is_empty()).map(str::to_owned).collect();
        for (mountpoint, have) in cgroup_mounts() {
            if have.iter().filter(|c| !matches!(c.as_str(), "rw" | "ro")).eq(wanted.iter()) {
                let dir = mountpoint.join(path.trim_start_matches('/'));
                for c in if wanted.is_empty() { vec!["".to_owned()] } else { wanted.clone() } {
                    dirs.push((c, dir.clone()));
                }
            }
        }
    }
    let read = |file: &str| {
        dirs.iter().map(|(_, d)| d.join(file)).find(|p| p.exists()).map(|p| fs::read_to_string(p).unwrap())
    };
    let memory = read("memory.max").or_else(|| read("memory.limit_in_bytes"));
    assert_eq!(memory.as_deref().map(str::trim), Some("67108864"), "{dirs:?}");
    let cpu = read("cpu.max").or_else(|| read("cpu.cfs_quota_us"));
    assert!(matches!(cpu.as_deref().map(str::trim), Some("150000 100000" | "150000")), "{cpu:?} {dirs:?}");
    assert_eq!(read("pids.max").as_deref().map(str::trim), Some("300"), "{dirs:?}");
    // While it runs, the step's processes are in its cgroup.
    let procs = read("cgroup.procs").unwrap();
    assert!(procs.lines().count() >= 2, "{procs}");
    // The sleep alone, not the shell whose command line names it too. The
    // shell has printed "ready" but may not have started it yet: wait for it.
    let started = std::time::Instant::now();
    let sleeps = loop {
        let sleeps: Vec<String> =
            processes_with("sleep 86404").into_iter().filter(|p| p.contains(": sleep 86404")).collect();
        if !sleeps.is_empty() || started.elapsed() > std::time::Duration::from_secs(30) {
            break sleeps;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!sleeps.is_empty(), "the step's sleep never started:\n{seen}");
    for p in &sleeps {
        let pid: i32 = p.split(':').next().unwrap().parse().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    }
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{seen}{rest}");
    for (_, dir) in &dirs {
        assert!(!dir.exists(), "{} is left after the step", dir.display());
    }
    nothing_left(&k, child.id(), "sleep 86404");
}

#[test]
fn a_step_cancelled_by_another_s_failure_leaves_no_process_or_cgroup() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox AS slow\nRUN echo slow; sleep 86406\n\
         FROM busybox AS failing\nRUN sleep 1; exit 3\n\
         FROM busybox\nCOPY --from=slow /etc/hostname /a\nCOPY --from=failing /etc/hostname /b\n",
    );
    let (pid, out) = build_with_pid(&k, &["--memory", "64m"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("exit code: 3"), "{}", out.stderr);
    nothing_left(&k, pid, "sleep 86406");
}

/// The issue-10 form: a step fails while a sibling stage sleeps and another
/// sibling has finished. The sleeper is killed at once (the build ends long
/// before its sleep would), nothing of it is left, and the finished sibling
/// is CACHED when the build runs again.
#[test]
fn a_failure_kills_a_sleeping_sibling_promptly_and_finished_siblings_stay_cached() {
    let k = Kiln::with_busybox();
    k.write(
        "Dockerfile",
        "FROM busybox AS slow\nRUN sleep 86408\n\
         FROM busybox AS quick\nRUN echo quick-done > /q\n\
         FROM busybox AS failing\nRUN sleep 5; exit 4\n\
         FROM busybox\nCOPY --from=slow /etc/hostname /a\nCOPY --from=quick /q /q\nCOPY --from=failing /etc/hostname /b\n",
    );
    let started = std::time::Instant::now();
    let (pid, out) = build_with_pid(&k, &["--jobs", "3"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("exit code: 4"), "{}", out.stderr);
    // Not a speed: a sleeper that was not killed would hold the build for a day.
    assert!(started.elapsed() < std::time::Duration::from_secs(120), "the sleeping sibling was waited for");
    nothing_left(&k, pid, "sleep 86408");

    let again = k.build(&["--jobs", "3"]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    let lines: Vec<&str> = again.stderr.lines().collect();
    let step = lines.iter().find_map(|l| l.strip_suffix(" [quick 2/2] RUN echo quick-done > /q"));
    let step = step.unwrap_or_else(|| panic!("no quick step in:\n{}", again.stderr));
    assert!(lines.contains(&format!("{step} CACHED").as_str()), "the finished sibling ran again:\n{}", again.stderr);
    let slow = lines.iter().find_map(|l| l.strip_suffix(" [slow 2/2] RUN sleep 86408")).unwrap();
    assert!(!lines.contains(&format!("{slow} CACHED").as_str()), "a killed step was cached:\n{}", again.stderr);
    nothing_left(&k, pid, "sleep 86408");
}

#[test]
fn limits_that_do_not_parse_are_clear_errors_naming_the_flag() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN echo should-not-run\n");
    for (args, want) in [
        (&["--memory", "64x"][..], "expected a size such as 64m"),
        (&["--memory", "5m"], "below the minimum of 6 MiB"),
        (&["--memory", "1000"], "below the minimum of 6 MiB"),
        (&["--cpus", "0"], "expected a number of CPUs"),
        (&["--cpus", "many"], "expected a number of CPUs"),
        (&["--pids-limit", "-2"], "0 or -1 for no limit"),
        (&["--step-timeout", "10"], "expected a duration such as 30s"),
        (&["--step-timeout", "1h30"], "expected a duration such as 30s"),
    ] {
        let out = k.build(args);
        assert_ne!(out.code, 0, "{args:?}");
        assert!(out.stderr.contains(args[0]), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(want), "{args:?}: expected {want:?} in:\n{}", out.stderr);
        assert!(!out.stderr.contains("should-not-run"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn rootless_without_a_delegated_cgroup_refuses_explicit_limits_instead_of_ignoring_them() {
    let k = Kiln::in_mode(Mode::Rootless);
    k.write("Dockerfile", "FROM busybox\nRUN echo ran-without-its-limit\n");
    // The v1 trees and a root-owned v2 tree are not the user's: CI's
    // machines and this one. A delegated tree would take the limits instead.
    for (args, flag) in [
        (&["--memory", "64m"][..], "--memory"),
        (&["--cpus", "1"], "--cpus"),
        (&["--pids-limit", "50"], "--pids-limit"),
    ] {
        let out = k.build(args);
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&format!("{flag} needs a cgroup")), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("not delegated"), "{args:?}: {}", out.stderr);
        // Refused before any step ran.
        assert!(!out.stderr.contains("[2/2]"), "{args:?}: {}", out.stderr);
    }
    // The timeout needs no cgroup.
    k.build(&["--step-timeout", "1m"]).ok();
}

#[test]
fn the_cgroup_of_a_kiln_that_was_killed_is_removed_by_the_next_build() {
    let k = Kiln::with_busybox();
    k.write("Dockerfile", "FROM busybox\nRUN echo ready; sleep 86409\n");
    let mut child = k
        .command()
        .args(["build", "--memory", "64m"])
        .arg(k.ctx())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.lines().any(|l| l.ends_with(" ready")) {
        assert_ne!(stderr.read_line(&mut seen).unwrap(), 0, "the build ended early:\n{seen}");
    }
    // No Drop runs: kiln is gone at once.
    child.kill().unwrap();
    child.wait().unwrap();
    let prefix = format!("kiln-{}-", child.id());
    // Its step dies with it (parent-death signals) ...
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !processes_with("sleep 86409").is_empty() {
        assert!(std::time::Instant::now() < deadline, "{:?}", processes_with("sleep 86409"));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // ... but not its cgroup, which the next build removes.
    assert!(!cgroups_named(&prefix).is_empty(), "a killed kiln's cgroup should be there to sweep");
    k.write("Dockerfile", "FROM busybox\nRUN echo next\n");
    k.build(&["--memory", "64m"]).ok();
    let left = cgroups_named(&prefix);
    assert!(left.is_empty(), "{left:?}");
}

/// Sandboxes started ahead of their steps (see `sandbox::warm`): a build
/// that fails before its later RUN steps run leaves none of the sandboxes
/// started for them behind, nor their cgroups, network helpers or files.
#[test]
fn sandboxes_started_for_steps_that_never_run_leave_nothing() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\nRUN echo first-ran; exit 3\nRUN echo never\nRUN echo never either\nRUN --network=none true\n",
        );
        let (pid, run) = build_with_pid(&k, &["--progress", "plain", "--no-cache"]);
        let run = run.failed();
        assert!(run.stderr.contains("first-ran"), "{:?}: {}", k.mode, run.stderr);
        assert!(!run.stderr.contains("never"), "{:?}: a later step ran: {}", k.mode, run.stderr);
        // The sandboxes' command lines hold the store's scratch folder.
        nothing_left(&k, pid, &k.root().to_string_lossy());
    }
}

/// Each RUN gets a sandbox of its own network, whether started ahead or not:
/// `--network=none` has only `lo`, the default has an interface more.
#[test]
fn steps_started_ahead_get_the_network_they_ask_for() {
    for k in Kiln::each_mode() {
        k.write(
            "Dockerfile",
            "FROM busybox\nRUN cat /proc/net/dev > /default-1\nRUN --network=none cat /proc/net/dev > /none\n\
             RUN cat /proc/net/dev > /default-2\n\
             RUN --network=none for f in /default-1 /none /default-2 /proc/net/dev; do grep -c : $f; done > /counts\n",
        );
        let (pid, run) = build_with_pid(&k, &["-t", "nets", "--no-cache"]);
        run.ok();
        let counts = k.file_in_top_layer("nets", "counts").unwrap();
        let counts: Vec<u32> = counts.lines().map(|l| l.trim().parse().unwrap()).collect();
        assert_eq!(counts[1], 1, "{:?}: --network=none sees more than lo: {counts:?}", k.mode);
        assert_eq!(counts[3], 1, "{:?}: --network=none sees more than lo: {counts:?}", k.mode);
        assert!(counts[0] > 1 && counts[2] > 1, "{:?}: a default step has only lo: {counts:?}", k.mode);
        nothing_left(&k, pid, &k.root().to_string_lossy());
    }
}
