//! Inherited descriptors (the class of CVE-2024-21626): nothing kiln's caller
//! left open may reach a step, and no working directory may lead out of the
//! container through /proc/self/fd.

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use super::super::harness::Kiln;

/// `kiln …` with `dir` open as fd 7, the way `kiln … 7</dir` would run it.
fn with_fd7(k: &Kiln, dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let held = std::fs::File::open(dir).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&held);
    let mut cmd = k.command();
    cmd.args(args).stdin(Stdio::null());
    // SAFETY: dup2 only, between fork and exec.
    unsafe {
        cmd.pre_exec(move || match libc::dup2(fd, 7) {
            -1 => Err(std::io::Error::last_os_error()),
            _ => Ok(()),
        });
    }
    cmd.output().unwrap()
}

fn victim(k: &Kiln) -> std::path::PathBuf {
    let dir = k.dir.path().join("victim");
    std::fs::create_dir_all(&dir).unwrap();
    k.give(&dir); // writable by whoever runs kiln: only confinement may stop the write
    dir
}

#[test]
fn run_with_a_workdir_in_proc_self_fd_cannot_reach_the_host() {
    for k in Kiln::each_mode() {
        let dir = victim(&k);
        for workdir in ["/proc/self/fd/7", "/proc/self/fd/7/..", "/proc/self/cwd", "/proc/1/root/proc/self/fd/7"] {
            let out = with_fd7(
                &k,
                &dir,
                &["run", "--rm", "-w", workdir, "busybox", "sh", "-c", "touch pwned; ls ../../ && echo LISTED"],
            );
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(!dir.join("pwned").exists(), "{:?} {workdir}: the container wrote into the host folder", k.mode);
            assert!(!stdout.contains("LISTED") || !stdout.contains("victim"), "{:?} {workdir}: {stdout}", k.mode);
        }
        k.assert_clean();
    }
}

#[test]
fn a_workdir_in_proc_self_fd_fails_the_build_and_touches_nothing() {
    for k in Kiln::each_mode() {
        let dir = victim(&k);
        k.write("Dockerfile", "FROM busybox\nWORKDIR /proc/self/fd/7\nRUN touch pwned\n");
        let ctx = k.ctx();
        let out = with_fd7(&k, &dir, &["build", "-t", "fd7:v1", ctx.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!dir.join("pwned").exists(), "{:?}: a RUN step wrote into the host folder", k.mode);
        assert!(!out.status.success(), "{:?}: the build succeeded:\n{stderr}", k.mode);
        assert!(stderr.contains("Dockerfile:3") && stderr.contains("/proc/self/fd/7"), "{:?}:\n{stderr}", k.mode);
        assert!(!k.image_names().contains(&"fd7:v1".to_string()));
        k.assert_clean();
    }
}

#[test]
fn a_container_holds_only_its_three_standard_streams() {
    for k in Kiln::each_mode() {
        let dir = victim(&k);
        // The shell's own descriptors, listed by a child (a glob or a `$(…)`
        // in the shell itself would count the folder or pipe it opens).
        let out = with_fd7(&k, &dir, &["run", "busybox", "sh", "-c", "ls /proc/$$/fd; true"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "0\n1\n2\n", "{:?}", k.mode);
        // The step's output reaches the progress log as `#N <time> <line>`.
        k.write("Dockerfile", "FROM busybox\nRUN echo FDS $(echo 1); ls /proc/$$/fd; true\n");
        let ctx = k.ctx();
        let out = with_fd7(&k, &dir, &["build", ctx.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.contains("FDS 1"), "{:?}: {stderr}", k.mode);
        let fds: Vec<&str> =
            stderr.lines().filter_map(|l| l.split_whitespace().nth(2).filter(|f| f.parse::<u32>().is_ok())).collect();
        assert_eq!(fds, ["0", "1", "2"], "{:?}: a RUN step's descriptors:\n{stderr}", k.mode);
    }
}

#[test]
fn the_working_directory_still_resolves_inside_the_image() {
    for k in Kiln::each_mode() {
        // Symlinks in the image resolve inside it; missing folders are made.
        let out = k.cmd(&["run", "-w", "/usr/../new/dir", "busybox", "sh", "-c", "pwd; ls -d /new/dir"]).ok();
        assert_eq!(out.stdout, "/new/dir\n/new/dir\n", "{:?}", k.mode);
    }
}
