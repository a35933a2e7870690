//! Rootless mode: a kiln started by an unprivileged user re-executes itself in a
//! new user and mount namespace where it is root, the way `podman unshare` works.
//! Everything the engine does (extracting layers with their owners, overlay
//! mounts, the sandbox) then works as it does for real root.
//!
//! The handshake: the parent starts the child with two pipes on fds 3 (parent →
//! child) and 4 (child → parent). The child unshares, says so on fd 4 and waits
//! on fd 3; the parent writes the child's uid/gid maps — with `newuidmap` and
//! `newgidmap` over the user's /etc/subuid and /etc/subgid ranges when both
//! exist, else a map of the user alone — and then lets the child go on.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid, User};

const CHILD_ENV: &str = "_KILN_USERNS_CHILD";

/// Whether this process is the re-executed child (and must finish the handshake).
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Child side: enter the new namespaces and wait until the parent mapped us.
/// Must run before any thread starts: unshare(CLONE_NEWUSER) refuses threaded callers.
pub fn enter_as_child() -> Result<(), String> {
    std::env::remove_var(CHILD_ENV);
    // SAFETY: the parent dup2'ed the pipe ends onto fds 3 and 4 for us alone.
    let (mut go, mut ready) = unsafe { (fs::File::from_raw_fd(3), fs::File::from_raw_fd(4)) };
    nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("creating a user namespace: {e} (are unprivileged user namespaces enabled?)"))?;
    ready.write_all(b"1").map_err(|e| format!("user namespace handshake: {e}"))?;
    drop(ready);
    let mut byte = [0u8; 1];
    match go.read(&mut byte) {
        Ok(1) if byte[0] == b'1' => Ok(()),
        _ => Err("the parent kiln could not map ids into the user namespace".into()),
    }
}

/// Parent side: run this same command again inside a user namespace and return its exit code.
pub fn run_in_userns() -> Result<i32, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding kiln's own binary: {e}"))?;
    let (go_r, go_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let (ready_r, ready_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| e.to_string())?;
    let (go_fd, ready_fd) = (go_r.as_raw_fd(), ready_w.as_raw_fd());
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1)).env(CHILD_ENV, "1");
    // SAFETY: only fcntl, dup2 and close_range (async-signal-safe) between fork and exec.
    unsafe {
        cmd.pre_exec(move || super::inherit_handshake(go_fd, ready_fd));
    }
    let mut child = cmd.spawn().map_err(|e| format!("re-executing kiln in a user namespace: {e}"))?;
    drop((go_r, ready_w));
    let mut ready = fs::File::from(ready_r);
    let mut go = fs::File::from(go_w);
    let mut byte = [0u8; 1];
    let mapped = match ready.read(&mut byte) {
        Ok(1) => map_ids(child.id()),
        _ => Err("the child kiln did not enter its user namespace".into()),
    };
    match &mapped {
        Ok(()) => {
            let _ = go.write_all(b"1");
        }
        Err(_) => drop(go),
    }
    let status = child.wait().map_err(|e| format!("waiting for kiln: {e}"))?;
    mapped?;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

fn map_ids(pid: u32) -> Result<(), String> {
    let uid = Uid::current();
    let gid = Gid::current();
    let name = User::from_uid(uid).ok().flatten().map(|u| u.name);
    let sub = |file: &str, id: u32| -> Option<(u64, u64)> {
        let text = fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.trim().split(':').collect();
            let who = f.first()?;
            let mine = Some(who.to_string()) == name || who.parse::<u32>().ok() == Some(id);
            (mine && f.len() == 3).then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?))).flatten()
        })
    };
    let ranges = (sub("/etc/subuid", uid.as_raw()), sub("/etc/subgid", gid.as_raw()));
    let tools = which("newuidmap").zip(which("newgidmap"));
    if let ((Some(su), Some(sg)), Some((newuidmap, newgidmap))) = (ranges, tools) {
        let run = |tool: &std::path::Path, id: u32, (start, count): (u64, u64)| -> Result<(), String> {
            let out = Command::new(tool)
                .args([
                    pid.to_string(),
                    "0".into(),
                    id.to_string(),
                    "1".into(),
                    "1".into(),
                    start.to_string(),
                    count.to_string(),
                ])
                .output()
                .map_err(|e| format!("running {}: {e}", tool.display()))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!("{} failed: {}", tool.display(), String::from_utf8_lossy(&out.stderr).trim()))
            }
        };
        run(&newuidmap, uid.as_raw(), su)?;
        return run(&newgidmap, gid.as_raw(), sg);
    }
    // No subordinate ids: the user alone becomes root. Files owned by other ids
    // cannot be created then; extraction ignores such chown failures.
    let write = |file: &str, text: String| {
        fs::write(format!("/proc/{pid}/{file}"), text).map_err(|e| format!("writing /proc/{pid}/{file}: {e}"))
    };
    write("setgroups", "deny".into())?;
    write("uid_map", format!("0 {} 1\n", uid.as_raw()))?;
    write("gid_map", format!("0 {} 1\n", gid.as_raw()))
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(tool)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/usr/bin", "/usr/sbin", "/bin"].map(|d| std::path::Path::new(d).join(tool)))
        .find(|p| p.is_file())
}
